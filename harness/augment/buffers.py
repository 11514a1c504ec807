"""Recycled CPU output buffers: a fresh large allocation costs page faults (the C allocator maps and
unmaps such blocks on every call), about half the time of the fused crop-resize on the CPU."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

__all__ = ["HostBufferPool", "DEFAULT_POOL"]


class _Lease:
    __slots__ = ("pool", "key", "block")

    def __init__(self, pool: "HostBufferPool", key: tuple, block: np.ndarray):
        self.pool, self.key, self.block = pool, key, block

    def __del__(self) -> None:  # the last tensor viewing the block is gone
        try:
            self.pool._give_back(self.key, self.block)
        except Exception:  # interpreter shutdown
            pass


class _LeasedArray(np.ndarray):
    """An ndarray view that carries its lease; torch.from_numpy keeps it alive with the storage."""


_NP_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


class HostBufferPool:
    """Recycles large CPU buffers once nothing refers to them.

    A buffer is handed out as ``torch.from_numpy`` of an ndarray view carrying a lease; PyTorch holds
    that view until the tensor storage dies (every view, slice and autograd reference of it), and
    then the lease returns the block to the pool. A block is therefore reused only when no tensor can
    see it. Reuse avoids the page faults of a fresh large allocation (the C allocator maps and unmaps
    such blocks on every call). At most ``max_free`` blocks per size are kept.
    """

    def __init__(self, max_free: int = 3):
        self.max_free = max_free
        self._free: dict[tuple, list[np.ndarray]] = {}

    def empty(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        np_dtype = _NP_DTYPES.get(dtype)
        numel = int(np.prod(shape))
        if np_dtype is None or numel == 0:
            return torch.empty(tuple(shape), dtype=dtype)
        key = (numel, dtype)
        free = self._free.get(key)
        block = None
        if free:
            try:
                block = free.pop()
            except IndexError:  # taken by another thread meanwhile
                block = None
        if block is None:
            block = np.empty(numel, dtype=np_dtype)
        view = block.view(_LeasedArray)
        view._lease = _Lease(self, key, block)
        return torch.from_numpy(view).view(tuple(shape))

    def _give_back(self, key: tuple, block: np.ndarray) -> None:
        free = self._free.setdefault(key, [])
        if len(free) < self.max_free:
            free.append(block)

    def clear(self) -> None:
        self._free.clear()


DEFAULT_POOL = HostBufferPool()


def _empty(shape: Sequence[int], dtype: torch.dtype, device: torch.device,
           pool: HostBufferPool | None) -> torch.Tensor:
    """An output buffer: from ``pool`` on the CPU, a plain allocation elsewhere or without a pool."""
    if pool is not None and device.type == "cpu":
        return pool.empty(shape, dtype)
    return torch.empty(tuple(shape), dtype=dtype, device=device)
