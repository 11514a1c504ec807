"""Random draws for the batched augmentations, and joint counts that scale with the topology.

Every draw takes an optional ``torch.Generator``: it is made on the generator's device (so a CPU
generator gives the same numbers whatever the data's device) and then moved to the data's device.
``None`` uses PyTorch's global generator.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

REFERENCE_JOINTS = 25  # the joint count the reference augmentation constants were written for

__all__ = ["REFERENCE_JOINTS", "scaled_count", "random_subsets"]


def scaled_count(count: int, num: int, reference: int = REFERENCE_JOINTS) -> int:
    """``count`` of ``reference`` items → ⌊count·num/reference + ½⌋, clamped to [1, num] (0 stays 0)."""
    if count <= 0 or num <= 0:
        return 0
    return max(1, min(num, math.floor(count * num / reference + 0.5)))


def _draw_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    """Where draws are made: the generator's device, else the data's (the global generator)."""
    return generator.device if generator is not None else device


def _rand(shape: Sequence[int] | int, generator: torch.Generator | None, device: torch.device,
          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """U[0, 1) drawn on the generator's device, returned on ``device``."""
    if isinstance(shape, int):
        shape = (shape,)
    r = torch.rand(tuple(shape), generator=generator, device=_draw_device(generator, device), dtype=dtype)
    return r.to(device)


def _uniform(shape: Sequence[int] | int, lo: float, hi: float, generator: torch.Generator | None,
             device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return _rand(shape, generator, device, dtype) * (hi - lo) + lo


def _coin(n: int, p: float, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """(n,) bool, each True with probability p (a draw is made even for p = 0 or 1)."""
    return _rand(n, generator, device) < p


def random_subsets(batch: int, n: int, k: int, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """(batch, n) bool with exactly k True per row, each k-subset equally likely (no replacement)."""
    device = torch.device(device)
    keys = _rand((batch, n), generator, device)
    mask = torch.zeros(batch, n, dtype=torch.bool, device=device)
    if k > 0:
        mask.scatter_(1, keys.topk(min(k, n), dim=1).indices, True)
    return mask


def _randint(n: int, high: int | torch.Tensor, generator: torch.Generator | None,
             device: torch.device) -> torch.Tensor:
    """(n,) uniform integers in [0, high) (``high`` may be per sample), via ⌊U·high⌋ in float64."""
    u = _rand(n, generator, device, torch.float64)
    high_t = torch.as_tensor(high, device=device)
    return torch.minimum((u * high_t).floor().long(), high_t.long() - 1)
