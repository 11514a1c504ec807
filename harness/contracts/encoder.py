"""The encoder and backbone seams (harness.contracts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..config import RunConfig, plugin_options
from ..transforms.modality import MODALITIES, to_modality
from ..data.topology import Topology
from ..errors import HarnessError, UnknownNameError
from ..registry import ENCODERS, METHODS
from .data import FUSED_MODALITY, DataInfo

@dataclass
class EncoderOutput:
    pooled: torch.Tensor  # (N, feature_dim): the instance representation used by linear/kNN
    temporal: torch.Tensor | None = None  # (N, T', D) temporal tokens
    spatial: torch.Tensor | None = None  # (N, S, D) spatial tokens (S = V·M for DSTE/STTR)


class Encoder(nn.Module):
    """Base class of registered encoders: ``Encoder(options, in_channels=, frames=, joints=, persons=,
    topology=)``. Nothing may assume 25 joints or 2 persons.

    ``Options`` is a dataclass of the encoder's own settings (``--set encoder.options.NAME=VALUE``,
    checked with suggestions), ``preset_defaults`` its per-preset sizes. Subclasses set
    ``feature_dim`` (pooled width) and ``frame_dim`` (width of :meth:`frame_features`, 0 if none) and
    implement :meth:`forward`; ``init_weights()``, when present, is the reference initialisation.
    ``dense`` says whether ``forward`` returns temporal and spatial tokens; ``input_modality`` is
    :data:`FUSED_MODALITY` for an encoder that derives bone and motion itself from joint coordinates.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""  # how tables name a row of this encoder ("" = the name in capitals)
    Options: ClassVar[type | None] = None
    preset_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    dense: ClassVar[bool] = True
    input_modality: ClassVar[str | None] = None
    feature_dim: int
    frame_dim: int

    def __init__(self, options: Any, *, in_channels: int = 3, frames: int = 64, joints: int = 25,
                 persons: int = 2, topology: Topology | None = None):
        super().__init__()
        self.options = options
        self.in_channels, self.frames, self.joints, self.persons = in_channels, frames, joints, persons
        self.topology = topology

    @classmethod
    def resolve_options(cls, cfg: RunConfig) -> Any:
        if cls.Options is None:
            if cfg.encoder.options:
                raise HarnessError(f"encoder {cls.name!r} takes no options, got encoder.options={cfg.encoder.options}")
            return None
        return plugin_options(cls.Options, cfg.preset, cls.preset_defaults, cfg.encoder.options,
                              where=f"encoder.options ({cls.name})")

    @classmethod
    def attention(cls, impl: str | None = None) -> str:
        """The attention-kernel switch of an encoder that has one (DSTE/STTR: ``auto`` | ``sdpa`` |
        ``matmul``), set first when ``impl`` is given; "" for encoders without one. ``harness bench``
        sets and reports it."""
        return ""

    def analytic_macs(self) -> int | None:
        """Forward multiply-accumulates per clip from the encoder's own closed form, or None (then
        only ``harness.benchmarks.flops`` counts it). The contract tests check a declared formula
        against FlopCounterMode (FLOPs = 2 × MACs)."""
        return None

    def forward(self, x: torch.Tensor) -> EncoderOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """Dense per-frame features (N, T, frame_dim) for frame-wise tasks such as detection."""
        raise NotImplementedError(f"{type(self).__name__} has no dense per-frame output")


def build_encoder(cfg: RunConfig, info: DataInfo, *, name: str | None = None, in_channels: int = 3,
                  reference_init: bool = False) -> Encoder:
    """The run's encoder (``name`` or ``cfg.encoder.name``) with its resolved options;
    ``reference_init`` applies its ``init_weights()`` if it has one."""
    name = name or cfg.encoder.name or METHODS.get(cfg.method.name).encoder_name(cfg)
    cls = ENCODERS.get(name)
    encoder = cls(cls.resolve_options(cfg), in_channels=in_channels, frames=info.frames, joints=info.joints,
                  persons=info.persons, topology=info.topology)
    if reference_init and callable(getattr(encoder, "init_weights", None)):
        encoder.init_weights()
    return encoder


# --- backbones -----------------------------------------------------------------------------------
class Backbone(nn.Module):
    """What protocols see: a joint-coordinate clip (N, 3, T, V, M) → EncoderOutput.

    It applies the method's own input transform (modality, fusion) before its encoder, so a protocol
    never needs to know which method produced it. ``feature_dim`` is the pooled width and
    ``frame_dim`` the width of ``frame_features`` (dense (N, T, frame_dim), used by detection).
    """

    feature_dim: int
    frame_dim: int

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class ModalityBackbone(Backbone):
    """Joint-coordinate clip → modality (joint | bone | motion) → encoder: the backbone of every
    method that trains a registered encoder on one modality."""

    def __init__(self, encoder: Encoder, modality: str, topology: Topology):
        super().__init__()
        fused = getattr(encoder, "input_modality", None)
        allowed = (fused,) if fused else MODALITIES
        if modality not in allowed:
            raise UnknownNameError(f"modality for encoder {type(encoder).__name__}", modality, list(allowed))
        self.encoder = encoder
        self.modality = modality
        self.topology = topology
        self.feature_dim = encoder.feature_dim
        self.frame_dim = getattr(encoder, "frame_dim", 0)  # 0: the encoder has no dense output

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.modality == FUSED_MODALITY else to_modality(x, self.modality, self.topology)

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        return self.encoder(self.prepare(x))

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.frame_features(self.prepare(x))


