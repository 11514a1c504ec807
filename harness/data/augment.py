"""Batched skeleton augmentations on the training device: one call per batch, no per-sample loop.

Every random draw takes a ``torch.Generator`` (drawn on the generator's device, then moved to the
data's), and every parameter is per sample. Clips are (N, 3, T, V, M) joint coordinates; nothing
here assumes 25 joints or 2 persons.

Building blocks (functions, and the same as :class:`Compose` steps):

- :func:`crop_resize` — USDRL/UmURL temporal crop-resize (usdrl.md §9.1): scale ~ U(ratio),
  ℓ = min(max(⌊nf·scale⌋, min_length), nf) with ``min_length`` = ``frames`` by default, start uniform
  in [0, nf − ℓ], linear resampling with half-pixel centres (:func:`harness.data.resample.resample`).
- :func:`shear` (S = I + off-diagonals U(−m, m), p' = S·p), :func:`joint_corruption` and
  :func:`usdrl_spatial` (usdrl.md §9.2), :func:`rotate_aimclr` (one main axis U(0°, 30°), the other
  two U(0°, 1°); AimCLR/SCD-Net) and :func:`rotate_euler` (three angles U(−0.3, 0.3) rad; MAMP),
  :func:`axis_mask`, :func:`flip` (``Topology.flip``), :func:`gaussian_noise`,
  :func:`gaussian_blur`, :func:`joint_mask`, :func:`structural_mask` and :func:`temporal_mask`
  (SCD-Net, methods.md §3). Each has a per-sample probability ``p``.

Joint counts scale with the topology (:func:`scaled_count`): the reference values are for 25 joints
and become ⌊n·V/25 + ½⌋ (at least 1), so USDRL's 15 corrupted joints are 15 of 25 (NTU) and 12 of 20
(MSR); SCD-Net's 5 seeds and 8 masked joints become 4 and 6 of 20. SCD-Net's 6 masked chunks out of
16 scale the same way with the number of 4-frame chunks.

Spatial maps are per (clip, joint) 3×3 matrices acting on column vectors p = (x, y, z), stored
two-level (:class:`JointMaps`: one matrix for the selected joints, another for the rest), so a run of
linear steps is fused into one application and, after a crop, into the resampling gather itself
(:func:`crop_resize_map`: ``embedding_bag`` computes Σ_j G_ij·((1−λ)·x_j[lo] + λ·x_j[hi]) for every
output row of V·M values, a few calls per batch). Translation-free maps keep zero-padded persons at
exactly zero. AimCLR's Gaussian blur is reproduced with its unnormalised taps (see
:class:`GaussianBlur`).

:func:`usdrl_views` is the whole USDRL/UmURL pretraining view set. On the CPU its outputs come from
a :class:`HostBufferPool` that recycles a buffer once no tensor refers to it any more (fresh large
allocations cost page faults that were about half the time of this step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import HarnessError
from .resample import resample, source_positions
from .topology import Topology

REFERENCE_JOINTS = 25  # the joint count the reference augmentation constants were written for

__all__ = [
    "scaled_count", "random_subsets", "HostBufferPool", "JointMaps", "apply_joint_maps",
    "crop_windows", "crop_resize", "crop_resize_map", "shear_matrices", "rotation_matrices",
    "aimclr_angles", "euler_angles", "shear", "rotate_aimclr", "rotate_euler", "axis_mask",
    "joint_corruption", "usdrl_spatial", "flip", "gaussian_noise", "gaussian_blur", "joint_mask",
    "structural_mask", "temporal_mask", "usdrl_views", "usdrl_pipeline", "Compose", "CropResize",
    "JointMapStep", "Shear", "RotateAimCLR", "RotateEuler", "AxisMask", "JointCorruption",
    "USDRLSpatial", "Flip", "GaussianNoise", "GaussianBlur", "JointMask", "StructuralMask",
    "TemporalMask", "Lambda", "Step", "DEFAULT_POOL",
]


# --- counts and random draws ---------------------------------------------------------------------
def scaled_count(count: int, num: int, reference: int = REFERENCE_JOINTS) -> int:
    """``count`` of ``reference`` items → ⌊count·num/reference + ½⌋, clamped to [1, num] (0 stays 0)."""
    if count <= 0 or num <= 0:
        return 0
    return max(1, min(num, math.floor(count * num / reference + 0.5)))


def _draw_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
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


# --- output buffers --------------------------------------------------------------------------------
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
    if pool is not None and device.type == "cpu":
        return pool.empty(shape, dtype)
    return torch.empty(tuple(shape), dtype=dtype, device=device)


# --- per-joint linear maps ---------------------------------------------------------------------------
def _eye(n: int, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.eye(3, device=device, dtype=dtype).expand(n, 3, 3).clone()


@dataclass
class JointMaps:
    """Per (clip, joint) 3×3 maps p' = A·p (column vectors), two-level.

    A[b, v] = ``L[b]`` where ``selected[b, v]``, else ``G[b]``; ``selected`` None means one map per
    clip. ``dense`` (N, V, 3, 3), when set, overrides both (the general case two-level maps cannot
    express, e.g. two different joint selections composed).
    """

    G: torch.Tensor  # (N, 3, 3)
    L: torch.Tensor | None = None  # (N, 3, 3)
    selected: torch.Tensor | None = None  # (N, V) bool
    dense: torch.Tensor | None = None  # (N, V, 3, 3)

    @classmethod
    def identity(cls, n: int, device: torch.device | str = "cpu") -> "JointMaps":
        return cls(_eye(n, torch.device(device)))

    @property
    def batch(self) -> int:
        return self.G.shape[0]

    def to_dense(self, joints: int) -> torch.Tensor:
        if self.dense is not None:
            return self.dense
        a = self.G[:, None].expand(self.batch, joints, 3, 3)
        if self.selected is None:
            return a.contiguous()
        return torch.where(self.selected[:, :, None, None], self.L[:, None], a)

    def then(self, other: "JointMaps") -> "JointMaps":
        """The maps of applying ``self`` first and ``other`` second (A = A_other · A_self)."""
        if self.dense is None and other.dense is None:
            if other.selected is None:
                return JointMaps(other.G @ self.G, None if self.L is None else other.G @ self.L,
                                 self.selected)
            if self.selected is None:
                return JointMaps(other.G @ self.G, other.L @ self.G, other.selected)
        joints = next(t.shape[1] for t in (self.dense, self.selected, other.dense, other.selected)
                      if t is not None)
        dense = other.to_dense(joints) @ self.to_dense(joints)
        return JointMaps(dense[:, 0].contiguous(), dense=dense)

    def index(self, idx: torch.Tensor) -> "JointMaps":
        pick = (lambda t: None if t is None else t[idx])
        return JointMaps(self.G[idx], pick(self.L), pick(self.selected), pick(self.dense))


def _apply_global(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """p' = G[b]·p for every joint, frame and person of clip b."""
    n, c = x.shape[:2]
    if c != 3:
        raise HarnessError(f"spatial augmentations need xyz coordinates (C = 3), got C = {c}")
    out = torch.bmm(g.to(x.dtype), x.reshape(n, 3, -1))
    return out.view(x.shape)


