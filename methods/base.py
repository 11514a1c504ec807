"""The method seam: an nn.Module that owns an encoder, makes its views and returns loss terms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from harness.config import RunConfig, plugin_options
from harness.data.topology import Topology
from harness.errors import UnknownNameError


@dataclass(frozen=True)
class DataInfo:
    """What a method needs to know about the data it trains on."""

    topology: Topology
    num_classes: int
    frames: int  # T after resampling
    persons: int  # M

    @property
    def joints(self) -> int:
        return self.topology.num_joints


class Backbone(nn.Module):
    """What protocols see: a joint-coordinate clip (N, 3, T, V, M) → EncoderOutput.

    It applies the method's own input transform (modality, fusion) before its encoder, so a
    protocol never needs to know which method produced it. ``feature_dim`` is the pooled width and
    ``frame_dim`` the width of ``frame_features`` (dense (N, T, frame_dim), used by detection).
    """

    feature_dim: int
    frame_dim: int

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class Method(nn.Module):
    """Base class of registered methods.

    Subclasses define ``Options`` (a dataclass of method-specific settings read from
    ``cfg.method.options``), ``variants`` (named option sets, e.g. Table 5 rows), ``num_views``, and
    implement :meth:`make_views`, :meth:`forward` and :meth:`backbone`.
    """

    name: ClassVar[str] = ""
    Options: ClassVar[type | None] = None
    variants: ClassVar[dict[str, dict[str, Any]]] = {"default": {}}
    preset_defaults: ClassVar[dict[str, dict[str, Any]]] = {}  # preset → option defaults
    num_views: ClassVar[int] = 2
    needs_labels: ClassVar[bool] = False  # True for the supervised baseline
    pretrains: ClassVar[bool] = True  # False for the random-init floor: nothing to train

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__()
        self.cfg, self.info = cfg, info
        self.options = self.resolve_options(cfg)

    @classmethod
    def resolve_options(cls, cfg: RunConfig) -> Any:
        if cls.Options is None:
            return None
        variant = cfg.method.variant
        if variant not in cls.variants:
            raise UnknownNameError(f"{cls.name} variant", variant, list(cls.variants))
        return plugin_options(cls.Options, cfg.preset, cls.preset_defaults, cls.variants[variant],
                              cfg.method.options, where=f"method.options ({cls.name})")

    def make_views(self, x: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None = None) -> Any:
        """Raw clips (B, 3, T_max, V, M) + valid lengths → the views ``forward`` takes.

        Runs on the training device, one call per batch (batched augmentation).
        """
        raise NotImplementedError

    def forward(self, views: Any, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Return named loss terms; the total is under ``"loss"``."""
        raise NotImplementedError

    def backbone(self) -> Backbone:
        """The part kept after pretraining (shares weights with this module)."""
        raise NotImplementedError

    def after_step(self) -> None:
        """Called after each optimiser step (momentum encoders, queues)."""


def build_method(cfg: RunConfig, info: DataInfo) -> Method:
    from harness.registry import METHODS

    return METHODS.get(cfg.method.name)(cfg, info)
