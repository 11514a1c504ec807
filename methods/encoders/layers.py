"""Building blocks shared by the DSTE and STTR encoders and the USDRL projectors.

Module and parameter names follow the USDRL reference (wengwanjiang/USDRL @ 7e83bb6, docs/reference/usdrl.md §3–6)
so that state dicts line up with the reference's (``ske_emb.t_embedding.0.weight``, ``tpe.pe``,
``spe``, ``t_proj.0.weight``, ...).
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import nn

from harness.errors import HarnessError

__all__ = [
    "SinusoidalPE", "SkeletonEmbedding", "Projector", "init_weights", "self_attention",
    "temporal_tokens", "spatial_tokens", "trunc_normal_",
]


def temporal_tokens(x: torch.Tensor) -> torch.Tensor:
    """(N, C, T, V, M) → (N, T, M·V·C); feature index m·V·C + v·C + c (docs/reference/usdrl.md §2)."""
    n, c, t, v, m = x.shape
    return x.permute(0, 2, 4, 3, 1).reshape(n, t, m * v * c)


def spatial_tokens(x: torch.Tensor) -> torch.Tensor:
    """(N, C, T, V, M) → (N, M·V, T·C); person-major tokens, feature index t·C + c (docs/reference/usdrl.md §2)."""
    n, c, t, v, m = x.shape
    return x.permute(0, 4, 3, 2, 1).reshape(n, m * v, t * c)


class SinusoidalPE(nn.Module):
    """Fixed sinusoidal positional encoding, added to (N, L, d); no dropout.

    ``pe[p, 2i] = sin(p / 10000^(2i/d))``, ``pe[p, 2i+1] = cos(same)``. The buffer is called ``pe``
    with shape (1, max_len, d) as in the reference (max_len 200 there; here max(200, frames)).
    """

    def __init__(self, d_model: int, max_len: int = 200):
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(1, max_len, d_model)
        pe[0, :, 0::2] = torch.sin(position * div_term)
        pe[0, :, 1::2] = torch.cos(position * div_term[: d_model // 2])
        self.register_buffer("pe", pe)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.size(1) > self.pe.size(1):
            raise ValueError(f"sequence of {x.size(1)} tokens exceeds the positional encoding's "
                             f"{self.pe.size(1)} positions")
        return x + self.pe[:, : x.size(1)]


def _embedding(in_features: int, d: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, d), nn.LayerNorm(d), nn.ReLU(True), nn.Linear(d, d))


class SkeletonEmbedding(nn.Module):
    """Per-stream token embedding Linear → LayerNorm → ReLU → Linear (docs/reference/usdrl.md §3)."""

    def __init__(self, t_input_size: int, s_input_size: int, hidden: int):
        super().__init__()
        self.t_embedding = _embedding(t_input_size, hidden)
        self.s_embedding = _embedding(s_input_size, hidden)

    def forward(self, t_src: torch.Tensor, s_src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.t_embedding(t_src), self.s_embedding(s_src)


class Projector(nn.Sequential):
    """USDRL projector: (Linear → BatchNorm1d → ReLU) × 2 → Linear (docs/reference/usdrl.md §6).

    ``Projector(1024, 2048, 2048)`` is t_proj / s_proj and ``Projector(2048, 2048, 4096)`` is i_proj
    at the paper configuration. Indices 0–6 match the reference's ``nn.Sequential`` keys.
    """

    def __init__(self, in_features: int, hidden: int, out_features: int):
        super().__init__(
            nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(True),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(True),
            nn.Linear(hidden, out_features),
        )

    def forward_views(self, x: torch.Tensor, views: int) -> torch.Tensor:
        """The projector on ``views`` stacked views (views·B, in) → (views·B, out), equal to calling it
        once per view: BatchNorm statistics (and running-stat updates, in view order) are per view,
        while each Linear runs once on all rows, so its weights are read once instead of per view
        (2.5× faster for the paper's projectors at B = 8).
        """
        if x.shape[0] % views:
            raise ValueError(f"{x.shape[0]} rows do not split into {views} views")
        b = x.shape[0] // views
        for m in self:
            if isinstance(m, nn.BatchNorm1d):
                x = torch.cat([m(chunk) for chunk in x.split(b)])
            else:
                x = m(x)
        return x


def init_weights(module: nn.Module) -> None:
    """The reference's pretraining initialisation, for ``model.apply(init_weights)`` (docs/reference/usdrl.md §6).

    Every ``nn.Linear`` (this includes attention ``out_proj``, the DSA token-mixing layers, the
    embeddings, the projectors and STTR's feed-forward layers): weight ~ truncated normal(0, 0.02)
    with absolute bounds ±2, bias 0. LayerNorm: weight 1, bias 0. Attention ``in_proj_weight``
    (not a Linear), Conv1d and BatchNorm keep their PyTorch defaults.
    """
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm) and module.elementwise_affine:
        nn.init.ones_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


# How softmax(q kᵀ / sqrt(d_head)) v is computed: "auto" = PyTorch's fused
# scaled_dot_product_attention on CUDA (flash / memory-efficient kernels: no L×L score tensor kept
# for backward) and explicit batched matmuls elsewhere; "sdpa" or "matmul" force one everywhere
# (tests force "sdpa" on CPU to check it against the matmuls). Same maths, float rounding apart.
ATTENTION_IMPLS = ("auto", "sdpa", "matmul")
ATTENTION_IMPL = os.environ.get("HARNESS_ATTENTION", "auto")


def attention_kernel(impl: str | None = None) -> str:
    """:data:`ATTENTION_IMPL`, set first when ``impl`` is given (the encoders' ``attention`` hook)."""
    global ATTENTION_IMPL
    if impl is not None:
        if impl not in ATTENTION_IMPLS:
            raise HarnessError(f"attention must be one of {', '.join(ATTENTION_IMPLS)}, got {impl!r}")
        ATTENTION_IMPL = impl
    return ATTENTION_IMPL


def _use_sdpa(x: torch.Tensor) -> bool:
    impl = ATTENTION_IMPL
    if impl not in ATTENTION_IMPLS:
        raise HarnessError(f"HARNESS_ATTENTION / layers.ATTENTION_IMPL must be one of {', '.join(ATTENTION_IMPLS)}, "
                           f"got {impl!r}")
    return impl == "sdpa" or (impl == "auto" and x.is_cuda)


def self_attention(x: torch.Tensor, attn: nn.MultiheadAttention) -> torch.Tensor:
    """``attn(x, x, x)[0]`` for a batch-first ``nn.MultiheadAttention`` without masks or dropout.

    Uses the module's own parameters (packed ``in_proj_weight``, ``out_proj``), so the parameter
    layout and state dict stay those of ``nn.MultiheadAttention``: one packed qkv GEMM, then
    softmax(q kᵀ / sqrt(d_head)) v, then the output projection. Equal to the module's result up to
    float rounding. The middle step follows ``ATTENTION_IMPL``: on CPU the explicit batched matmuls
    are faster than the fused SDPA kernel for these long heads (d_head = 1024, L ≤ 64), notably in
    backward; on CUDA the fused kernel is used.
    """
    b, length, d = x.shape
    h = attn.num_heads
    dh = d // h
    qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)
    if _use_sdpa(x):  # (B, L, 3, h, dh) → three (B, h, L, dh); the default scale is 1/sqrt(dh)
        q, k, v = qkv.view(b, length, 3, h, dh).permute(2, 0, 3, 1, 4).unbind(0)
        o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, length, d)
        return F.linear(o, attn.out_proj.weight, attn.out_proj.bias)
    if h == 1:
        q, k, v = qkv.split(d, dim=-1)
    else:  # (B, L, 3, h, dh) → three (B·h, L, dh)
        q, k, v = qkv.view(b, length, 3, h, dh).permute(2, 0, 3, 1, 4).reshape(3, b * h, length, dh).unbind(0)
    scores = torch.bmm(q, k.transpose(1, 2)).mul_(dh ** -0.5)
    o = torch.bmm(torch.softmax(scores, dim=-1), v)
    if h > 1:
        o = o.view(b, h, length, dh).transpose(1, 2).reshape(b, length, d)
    return F.linear(o, attn.out_proj.weight, attn.out_proj.bias)
