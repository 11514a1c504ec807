"""The encoder seam: ``(N, C, T, V, M) → EncoderOutput`` (pooled vector + dense tokens)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.config import EncoderConfig


@dataclass
class EncoderOutput:
    pooled: torch.Tensor  # (N, feature_dim): the instance representation used by linear/kNN
    temporal: torch.Tensor | None = None  # (N, T', D) temporal tokens
    spatial: torch.Tensor | None = None  # (N, S, D) spatial tokens (S = V·M for DSTE/STTR)


class Encoder(nn.Module):
    """Base class of registered encoders.

    Constructed as ``Encoder(cfg, in_channels=3, frames=T, joints=V, persons=M)``; nothing may assume
    25 joints or 2 persons. Subclasses set ``feature_dim`` (pooled width) and ``frame_dim`` (width of
    :meth:`frame_features`), and implement :meth:`forward`.
    """

    feature_dim: int
    frame_dim: int

    def __init__(self, cfg: EncoderConfig, *, in_channels: int = 3, frames: int = 64, joints: int = 25,
                 persons: int = 2):
        super().__init__()
        self.cfg = cfg
        self.in_channels, self.frames, self.joints, self.persons = in_channels, frames, joints, persons

    def forward(self, x: torch.Tensor) -> EncoderOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """Dense per-frame features (N, T, frame_dim) for frame-wise tasks such as detection."""
        raise NotImplementedError(f"{type(self).__name__} has no dense per-frame output")


def build_encoder(cfg: EncoderConfig, *, in_channels: int = 3, frames: int, joints: int,
                  persons: int, reference_init: bool = False) -> Encoder:
    """Build the registered encoder; ``reference_init`` applies its ``init_weights()`` if it has one
    (DSTE/STTR: the USDRL pretraining initialisation, usdrl.md §6)."""
    from harness.registry import ENCODERS

    encoder = ENCODERS.get(cfg.name)(cfg, in_channels=in_channels, frames=frames, joints=joints,
                                     persons=persons)
    if reference_init and callable(getattr(encoder, "init_weights", None)):
        encoder.init_weights()
    return encoder
