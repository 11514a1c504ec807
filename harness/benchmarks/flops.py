"""FLOP counting for encoders with ``torch.utils.flop_counter.FlopCounterMode``.

What FlopCounterMode counts: matrix multiplications (mm, addmm, bmm, baddbmm), convolutions and the
fused scaled-dot-product-attention kernels, at 2 FLOPs per multiply-accumulate; bias additions,
norms, softmax, activations, pooling and element-wise ops are not counted. That is the convention of
docs/reference/usdrl.md §7, so for DSTE at the paper configuration the count equals 2 × 6,224,150,528 MACs.

The DSTE/STTR attention runs as explicit batched matmuls (counted natively). For encoders that use
``F.scaled_dot_product_attention`` on CPU: torch registers formulas for the CUDA attention kernels
but not for the CPU one (``aten._scaled_dot_product_flash_attention_for_cpu``), which would count
as zero; :func:`count_flops` adds it (forward and backward) with torch's own SDPA formulas.
An encoder with a closed-form count declares it (``Encoder.analytic_macs``: DSTE's and STTR's
formulas live in their own modules); the contract tests check it against this counter.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_flops", "flop_counter", "encoder_flops", "projector_macs"]

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


def flop_counter() -> FlopCounterMode:
    """A FlopCounterMode with the CPU SDPA formulas added (see the module doc); read it inside the block
    with ``get_total_flops()`` (the training cost reads it after the forward and after the backward)."""
    return FlopCounterMode(display=False, custom_mapping=_custom_mapping())


def count_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Total FLOPs FlopCounterMode sees while running ``fn(*args, **kwargs)`` (see module doc)."""
    with flop_counter() as counter:
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


def projector_macs(in_features: int, hidden: int, out_features: int) -> int:
    return in_features * hidden + hidden * hidden + hidden * out_features