def apply_joint_maps(x: torch.Tensor, maps: JointMaps) -> torch.Tensor:
    """Apply per-(clip, joint) maps to (N, 3, T, V, M)."""
    n, c, t, v, m = x.shape
    if maps.dense is not None:
        a = maps.dense.to(x.dtype).permute(0, 2, 3, 1)[:, :, :, None, :, None]  # (N, i, j, 1, V, 1)
        out = x[:, 0:1] * a[:, :, 0]
        out.addcmul_(x[:, 1:2], a[:, :, 1])
        out.addcmul_(x[:, 2:3], a[:, :, 2])
        return out
    out = _apply_global(x, maps.G)
    if maps.selected is None:
        return out
    sel = maps.selected[:, None, None, :, None]
    if not bool(sel.any()):
        return out
    return torch.where(sel, _apply_global(x, maps.L), out)


def shear_matrices(n: int, magnitude: float = 1.0, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, 3, 3) S = [[1, a, b], [c, 1, d], [e, f, 1]], off-diagonals U(−m, m) drawn in that order."""
    device = torch.device(device)
    off = _uniform((n, 6), -magnitude, magnitude, generator, device)
    s = _eye(n, device)
    s[:, 0, 1], s[:, 0, 2], s[:, 1, 0] = off[:, 0], off[:, 1], off[:, 2]
    s[:, 1, 2], s[:, 2, 0], s[:, 2, 1] = off[:, 3], off[:, 4], off[:, 5]
    return s


def rotation_matrices(angles: torch.Tensor) -> torch.Tensor:
    """(n, 3) angles (radians, about x, y, z) → (n, 3, 3) R = Rz·Ry·Rx acting on column vectors.

    The AimCLR/SCD-Net/MAMP convention: Rx = [[1, 0, 0], [0, c, s], [0, −s, c]],
    Ry = [[c, 0, −s], [0, 1, 0], [s, 0, c]], Rz = [[c, s, 0], [−s, c, 0], [0, 0, 1]].
    """
    c, s = angles.cos(), angles.sin()
    one, zero = torch.ones_like(c[:, 0]), torch.zeros_like(c[:, 0])

    def mat(rows: list[list[torch.Tensor]]) -> torch.Tensor:
        return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)

    rx = mat([[one, zero, zero], [zero, c[:, 0], s[:, 0]], [zero, -s[:, 0], c[:, 0]]])
    ry = mat([[c[:, 1], zero, -s[:, 1]], [zero, one, zero], [s[:, 1], zero, c[:, 1]]])
    rz = mat([[c[:, 2], s[:, 2], zero], [-s[:, 2], c[:, 2], zero], [zero, zero, one]])
    return rz @ ry @ rx


def aimclr_angles(n: int, main_degrees: tuple[float, float] = (0.0, 30.0),
                  other_degrees: tuple[float, float] = (0.0, 1.0), generator: torch.Generator | None = None,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, 3) radians: one main axis (uniform of x, y, z) U(main), the other two U(other), in degrees."""
    device = torch.device(device)
    main = _randint(n, 3, generator, device)
    big = _uniform((n, 3), *main_degrees, generator, device)
    small = _uniform((n, 3), *other_degrees, generator, device)
    is_main = torch.arange(3, device=device)[None] == main[:, None]
    return torch.deg2rad(torch.where(is_main, big, small))


