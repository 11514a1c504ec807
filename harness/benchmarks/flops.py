"""FLOP counting for encoders with ``torch.utils.flop_counter.FlopCounterMode``.

What FlopCounterMode counts: matrix multiplications (mm, addmm, bmm, baddbmm), convolutions and the
fused scaled-dot-product-attention kernels, at 2 FLOPs per multiply-accumulate; bias additions,
norms, softmax, activations, pooling and element-wise ops are not counted. That is the convention of
docs/reference/usdrl.md §7, so for DSTE at the paper configuration the count equals 2 × 6,224,150,528 MACs.

The DSTE/STTR attention runs as explicit batched matmuls (counted natively). For encoders that use
``F.scaled_dot_product_attention`` on CPU: torch registers formulas for the CUDA attention kernels
but not for the CPU one (``aten._scaled_dot_product_flash_attention_for_cpu``), which would count
as zero; :func:`count_flops` adds it (forward and backward) with torch's own SDPA formulas.
:func:`dste_macs` and :func:`sttr_macs` give the analytic counts for any configuration.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_flops", "encoder_flops", "dste_macs", "sttr_macs", "projector_macs", "usdrl_projector_macs"]

aten = torch.ops.aten


def _as4(shape: Any) -> tuple[int, int, int, int]:
    shape = tuple(shape)
    while len(shape) < 4:
        shape = (1,) + shape
    if len(shape) > 4:
        shape = (int(torch.tensor(shape[:-3]).prod()),) + shape[-3:]
    return shape  # type: ignore[return-value]


def _sdpa_cpu_flop(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(_as4(query_shape), _as4(key_shape), _as4(value_shape))


def _sdpa_cpu_backward_flop(grad_out_shape, query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_backward_flop_count

    return sdpa_backward_flop_count(_as4(grad_out_shape), _as4(query_shape), _as4(key_shape),
                                    _as4(value_shape))


def _custom_mapping() -> dict[Any, Callable[..., int]]:
    mapping: dict[Any, Callable[..., int]] = {}
    fwd = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    bwd = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None)
    if fwd is not None:
        mapping[fwd] = _sdpa_cpu_flop
    if bwd is not None:
        mapping[bwd] = _sdpa_cpu_backward_flop
    return mapping


def count_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Total FLOPs FlopCounterMode sees while running ``fn(*args, **kwargs)`` (see module doc)."""
    with FlopCounterMode(display=False, custom_mapping=_custom_mapping()) as counter:
        fn(*args, **kwargs)
    return counter.get_total_flops()


def encoder_flops(encoder: nn.Module, batch: int = 1, *, device: str | torch.device | None = None) -> float:
    """Forward FLOPs per sample of an encoder (eval mode, no grad), from a batch of ``batch`` zeros."""
    if device is None:
        device = next(encoder.parameters()).device
    x = torch.zeros(batch, encoder.in_channels, encoder.frames, encoder.joints, encoder.persons,
                    device=device)
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            total = count_flops(encoder, x)
    finally:
        encoder.train(was_training)
    return total / batch


def _embedding_macs(frames: int, tokens: int, in_t: int, in_s: int, d: int) -> int:
    return frames * (in_t * d + d * d) + tokens * (in_s * d + d * d)


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
    emb = _embedding_macs(frames, tokens, persons * joints * channels, frames * channels, d)
    return emb + layers * (layer(frames) + layer(tokens))


def sttr_macs(*, frames: int = 64, joints: int = 25, persons: int = 2, channels: int = 3, d: int = 1024,
              ffn: int = 1024, layers: int = 2) -> int:
    """Analytic forward MACs per sample of STTR (6·L·d² + 2·L²·d per layer at ffn = d)."""

    def layer(length: int) -> int:
        return 4 * length * d * d + 2 * length * length * d + 2 * length * d * ffn

    tokens = persons * joints
    emb = _embedding_macs(frames, tokens, persons * joints * channels, frames * channels, d)
    return emb + layers * (layer(frames) + layer(tokens))


def projector_macs(in_features: int, hidden: int, out_features: int) -> int:
    return in_features * hidden + hidden * hidden + hidden * out_features


def usdrl_projector_macs(d: int = 1024) -> int:
    """t_proj + s_proj + i_proj per sample (37,748,736 at d = 1024)."""
    return 2 * projector_macs(d, 2 * d, 2 * d) + projector_macs(2 * d, 2 * d, 4 * d)
