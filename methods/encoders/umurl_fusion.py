"""UmURL's encoder (``umurl``; docs/reference/methods.md §2; HuiGuanLab/UmURL @ 744278b ``umurl.py``).

Joint coordinates in; joint, bone and motion are derived inside (the encoder's ``input_modality``
is ``jbm``), so the backbone of a UmURL model is one model on J + B + M:

- **modality-specific embeddings** E_j, E_b, E_m, each USDRL's per-stream embedding (Linear → LN →
  ReLU → Linear) for the temporal (one token per frame, M·V·C wide) and the spatial (one token per
  person and joint, T·C wide) stream;
- **early fusion**: the mean of the three embeddings per stream, then a bias-free Linear(d, d) per
  stream (``mm_fusion.t_fusion`` / ``s_fusion``);
- **modality-agnostic encoder** (``ma_encoder``): per stream ``layers`` (1) post-LN transformer layers
  (d, ``heads`` heads, feed-forward ``ffn``, ReLU, dropout 0); the sinusoidal temporal PE is added
  once, before the temporal layers; no spatial PE. Each stream is max-pooled and the two are
  concatenated: y ∈ R^{2d}.

The method uses the pieces apart (:meth:`embed` one modality, :meth:`fuse` all three, :meth:`encode`
tokens): its uni-modal path skips the fusion Linear. PyTorch's default initialisation everywhere
(the reference applies no custom init). Token counts come from ``data.frames`` and the topology.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.contracts import FUSED_MODALITY, Encoder, EncoderOutput
from harness.transforms.modality import bone, motion
from harness.errors import HarnessError
from harness.registry import ENCODERS

from .two_stream import frame_features_from_streams
from .layers import SinusoidalPE, SkeletonEmbedding, spatial_tokens, temporal_tokens
from .sttr import post_ln_stack, run_post_ln


@dataclass
class UmURLEncoderOptions:
    """``encoder.options`` of ``umurl``; the defaults are the reference's (docs/reference/methods.md §2)."""

    hidden: int = 1024
    heads: int = 1
    ffn: int = 1024
    layers: int = 1  # transformer layers per stream of the modality-agnostic encoder


class _Fusion(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.t_fusion = nn.Linear(d, d, bias=False)
        self.s_fusion = nn.Linear(d, d, bias=False)


class _AgnosticEncoder(nn.Module):
    """ST_TR of the reference: temporal PE once + post-LN layers per stream."""

    def __init__(self, d: int, heads: int, ffn: int, layers: int, frames: int):
        super().__init__()
        self.pe = SinusoidalPE(d, max(200, frames))
        self.t_tr = post_ln_stack(d, heads, ffn, layers)
        self.s_tr = post_ln_stack(d, heads, ffn, layers)

    def forward(self, t: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return run_post_ln(self.t_tr, self.pe(t)), run_post_ln(self.s_tr, s)


@ENCODERS.register("umurl")
class UmURLEncoder(Encoder):
    """UmURL's encoder: J, B, M embeddings → early fusion → shared transformer → y_u (2d)."""

    name = "umurl"
    Options = UmURLEncoderOptions
    preset_defaults = {"cpu": {"hidden": 64, "ffn": 64}, "smoke": {"hidden": 32, "ffn": 32}}
    input_modality = FUSED_MODALITY
    MODALITY_KEYS = ("j", "b", "m")

    def __init__(self, options: UmURLEncoderOptions | None = None, **shape):
        o = options or UmURLEncoderOptions()
        super().__init__(o, **shape)
        if self.topology is None:
            raise HarnessError("umurl: the encoder needs the skeleton topology (bones)")
        if o.hidden < 1 or o.heads < 1 or o.hidden % o.heads or o.layers < 1 or o.ffn < 1:
            raise HarnessError(f"umurl: encoder.options.hidden ({o.hidden}) must be a positive multiple of heads "
                               f"({o.heads}); layers ({o.layers}) and ffn ({o.ffn}) at least 1")
        d = o.hidden
        t_in, s_in = self.persons * self.joints * self.in_channels, self.frames * self.in_channels
        self.j_emb = SkeletonEmbedding(t_in, s_in, d)
        self.b_emb = SkeletonEmbedding(t_in, s_in, d)
        self.m_emb = SkeletonEmbedding(t_in, s_in, d)
        self.mm_fusion = _Fusion(d)
        self.ma_encoder = _AgnosticEncoder(d, o.heads, o.ffn, o.layers, self.frames)
        self.feature_dim = 2 * d
        self.frame_dim = 2 * d

    # --- pieces -----------------------------------------------------------------------------
    def modality(self, x: torch.Tensor, key: str) -> torch.Tensor:
        return x if key == "j" else bone(x, self.topology) if key == "b" else motion(x)

    def embed(self, x: torch.Tensor, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        """A clip already in modality ``key`` → (temporal, spatial) embeddings of that modality."""
        emb = {"j": self.j_emb, "b": self.b_emb, "m": self.m_emb}[key]
        return emb(temporal_tokens(x), spatial_tokens(x))

    def fuse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Joint coordinates → fused (temporal, spatial) tokens of J, B and M."""
        ts, ss = zip(*(self.embed(self.modality(x, k), k) for k in self.MODALITY_KEYS))
        t, s = (ts[0] + ts[1] + ts[2]) / 3, (ss[0] + ss[1] + ss[2]) / 3
        return self.mm_fusion.t_fusion(t), self.mm_fusion.s_fusion(s)

    def encode(self, t: torch.Tensor, s: torch.Tensor) -> EncoderOutput:
        y_t, y_s = self.ma_encoder(t, s)
        return EncoderOutput(torch.cat([y_t.amax(dim=1), y_s.amax(dim=1)], dim=1), y_t, y_s)

    def check_clip(self, x: torch.Tensor) -> None:
        if x.dim() != 5 or x.shape[3] != self.joints:
            raise HarnessError(f"UmURL expects clips (N, C, T, {self.joints}, M), got {tuple(x.shape)}")
        if x.shape[2] != self.frames:
            raise HarnessError(f"UmURL was built for {self.frames} frames, got clips of {x.shape[2]}")

    # --- the Encoder seam -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> EncoderOutput:
        self.check_clip(x)
        return self.encode(*self.fuse(x))

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.forward(x)
        return frame_features_from_streams(out.temporal, out.spatial)