def euler_angles(n: int, theta: float = 0.3, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, 3) radians, each U(−θ, θ) (MAMP's ``random_rot``)."""
    return _uniform((n, 3), -theta, theta, generator, torch.device(device))


# --- temporal crop-resize --------------------------------------------------------------------------
def crop_windows(lengths: torch.Tensor, frames: int, ratio: tuple[float, float] = (0.1, 1.0),
                 min_length: int | None = None, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crop windows (ℓ, start) per clip: ℓ = min(max(⌊nf·U(ratio)⌋, min_length), nf),
    start uniform in [0, nf − ℓ]; ``min_length`` defaults to ``frames``. Scale and start are drawn in
    float64, like NumPy's ``rand``/``randint`` in the reference feeders."""
    device = lengths.device
    nf = lengths.to(torch.long).clamp(min=1)
    n = nf.shape[0]
    lo, hi = ratio
    scale = _rand(n, generator, device, torch.float64) * (hi - lo) + lo
    floor_len = (nf.to(torch.float64) * scale).floor().long()
    crop = torch.minimum(floor_len.clamp(min=frames if min_length is None else min_length), nf)
    start = _randint(n, nf - crop + 1, generator, device)
    return crop, start


def crop_resize(x: torch.Tensor, lengths: torch.Tensor, frames: int = 64, ratio: tuple[float, float] = (0.1, 1.0),
                min_length: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, C, T, V, M) + valid lengths → (B, C, frames, V, M): random window, linear resampling."""
    crop, start = crop_windows(lengths.to(x.device), frames, ratio, min_length, generator)
    return resample(x, crop, frames, start)


_CHUNK_CLIPS = 256  # outputs per block (64 clips × 4 views): their source rows stay in cache


def crop_resize_map(x: torch.Tensor, crop_lengths: torch.Tensor, starts: torch.Tensor, frames: int,
                    maps: JointMaps | None = None, sample_index: torch.Tensor | None = None, *,
                    pool: HostBufferPool | None = None) -> torch.Tensor:
    """Resample windows of ``x`` and apply per-joint maps, fused: (N, 3, frames, V, M).

    Output n is clip ``sample_index[n]`` of x (default n), window [starts[n], starts[n] + ℓ[n]),
    then A[n, v]·p. With two-level maps each output row (clip, channel i, frame f) of V·M values is
    one ``embedding_bag`` of source rows (channel j, frame lo or hi) weighted G_ij·(1 − λ, λ): 6 rows,
    or 2 where G is diagonal. Selected joints are then zeroed (keep mask) and, where L ≠ 0, given
    L's rows (a second bag of 6). Clips are processed in groups of one kind and bag size, chunk by
    chunk, and copied to their places. General (dense) maps resample first, then apply.
    """
    b, c, t_in, v, m = x.shape
    device, dtype = x.device, x.dtype
    if c != 3:
        raise HarnessError(f"spatial augmentations need xyz coordinates (C = 3), got C = {c}")
    if sample_index is None:
        sample_index = torch.arange(b, device=device)
    sample_index = sample_index.to(device)
    n = sample_index.shape[0]
    if maps is None:
        maps = JointMaps.identity(n, device)
    out = _empty((n, c, frames, v, m), dtype, device, pool)
    if n == 0:
        return out
    if maps.dense is not None:
        out.copy_(apply_joint_maps(resample(x[sample_index], crop_lengths, frames, starts), maps))
        return out
    vm = v * m
    lo, hi, lam = source_positions(crop_lengths.to(device), frames, starts)  # (N, frames)
    src = x.contiguous().view(b * c * t_in, vm)
    dst = out.view(n, c, frames, vm)
    idx_dtype = torch.int32 if b * c * t_in < 2**31 else torch.long
    chan = ((sample_index[:, None] * c + torch.arange(c, device=device)[None]) * t_in).to(idx_dtype)  # (N, C)
    lohi = torch.stack([lo, hi], 1).to(idx_dtype)  # (N, 2, frames)
    pair = torch.stack([1 - lam, lam], 1).to(dtype)  # (N, 2, frames)
    g = maps.G.to(device=device, dtype=dtype)
    eye = torch.eye(3, device=device, dtype=torch.bool)
    diagonal = (g.masked_fill(eye, 0) == 0).all(dim=2).all(dim=1)
    kind = torch.zeros(n, dtype=torch.long, device=device)  # 0: G only, 1: G + zeroed joints, 2: G + L joints
    keep = sel_m = lmat = None
    if maps.selected is not None and bool(maps.selected.any()):
        sel = maps.selected.to(device)
        sel_m = sel[:, :, None].expand(n, v, m).reshape(n, 1, 1, vm).to(dtype)
        keep = 1 - sel_m
        lmat = maps.L.to(device=device, dtype=dtype)
        has_sel = sel.any(dim=1)
        kind = has_sel.long() + (has_sel & (lmat.abs().amax(dim=(1, 2)) > 0)).long()
    group = kind * 2 + diagonal.long()  # bag of 6 (even) or 2 (odd)
    # processing order: blocks of _CHUNK_CLIPS outputs in clip order (the views of one clip read the
    # same source rows, so they are made while those are in cache), each block split by group
    by_clip = torch.argsort(sample_index, stable=True)
    block = torch.empty(n, dtype=torch.long, device=device)
    block[by_clip] = torch.arange(n, device=device) // _CHUNK_CLIPS
    segment = block * 6 + group
    order = torch.argsort(segment, stable=True)
    counts = torch.bincount(segment, minlength=6).tolist()

    def bag6(q: torch.Tensor, mat: torch.Tensor) -> torch.Tensor:
        k = q.shape[0]
        rows = (chan.index_select(0, q)[:, :, None, None] + lohi.index_select(0, q)[:, None])  # (k, j, 2, F)
        rows = rows.view(k, 1, 2 * c, frames).transpose(2, 3).expand(k, c, frames, 2 * c)
        p6 = pair.index_select(0, q)[:, None].expand(k, c, 2, frames).reshape(k, 1, 2 * c, frames)
        wts = mat.repeat_interleave(2, dim=2)[:, :, None, :] * p6.transpose(2, 3)  # (k, i, F, 6)
        return F.embedding_bag(rows.reshape(-1, 2 * c), src, mode="sum",
                               per_sample_weights=wts.reshape(-1, 2 * c)).view(k, c, frames, vm)

    def bag2(q: torch.Tensor, diag: torch.Tensor) -> torch.Tensor:
        k = q.shape[0]
        rows = chan.index_select(0, q)[:, :, None, None] + lohi.index_select(0, q)[:, None]  # (k, i, 2, F)
        wts = diag[:, :, None, None] * pair.index_select(0, q)[:, None]  # (k, i, 2, F)
        return F.embedding_bag(rows.transpose(2, 3).reshape(-1, 2), src, mode="sum",
                               per_sample_weights=wts.transpose(2, 3).reshape(-1, 2)).view(k, c, frames, vm)

    pos = 0
    for seg, count in enumerate(counts):
        if count == 0:
            continue
        q = order[pos:pos + count]
        pos += count
        grp = seg % 6
        gq = g.index_select(0, q)
        res = bag2(q, gq.diagonal(dim1=1, dim2=2)) if grp % 2 else bag6(q, gq)
        if grp >= 2:  # selected joints: zeroed, or given L's rows
            res.mul_(keep.index_select(0, q))
            if grp >= 4:
                res.addcmul_(bag6(q, lmat.index_select(0, q)), sel_m.index_select(0, q))
        dst.index_copy_(0, q, res)
    return out


# --- functional augmentations ------------------------------------------------------------------------
def _mix(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-clip choice: a where mask (N,) else b."""
    return torch.where(mask.view(-1, *([1] * (a.dim() - 1))), a, b)


def shear(x: torch.Tensor, magnitude: float = 1.0, p: float = 1.0,
          generator: torch.Generator | None = None) -> torch.Tensor:
    """S·p with S = I + off-diagonals U(−magnitude, magnitude); applied with probability p per clip."""
    return Shear(magnitude, p)(x, generator=generator)


def rotate_aimclr(x: torch.Tensor, p: float = 1.0, main_degrees: tuple[float, float] = (0.0, 30.0),
                  other_degrees: tuple[float, float] = (0.0, 1.0),
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """AimCLR/SCD-Net rotation: a random main axis U(0°, 30°), the others U(0°, 1°); R = Rz·Ry·Rx."""
    return RotateAimCLR(p, main_degrees, other_degrees)(x, generator=generator)


def rotate_euler(x: torch.Tensor, theta: float = 0.3, p: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """MAMP rotation: angles U(−θ, θ) rad about x, y and z, R = Rz·Ry·Rx, the same for all frames."""
    return RotateEuler(theta, p)(x, generator=generator)


def axis_mask(x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero one random coordinate axis (x, y or z) of the whole clip, with probability p."""
    return AxisMask(p)(x, generator=generator)


def joint_corruption(x: torch.Tensor, count: int | None = None, p_zero: float = 0.5,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """USDRL joint corruption (always applied): ``count`` random joints (default 15 of 25, scaled)
    are zeroed with probability ``p_zero``, else multiplied as row vectors by R ~ U(−1, 1)^{3×3}."""
    return JointCorruption(count, p_zero)(x, generator=generator)


def usdrl_spatial(x: torch.Tensor, p_corrupt: float = 0.5, p_zero: float = 0.5, count: int | None = None,
                  magnitude: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """USDRL's one spatial augmentation per view: joint corruption with p_corrupt, else shear."""
    return USDRLSpatial(p_corrupt, p_zero, count, magnitude)(x, generator=generator)


def flip(x: torch.Tensor, topology: Topology | Sequence[int], p: float = 0.5,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """Swap left and right joints (``Topology.flip``) with probability p per clip."""
    return Flip(topology, p)(x, generator=generator)


def gaussian_noise(x: torch.Tensor, std: float = 0.01, p: float = 0.5,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Add N(0, std²) to every value (AimCLR ``gaus_noise``) with probability p per clip."""
    return GaussianNoise(std, p)(x, generator=generator)


def gaussian_blur(x: torch.Tensor, kernel: int = 15, sigma: tuple[float, float] = (0.1, 2.0), p: float = 0.5,
                  normalize: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Temporal Gaussian filter (AimCLR ``GaussianBlurConv``), σ ~ U(sigma), with probability p."""
    return GaussianBlur(kernel, sigma, p, normalize)(x, generator=generator)


def joint_mask(x: torch.Tensor, count: int, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero ``count`` random joints (without replacement) in every frame and person, with probability p."""
    return JointMask(count, p)(x, generator=generator)


def structural_mask(x: torch.Tensor, topology: Topology, seeds: int | None = None, count: int | None = None,
                    p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """SCD-Net structural spatial mask (5 seeds → 8 joints of 25, scaled), with probability p."""
    return StructuralMask(topology, seeds, count, p)(x, generator=generator)


def temporal_mask(x: torch.Tensor, chunk: int = 4, count: int | None = None, p: float = 0.5,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """SCD-Net temporal mask: zero ``count`` random chunks of ``chunk`` frames (6 of 16), with probability p."""
    return TemporalMask(chunk, count, p)(x, generator=generator)


# --- pipeline steps ------------------------------------------------------------------------------------
class Step:
    """A batched augmentation: ``step(x, generator=)`` → x, same shape. ``needs_lengths`` steps
    (the crop) take raw clips and valid lengths instead."""

    needs_lengths = False

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class CropResize(Step):
    """Random temporal crop-resize to ``frames`` (see :func:`crop_windows`)."""

    needs_lengths = True

    def __init__(self, frames: int = 64, ratio: tuple[float, float] = (0.1, 1.0), min_length: int | None = None):
        self.frames, self.ratio, self.min_length = frames, tuple(ratio), min_length

    def windows(self, lengths: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        return crop_windows(lengths, self.frames, self.ratio, self.min_length, generator)

    def __call__(self, x: torch.Tensor, lengths: torch.Tensor | None = None,  # type: ignore[override]
                 generator: torch.Generator | None = None) -> torch.Tensor:
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[2], dtype=torch.long, device=x.device)
        crop, start = self.windows(lengths.to(x.device), generator)
        return resample(x, crop, self.frames, start)


class JointMapStep(Step):
    """A step that is a per-(clip, joint) linear map; runs of them are fused by :class:`Compose`."""

    def maps(self, n: int, joints: int, device: torch.device, generator: torch.Generator | None) -> JointMaps:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return apply_joint_maps(x, self.maps(x.shape[0], x.shape[3], x.device, generator))


def _maybe(maps_g: torch.Tensor, p: float, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Replace the clips' matrices by the identity where the coin (probability p) says no."""
    apply = _coin(maps_g.shape[0], p, generator, device)
    return _mix(apply, maps_g, _eye(maps_g.shape[0], device, maps_g.dtype))


class Shear(JointMapStep):
    def __init__(self, magnitude: float = 1.0, p: float = 1.0):
        self.magnitude, self.p = magnitude, p

    def maps(self, n, joints, device, generator):
        s = shear_matrices(n, self.magnitude, generator, device)
        return JointMaps(_maybe(s, self.p, generator, device))


class RotateAimCLR(JointMapStep):
    def __init__(self, p: float = 1.0, main_degrees: tuple[float, float] = (0.0, 30.0),
                 other_degrees: tuple[float, float] = (0.0, 1.0)):
        self.p, self.main_degrees, self.other_degrees = p, tuple(main_degrees), tuple(other_degrees)

    def maps(self, n, joints, device, generator):
        r = rotation_matrices(aimclr_angles(n, self.main_degrees, self.other_degrees, generator, device))
        return JointMaps(_maybe(r, self.p, generator, device))


class RotateEuler(JointMapStep):
    def __init__(self, theta: float = 0.3, p: float = 1.0):
        self.theta, self.p = theta, p

    def maps(self, n, joints, device, generator):
        r = rotation_matrices(euler_angles(n, self.theta, generator, device))
        return JointMaps(_maybe(r, self.p, generator, device))


class AxisMask(JointMapStep):
    def __init__(self, p: float = 0.5):
        self.p = p

    def maps(self, n, joints, device, generator):
        axis = _randint(n, 3, generator, device)
        keep = (torch.arange(3, device=device)[None] != axis[:, None]).float()
        return JointMaps(_maybe(torch.diag_embed(keep), self.p, generator, device))

    def __call__(self, x, generator=None):
        keep = self.maps(x.shape[0], x.shape[3], x.device, generator).G.diagonal(dim1=1, dim2=2)
        return x * keep.to(x.dtype)[:, :, None, None, None]


class USDRLSpatial(JointMapStep):
    """usdrl.md §9.2: with p_corrupt joint corruption (zero ``count`` joints with p_zero, else map them
    as row vectors by R ~ U(−1, 1)^{3×3}, i.e. p' = Rᵀ·p), otherwise shear with U(−magnitude, magnitude)."""

    def __init__(self, p_corrupt: float = 0.5, p_zero: float = 0.5, count: int | None = None,
                 magnitude: float = 1.0):
        self.p_corrupt, self.p_zero, self.count, self.magnitude = p_corrupt, p_zero, count, magnitude

    def joint_count(self, joints: int) -> int:
        return scaled_count(15, joints) if self.count is None else min(self.count, joints)

    def draw(self, n, joints, device, generator) -> dict[str, torch.Tensor]:
        """All draws, in a fixed order, for every clip (unused ones included)."""
        corrupt = _coin(n, self.p_corrupt, generator, device)
        zero = _coin(n, self.p_zero, generator, device)
        subset = random_subsets(n, joints, self.joint_count(joints), generator, device)
        r = _uniform((n, 3, 3), -1.0, 1.0, generator, device)
        s = shear_matrices(n, self.magnitude, generator, device)
        return {"corrupt": corrupt, "zero": zero, "subset": subset, "R": r, "S": s}

    def maps(self, n, joints, device, generator):
        d = self.draw(n, joints, device, generator)
        corrupt, zero = d["corrupt"], d["zero"]
        eye = _eye(n, device)
        g = _mix(corrupt, eye, d["S"])
        lmat = _mix(zero, torch.zeros_like(eye), d["R"].transpose(1, 2))
        return JointMaps(g, lmat, d["subset"] & corrupt[:, None])


class JointCorruption(USDRLSpatial):
    """USDRL ``joint_courruption`` alone (always applied)."""

    def __init__(self, count: int | None = None, p_zero: float = 0.5):
        super().__init__(p_corrupt=1.0, p_zero=p_zero, count=count)


class Flip(Step):
    def __init__(self, topology: Topology | Sequence[int], p: float = 0.5):
        perm = topology.flip if isinstance(topology, Topology) else tuple(topology)
        if perm is None:
            raise HarnessError(f"topology {topology.name!r} has no flip permutation (left/right pairs)")
        self.permutation, self.p = tuple(int(i) for i in perm), p

    def __call__(self, x, generator=None):
        if len(self.permutation) != x.shape[3]:
            raise HarnessError(f"flip permutation has {len(self.permutation)} joints, the clips {x.shape[3]}")
        apply = _coin(x.shape[0], self.p, generator, x.device)
        perm = torch.as_tensor(self.permutation, device=x.device)
        return _mix(apply, x.index_select(3, perm), x)


class GaussianNoise(Step):
    def __init__(self, std: float = 0.01, p: float = 0.5):
        self.std, self.p = std, p

    def __call__(self, x, generator=None):
        apply = _coin(x.shape[0], self.p, generator, x.device)
        noise = torch.randn(x.shape, generator=generator, device=_draw_device(generator, x.device),
                            dtype=x.dtype).to(x.device)
        scale = apply.to(x.dtype) * self.std
        return x + noise * scale.view(-1, 1, 1, 1, 1)


class GaussianBlur(Step):
    """Per-clip temporal filter g(d) = exp(−d²/(2σ²)), d = −r..r, r = kernel // 2, zero padding.

    ``normalize=False`` is AimCLR's filter, whose taps are not normalised (it scales the clip by
    Σg, up to ≈5 for σ = 2); ``normalize=True`` divides by Σg.
    """

    def __init__(self, kernel: int = 15, sigma: tuple[float, float] = (0.1, 2.0), p: float = 0.5,
                 normalize: bool = False):
        self.kernel, self.sigma, self.p, self.normalize = kernel, tuple(sigma), p, normalize

    def taps(self, n: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
        """(n, kernel) taps for offsets −r..r; a clip that is not blurred gets the unit impulse."""
        r = self.kernel // 2
        sigma = _uniform(n, *self.sigma, generator, device)
        apply = _coin(n, self.p, generator, device)
        d = torch.arange(-r, r + 1, device=device, dtype=torch.float32)
        g = torch.exp(-d[None] ** 2 / (2 * sigma[:, None] ** 2))
        if self.normalize:
            g = g / g.sum(dim=1, keepdim=True)
        impulse = (d == 0).float().expand(n, -1)
        return _mix(apply, g, impulse)

    def __call__(self, x, generator=None):
        n, t = x.shape[0], x.shape[2]
        r = self.kernel // 2
        g = self.taps(n, x.device, generator).to(x.dtype)
        out = x * g[:, r].view(-1, 1, 1, 1, 1)
        for d in range(1, min(r, t - 1) + 1):  # y[t] += g(d)·x[t + d] + g(−d)·x[t − d]
            out[:, :, :-d].addcmul_(x[:, :, d:], g[:, r + d].view(-1, 1, 1, 1, 1))
            out[:, :, d:].addcmul_(x[:, :, :-d], g[:, r - d].view(-1, 1, 1, 1, 1))
        return out


class JointMask(Step):
    def __init__(self, count: int, p: float = 0.5):
        self.count, self.p = count, p

    def __call__(self, x, generator=None):
        n, v = x.shape[0], x.shape[3]
        masked = random_subsets(n, v, min(self.count, v), generator, x.device)
        masked &= _coin(n, self.p, generator, x.device)[:, None]
        return x * (~masked).to(x.dtype)[:, None, None, :, None]


class StructuralMask(Step):
    """SCD-Net ``spatial_masking``: ``seeds`` joints drawn with replacement, their rows of A² (A = the
    skeleton adjacency with self-loops) summed, and the ``count`` joints with the largest sums zeroed
    (ties go to the higher joint index, as a stable ascending sort's tail)."""

    def __init__(self, topology: Topology, seeds: int | None = None, count: int | None = None, p: float = 0.5):
        self.topology, self.p = topology, p
        v = topology.num_joints
        self.seeds = scaled_count(5, v) if seeds is None else seeds
        self.count = scaled_count(8, v) if count is None else min(count, v)
        a = torch.from_numpy(topology.adjacency(self_loops=True)).double()
        self._a2 = (a @ a).float()

    def masked_joints(self, n: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
        v = self.topology.num_joints
        seeds = _randint(n * self.seeds, v, generator, device).view(n, self.seeds)
        scores = self._a2.to(device)[seeds].sum(dim=1)  # (n, V), small integers
        key = scores * v + torch.arange(v, device=device, dtype=scores.dtype)
        masked = torch.zeros(n, v, dtype=torch.bool, device=device)
        masked.scatter_(1, key.topk(self.count, dim=1).indices, True)
        return masked

    def __call__(self, x, generator=None):
        if x.shape[3] != self.topology.num_joints:
            raise HarnessError(f"structural mask for {self.topology.name} ({self.topology.num_joints} joints) "
                               f"got clips with {x.shape[3]} joints")
        n = x.shape[0]
        masked = self.masked_joints(n, x.device, generator) & _coin(n, self.p, generator, x.device)[:, None]
        return x * (~masked).to(x.dtype)[:, None, None, :, None]


class TemporalMask(Step):
    """SCD-Net ``temporal_masking``: frames split into ⌈T/chunk⌉ chunks (the last may be shorter);
    ``count`` of them (default 6 of 16, scaled with the chunk count) zeroed."""

    def __init__(self, chunk: int = 4, count: int | None = None, p: float = 0.5):
        self.chunk, self.count, self.p = chunk, count, p

    def __call__(self, x, generator=None):
        n, t = x.shape[0], x.shape[2]
        chunks = -(-t // self.chunk)
        count = scaled_count(6, chunks, 16) if self.count is None else min(self.count, chunks)
        masked = random_subsets(n, chunks, count, generator, x.device)
        masked &= _coin(n, self.p, generator, x.device)[:, None]
        frame_masked = masked[:, torch.arange(t, device=x.device) // self.chunk]
        return x * (~frame_masked).to(x.dtype)[:, None, :, None, None]


class Lambda(Step):
    """Wrap a function ``f(x, generator) -> x`` as a step."""

    def __init__(self, fn: Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]):
        self.fn = fn

    def __call__(self, x, generator=None):
        return self.fn(x, generator)


class Compose:
    """A method's augmentation: steps applied in order, one batched call each.

    A leading :class:`CropResize` takes raw clips and lengths; it and the :class:`JointMapStep` run
    right after it are fused into one gather (:func:`crop_resize_map`); other runs of map steps are
    fused into one application. Random draws happen in step order, so the result equals applying
    the steps one by one with the same generator (up to float rounding).
    """

    def __init__(self, *steps: Step | Iterable[Step]):
        flat: list[Step] = []
        for s in steps:
            flat.extend(s if isinstance(s, (list, tuple)) else [s])
        for i, s in enumerate(flat):
            if s.needs_lengths and i != 0:
                raise HarnessError(f"{type(s).__name__} must be the first step of a pipeline")
        self.steps = flat

    def __repr__(self) -> str:
        return f"Compose({', '.join(map(repr, self.steps))})"

    def __call__(self, x: torch.Tensor, lengths: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, *, sample_index: torch.Tensor | None = None,
                 pool: HostBufferPool | None = DEFAULT_POOL) -> torch.Tensor:
        """Raw clips (B, 3, T, V, M) (+ lengths when the pipeline crops) → augmented clips.

        ``sample_index`` (N,) makes N outputs from clips ``x[sample_index]`` (used for several views).
        """
        steps = self.steps
        i = 0
        n = x.shape[0] if sample_index is None else sample_index.shape[0]
        v = x.shape[3]
        if steps and steps[0].needs_lengths:
            crop: CropResize = steps[0]  # type: ignore[assignment]
            if lengths is None:
                lengths = torch.full((x.shape[0],), x.shape[2], dtype=torch.long, device=x.device)
            lengths = lengths.to(x.device)
            clip_lengths = lengths if sample_index is None else lengths[sample_index.to(x.device)]
            windows = crop.windows(clip_lengths, generator)
            maps, i = self._fuse_maps(1, n, v, x.device, generator)
            x = crop_resize_map(x, windows[0], windows[1], crop.frames, maps, sample_index, pool=pool)
        elif sample_index is not None:
            x = x[sample_index.to(x.device)]
        while i < len(steps):
            if isinstance(steps[i], JointMapStep):
                maps, i = self._fuse_maps(i, n, v, x.device, generator)
                x = apply_joint_maps(x, maps)
            else:
                x = steps[i](x, generator=generator)
                i += 1
        return x

    def _fuse_maps(self, i: int, n: int, v: int, device: torch.device,
                   generator: torch.Generator | None) -> tuple[JointMaps | None, int]:
        maps = None
        while i < len(self.steps) and isinstance(self.steps[i], JointMapStep):
            m = self.steps[i].maps(n, v, device, generator)
            maps = m if maps is None else maps.then(m)
            i += 1
        return maps, i

    def views(self, x: torch.Tensor, lengths: torch.Tensor | None, num_views: int,
              generator: torch.Generator | None = None, *, pool: HostBufferPool | None = DEFAULT_POOL
              ) -> list[torch.Tensor]:
        """``num_views`` independent augmentations of every clip, computed in one batched call.

        The draws are made for all views at once, view-major (output n is view n // B of clip n % B).
        """
        b = x.shape[0]
        idx = torch.arange(b, device=x.device).repeat(num_views)
        out = self(x, lengths, generator, sample_index=idx, pool=pool)
        return list(out.view(num_views, b, *out.shape[1:]).unbind(0))


def usdrl_pipeline(frames: int = 64, ratio: tuple[float, float] = (0.1, 1.0), count: int | None = None) -> Compose:
    """USDRL/UmURL pretraining view (usdrl.md §9): crop-resize, then joint corruption or shear."""
    return Compose(CropResize(frames, ratio), USDRLSpatial(count=count))


def usdrl_views(x: torch.Tensor, lengths: torch.Tensor, num_views: int = 4, frames: int = 64,
                generator: torch.Generator | None = None, *, ratio: tuple[float, float] = (0.1, 1.0),
                count: int | None = None, pool: HostBufferPool | None = DEFAULT_POOL) -> list[torch.Tensor]:
    """The USDRL view set: ``num_views`` tensors (B, 3, frames, V, M) from raw clips and lengths."""
    return usdrl_pipeline(frames, ratio, count).views(x, lengths, num_views, generator, pool=pool)
