"""The two-stream (temporal + spatial token) plumbing shared by DSTE, STTR and UmURL's encoder.

USDRL's encoders (docs/reference/usdrl.md §2–7) share the token streams, embeddings, PEs, pooling
and the detection branch's frame features; they differ only in the layers between. Those shared
pieces live here, public, so an encoder module never imports another encoder's private parts:

- :class:`TwoStreamEncoder` — base of DSTE and STTR (``_build_common`` + ``streams``);
- :func:`frame_features_from_streams` — (N, T, 2d) frame features from the two streams (also UmURL's);
- :func:`check_width` — the option checks DSTE and STTR share.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.contracts import Encoder, EncoderOutput
from harness.errors import HarnessError

from .layers import SinusoidalPE, SkeletonEmbedding, attention_kernel, init_weights, trunc_normal_

__all__ = ["TwoStreamEncoder", "check_width", "embedding_macs", "frame_features_from_streams"]


def embedding_macs(frames: int, tokens: int, in_t: int, in_s: int, d: int) -> int:
    """MACs per sample of the two skeleton embeddings (Linear → LN → ReLU → Linear per stream)."""
    return frames * (in_t * d + d * d) + tokens * (in_s * d + d * d)


def check_width(name: str, hidden: int, heads: int, layers: int) -> None:
    """The width checks every two-stream encoder makes (hidden a multiple of heads, ≥ 1 layer)."""
    if hidden < 1 or heads < 1 or hidden % heads:
        raise HarnessError(f"{name}: encoder.options.hidden ({hidden}) must be a positive multiple of "
                           f"encoder.options.heads ({heads})")
    if layers < 1:
        raise HarnessError(f"{name}: encoder.options.layers must be at least 1, got {layers}")


def frame_features_from_streams(y_t: torch.Tensor, y_s: torch.Tensor) -> torch.Tensor:
    """(N, T, 2d): y_t next to the spatial tokens average-pooled along the token axis to T positions.

    The reference's detection branch (docs/reference/usdrl.md §10); the pooled "spatial" positions are groups of
    joint tokens, not frames. Output i averages tokens ⌊S·i/T⌋ … ⌈S·(i+1)/T⌉ − 1.
    """
    pooled = F.adaptive_avg_pool1d(y_s.transpose(1, 2), y_t.shape[1]).transpose(1, 2)
    return torch.cat([y_t, pooled], dim=-1)


class TwoStreamEncoder(Encoder):
    """Shared plumbing of DSTE and STTR: embeddings, PEs, pooling, dense outputs.

    A subclass calls :meth:`_build_common` in ``__init__`` and implements :meth:`streams`."""

    @classmethod
    def attention(cls, impl: str | None = None) -> str:
        return attention_kernel(impl)  # shared by DSTE and STTR: one switch in layers.py

    def _build_common(self) -> None:
        d = self.options.hidden
        c, t, v, m = self.in_channels, self.frames, self.joints, self.persons
        self.ske_emb = SkeletonEmbedding(m * v * c, t * c, d)
        self.tpe = SinusoidalPE(d, max(200, t))
        self.spe = nn.Parameter(torch.zeros(1, m * v, d))
        trunc_normal_(self.spe, std=0.02)
        self.token_dim = d  # width of the dense temporal and spatial tokens
        self.feature_dim = 2 * d
        self.frame_dim = 2 * d

    def _check_input(self, x: torch.Tensor) -> None:
        want = (self.in_channels, self.frames, self.joints, self.persons)
        if x.dim() != 5 or tuple(x.shape[1:]) != want:
            raise ValueError(f"{type(self).__name__} expects (N, C, T, V, M) = (N, {', '.join(map(str, want))}), "
                             f"got {tuple(x.shape)}")

    def streams(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense outputs (y_t (N, T, d), y_s (N, M·V, d))."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        y_t, y_s = self.streams(x)
        pooled = torch.cat([y_t.amax(dim=1), y_s.amax(dim=1)], dim=-1)  # temporal half first
        return EncoderOutput(pooled=pooled, temporal=y_t, spatial=y_s)

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        y_t, y_s = self.streams(x)
        return frame_features_from_streams(y_t, y_s)

    def init_weights(self) -> None:
        """The reference's pretraining initialisation (docs/reference/usdrl.md §6); see layers.init_weights."""
        self.apply(init_weights)
