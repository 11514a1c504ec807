"""DSTE: USDRL's dense spatio-temporal encoder (docs/reference/usdrl.md §2–4, §6–7).

Two token streams from a clip (N, C, T, V, M):

- temporal: (N, T, M·V·C), one token per frame, feature index m·V·C + v·C + c;
- spatial: (N, M·V, T·C), one token per (person, joint), person-major, feature index t·C + c.

Each stream is embedded (Linear → LN → ReLU → Linear) and runs through ``layers`` DST layers
(2 in the reference, where the depth is hard-coded). The fixed sinusoidal temporal PE is added before
every temporal layer, the learned spatial PE (1, M·V, d) before every spatial layer.

A DST layer is ``alpha·CA(x) + (1 − alpha)·DSA(x)`` with one ``nn.MultiheadAttention`` shared by CA
and DSA. The optimised :meth:`DSTLayer.forward` fuses the residuals, stochastic depth and the final
weighting, and has two layouts of the same computation (``BATCH_ATTENTION``): on CUDA it runs the
three attention calls of a layer (CA, and DSA's two passes on F_m and on x) as one batched call and
DSA's two passes through one MLP call (fewer, larger kernels); on the CPU it runs them apart, which
saves the concatenation copies (≈ 10 % of a layer at d = 64, within 1 % at d = 1024). Both draw the
same stochastic-depth masks in the same order and equal the straightforward composition
``alpha·CA.forward(x) + beta·DSA.forward(x)`` up to float rounding (tests/test_encoders.py keeps a
reference-style slow path and checks 1e-5; tests/test_speed_paths.py checks the two layouts).

Departures from the reference, all of which leave the paper configuration unchanged:

- depth is ``layers`` (``encoder.options.layers``, default 2 = the reference); layers beyond the first are named ``t_tr1``,
  ``t_tr2``, ... as the reference's second layer is, so depth-2 state dicts match the reference's;
- sequence lengths (token-mixing Linear(L, L), spatial PE rows) come from ``frames``, ``joints`` and
  ``persons`` instead of the hard-coded 64 and 50;
- CA's Conv1d uses ``padding='same'`` when ``kernel > 1`` (the reference has no padding, so any
  kernel > 1 changes the token count and its residual add fails); kernel 1 is identical;
- the sinusoidal PE has max(200, frames) positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp
from torch import nn

from harness.errors import HarnessError
from harness.registry import ENCODERS
from .layers import self_attention, spatial_tokens, temporal_tokens
from .two_stream import TwoStreamEncoder, check_width, embedding_macs, frame_features_from_streams  # noqa: F401

__all__ = ["DSTE", "DSTEOptions", "DSTLayer", "ConvAttention", "DenseShiftAttention", "dense_shift_mask",
           "check_width", "frame_features_from_streams", "dste_macs"]


@dataclass
class DSTEOptions:
    """``encoder.options`` of DSTE; the defaults are the reference's (docs/reference/usdrl.md §1, §4)."""

    hidden: int = 1024  # token width d (C_e = C_r)
    heads: int = 1
    layers: int = 2  # DST layers per stream
    mlp_hidden: int = 2048  # width of the DST MLPs
    alpha: float = 0.5  # CA weight; the DSA weight is 1 - alpha (1 = CA only, 0 = DSA only)
    gap: int = 4  # DenseShift stride (1 = no shift)
    kernel: int = 1  # CA Conv1d kernel
    drop_path: float = 0.1





# The layout of DSTLayer.forward: None = batched on CUDA, apart elsewhere; True / False force one.
BATCH_ATTENTION: bool | None = None


def dense_shift_mask(length: int, gap: int) -> torch.Tensor:
    """Bool (length,): True at the tokens DenseShift keeps original (indices 0, gap, 2·gap, ...)."""
    keep = torch.zeros(length, dtype=torch.bool)
    keep[::gap] = True
    return keep


def _new_attention(d: int, heads: int) -> nn.MultiheadAttention:
    return nn.MultiheadAttention(embed_dim=d, num_heads=heads, dropout=0.0, bias=True, batch_first=True)


def _ln(x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


class ConvAttention(nn.Module):
    """CA (docs/reference/usdrl.md §4): c = x + ReLU(Conv1d(x)); a = x + DP(Attn(LN1(c))); CA = DP(MLP(LN2(a))).

    There is no residual around the MLP: CA returns only the MLP branch.
    """

    def __init__(self, dim: int, attn: nn.MultiheadAttention, kernel: int, mlp_hidden: int,
                 drop_path: float):
        super().__init__()
        self.attn = attn  # shared with the layer's DSA
        self.conv1 = nn.Conv1d(dim, dim, kernel_size=kernel, padding=0 if kernel == 1 else "same")
        self.act = nn.ReLU()
        self.drop = DropPath(drop_path)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_hidden, dim, act_layer=nn.GELU)

    def conv_residual(self, x: torch.Tensor) -> torch.Tensor:
        """c = x + ReLU(Conv1d(x)) on (N, L, d) tokens (the conv runs along the token axis)."""
        if self.conv1.kernel_size[0] == 1:  # a per-token channel mix: a GEMM, no transposes
            y = F.linear(x, self.conv1.weight.squeeze(-1), self.conv1.bias)
        else:  # 'same' padding, the extra pad on the right for even kernels (as torch pads)
            k = self.conv1.kernel_size[0]
            xt = F.pad(x.transpose(1, 2), ((k - 1) // 2, k // 2))
            y = F.conv1d(xt, self.conv1.weight, self.conv1.bias).transpose(1, 2)
        return x + F.relu(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv_residual(x)
        a = x + self.drop(self_attention(self.norm1(c), self.attn))
        return self.drop(self.mlp(self.norm2(a)))


class DenseShiftAttention(nn.Module):
    """DSA (docs/reference/usdrl.md §4): token mixing + DenseShift gives F_m; the mean of one shared pre-LN block
    applied to F_m and to x."""

    def __init__(self, seqlen: int, dim: int, gap: int, attn: nn.MultiheadAttention, mlp_hidden: int,
                 drop_path: float):
        super().__init__()
        self.gap = gap
        self.wt1 = nn.Linear(seqlen, seqlen)
        self.wt2 = nn.Linear(seqlen, seqlen)
        self.act = nn.ReLU()
        self.drop = DropPath(drop_path)
        self.attn = attn  # shared with the layer's CA
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_hidden, dim, act_layer=nn.GELU)
        # 1 where the token takes the mixed value, 0 where DenseShift keeps the original
        self.register_buffer("mix", (~dense_shift_mask(seqlen, gap)).float(), persistent=False)

    def shift(self, x: torch.Tensor) -> torch.Tensor:
        """F_m (N, L, d): tokens at 0, gap, 2·gap, ... keep x; the others take W2(ReLU(W1 xᵀ))ᵀ + x.

        Runs in the (N, L, d) layout (W1 @ x instead of transposing to (N, d, L)), as batched
        matmuls of the broadcast (L, L) weight with the bias folded in (``baddbmm``): ``matmul``
        would copy x and its gradient to the transposed layout and back (half the time of this step
        at d = 64). Zeroing wt2's rows at the kept tokens makes those rows exactly x and their
        gradients exactly zero, as the reference's overwrite does.
        """
        n, length = x.shape[:2]
        h = torch.baddbmm(self.wt1.bias[:, None], self.wt1.weight.expand(n, length, length), x).relu_()
        mix = self.mix.to(x.dtype)
        w2 = self.wt2.weight * mix[:, None]
        b2 = self.wt2.bias * mix
        return torch.baddbmm(b2[:, None], w2.expand(n, length, length), h) + x

    def block(self, z: torch.Tensor) -> torch.Tensor:
        """B(z) = u + DP(MLP(LN2(u))), u = z + DP(Attn(LN1(z)))."""
        u = z + self.drop(self_attention(self.norm1(z), self.attn))
        return u + self.drop(self.mlp(self.norm2(u)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.block(self.shift(x)) + self.block(x)) * 0.5


class DSTLayer(nn.Module):
    """alpha·CA(x) + (1 − alpha)·DSA(x), CA and DSA sharing one attention module."""

    def __init__(self, seqlen: int, dim: int, *, heads: int, mlp_hidden: int, alpha: float, gap: int,
                 kernel: int, drop_path: float):
        super().__init__()
        self.seqlen = seqlen
        attn = _new_attention(dim, heads)
        self.CA = ConvAttention(dim, attn, kernel, mlp_hidden, drop_path)
        self.DSA = DenseShiftAttention(seqlen, dim, gap, attn, mlp_hidden, drop_path)
        self.alpha = float(alpha)
        self.beta = 1.0 - float(alpha)

    @property
    def attn(self) -> nn.MultiheadAttention:
        return self.CA.attn

    def forward_reference(self, x: torch.Tensor) -> torch.Tensor:
        """The unfused composition (three separate attention calls, two DSA block calls)."""
        return self.alpha * self.CA(x) + self.beta * self.DSA(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batched = x.is_cuda if BATCH_ATTENTION is None else BATCH_ATTENTION
        out = self._dsa_batched(x) if batched else self._dsa_apart(x)
        ca_mlp = self.CA.mlp(_ln(out[1], self.CA.norm2))  # CA returns only the MLP branch (no residual)
        ca_mask = self._mask(self.CA.drop, x.shape[0], x)
        if ca_mask is None:
            return out[0].add_(ca_mlp, alpha=self.alpha)
        return out[0].addcmul_(ca_mlp, ca_mask.mul_(self.alpha))

    def _dsa_batched(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(beta·DSA(x), a = x + DP(Attn(LN1(c)))) with the three attention passes in one call."""
        ca, dsa = self.CA, self.DSA
        n = x.shape[0]
        c = ca.conv_residual(x)
        p = torch.cat([dsa.shift(x), x])  # DSA's two passes, batched: [F_m; x]
        # the shared attention for CA and both DSA passes, in one call on 3N sequences
        o = self_attention(torch.cat([_ln(c, ca.norm1), _ln(p, dsa.norm1)]), self.attn)
        a = _add_drop(x, o[:n], self._mask(ca.drop, n, x))  # residual to x, not to c
        u = _add_drop(p, o[n:], self._mask(dsa.drop, 2 * n, x))
        b = _add_drop(u, dsa.mlp(_ln(u, dsa.norm2)), self._mask(dsa.drop, 2 * n, x))
        return torch.add(b[:n], b[n:]).mul_(0.5 * self.beta), a  # beta · (B(F_m) + B(x)) / 2

    def _dsa_apart(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same as :meth:`_dsa_batched` (same masks, drawn in the same order), pass by pass."""
        ca, dsa = self.CA, self.DSA
        n = x.shape[0]
        fm = dsa.shift(x)
        o_c = self_attention(_ln(ca.conv_residual(x), ca.norm1), self.attn)
        o_f = self_attention(_ln(fm, dsa.norm1), self.attn)
        o_x = self_attention(_ln(x, dsa.norm1), self.attn)
        m_a, m_u, m_b = self._mask(ca.drop, n, x), self._mask(dsa.drop, 2 * n, x), self._mask(dsa.drop, 2 * n, x)
        half = (lambda m, i: None if m is None else m[i * n:(i + 1) * n])  # noqa: E731
        a = _add_drop(x, o_c, m_a)  # residual to x, not to c
        u_f, u_x = _add_drop(fm, o_f, half(m_u, 0)), _add_drop(x, o_x, half(m_u, 1))
        b_f = _add_drop(u_f, dsa.mlp(_ln(u_f, dsa.norm2)), half(m_b, 0))
        b_x = _add_drop(u_x, dsa.mlp(_ln(u_x, dsa.norm2)), half(m_b, 1))
        return torch.add(b_f, b_x).mul_(0.5 * self.beta), a

    def _mask(self, drop: DropPath, rows: int, like: torch.Tensor) -> torch.Tensor | None:
        """A per-sample stochastic-depth scale (rows, 1, 1): 0 or 1/keep; None when inactive.

        Each call draws a fresh mask; on the batched [F_m; x] rows each half gets its own, as the
        reference's two separate DropPath calls do.
        """
        p = drop.drop_prob
        if not self.training or not p:
            return None
        keep = 1.0 - p
        return like.new_empty((rows, 1, 1)).bernoulli_(keep).div_(keep)


def _add_drop(base: torch.Tensor, branch: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """base + DropPath(branch) in one pass."""
    return base + branch if mask is None else torch.addcmul(base, branch, mask)


def _layer_name(prefix: str, i: int) -> str:
    return prefix if i == 0 else f"{prefix}{i}"


def dste_macs(*, frames: int = 64, joints: int = 25, persons: int = 2, channels: int = 3, d: int = 1024,
              mlp_hidden: int = 2048, layers: int = 2, kernel: int = 1) -> int:
    """Analytic forward MACs per sample of DSTE (docs/reference/usdrl.md §7: 25·L·d² + 8·L²·d per layer at
    mlp_hidden = 2d, kernel 1)."""

    def layer(length: int) -> int:
        conv = kernel * length * d * d
        attn = 3 * (4 * length * d * d + 2 * length * length * d)  # CA + two DSA passes
        mlp = 3 * 2 * length * d * mlp_hidden
        mixing = 2 * length * length * d
        return conv + attn + mlp + mixing

    tokens = persons * joints
    emb = embedding_macs(frames, tokens, persons * joints * channels, frames * channels, d)
    return emb + layers * (layer(frames) + layer(tokens))


def check_dste_options(o: DSTEOptions) -> None:
    check_width("dste", o.hidden, o.heads, o.layers)
    for key in ("gap", "kernel", "mlp_hidden"):
        if getattr(o, key) < 1:
            raise HarnessError(f"dste: encoder.options.{key} must be at least 1, got {getattr(o, key)}")
    if not 0.0 <= o.drop_path < 1.0:
        raise HarnessError(f"dste: encoder.options.drop_path must be in [0, 1), got {o.drop_path}")


@ENCODERS.register("dste")
class DSTE(TwoStreamEncoder):
    """Dense spatio-temporal encoder of USDRL (DST layers: convolutional + dense-shift attention)."""

    name = "dste"
    Options = DSTEOptions
    preset_defaults = {"cpu": {"hidden": 64, "mlp_hidden": 128}, "smoke": {"hidden": 32, "mlp_hidden": 64}}

    def __init__(self, options: DSTEOptions | None = None, **shape):
        o = options or DSTEOptions()
        super().__init__(o, **shape)
        check_dste_options(o)
        self._build_common()
        d = o.hidden
        common = dict(heads=o.heads, mlp_hidden=o.mlp_hidden, alpha=o.alpha, gap=o.gap, kernel=o.kernel,
                      drop_path=o.drop_path)
        self.num_layers = o.layers
        frames, joints, persons = self.frames, self.joints, self.persons
        for i in range(o.layers):  # reference order: t_tr, s_tr, t_tr1, s_tr1
            setattr(self, _layer_name("t_tr", i), DSTLayer(frames, d, **common))
            setattr(self, _layer_name("s_tr", i), DSTLayer(persons * joints, d, **common))

    def analytic_macs(self) -> int:
        o = self.options
        return dste_macs(frames=self.frames, joints=self.joints, persons=self.persons, channels=self.in_channels,
                         d=o.hidden, mlp_hidden=o.mlp_hidden, layers=o.layers, kernel=o.kernel)

    def temporal_layers(self) -> list[DSTLayer]:
        return [getattr(self, _layer_name("t_tr", i)) for i in range(self.num_layers)]

    def spatial_layers(self) -> list[DSTLayer]:
        return [getattr(self, _layer_name("s_tr", i)) for i in range(self.num_layers)]

    def streams(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_input(x)
        y_t, y_s = self.ske_emb(temporal_tokens(x), spatial_tokens(x))
        for layer in self.temporal_layers():
            y_t = layer(self.tpe(y_t))  # the PE before every temporal layer
        for layer in self.spatial_layers():
            y_s = layer(y_s + self.spe)  # the same learned PE before every spatial layer
        return y_t, y_s
