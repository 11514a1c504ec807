"""Temporal crop-resize (USDRL/UmURL, docs/reference/usdrl.md §9.1), alone and fused with per-joint maps.

A crop window per clip: scale ~ U(ratio), ℓ = min(max(⌊nf·scale⌋, min_length), nf) with
``min_length`` = ``frames`` by default, start uniform in [0, nf − ℓ]; the window is resampled to
``frames`` by linear interpolation with half-pixel centres (:func:`harness.transforms.resample.resample`).

:func:`crop_resize_map` folds the maps of the spatial steps that follow the crop into the resampling
gather: ``embedding_bag`` computes Σ_j G_ij·((1−λ)·x_j[lo] + λ·x_j[hi]) for every output row of V·M
values, a few calls per batch, writing into a pooled buffer (:mod:`harness.augment.buffers`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..transforms.resample import resample, source_positions
from ..errors import HarnessError
from .buffers import HostBufferPool, _empty
from .joint_maps import JointMaps, apply_joint_maps
from .random import _rand, _randint
from .sync import sync_free

__all__ = ["crop_windows", "crop_resize", "crop_resize_map"]


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
    if sync_free(x):  # no host reads (GPU): every clip through the 6-entry gathers, in one call
        return _crop_resize_map_sync_free(dst, src, chan, lohi, pair, g, maps, out)
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

    bag6, bag2 = _bags(src, chan, lohi, pair, c, frames, vm)
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


def _bags(src: torch.Tensor, chan: torch.Tensor, lohi: torch.Tensor, pair: torch.Tensor, c: int, frames: int,
          vm: int):
    """The two gathers of :func:`crop_resize_map` for output clips ``q``: bag6 applies a 3×3 matrix
    per clip (6 source rows per output row), bag2 a diagonal one (2 rows)."""

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

    return bag6, bag2


def _crop_resize_map_sync_free(dst: torch.Tensor, src: torch.Tensor, chan: torch.Tensor, lohi: torch.Tensor,
                               pair: torch.Tensor, g: torch.Tensor, maps: JointMaps, out: torch.Tensor) -> torch.Tensor:
    """:func:`crop_resize_map` without host reads: one bag6 for every clip, then, when the maps have
    selected joints, keep·res + sel·bag6(L) for every clip. For a diagonal G or an unselected clip the
    extra terms are exact zeros (x + 0 = x), so the result equals the grouped path's."""
    n, c, frames, vm = dst.shape
    bag6, _ = _bags(src, chan, lohi, pair, c, frames, vm)
    q = torch.arange(n, device=dst.device)
    res = bag6(q, g)
    if maps.selected is not None:
        sel = maps.selected.to(dst.device)
        v = sel.shape[1]
        sel_m = sel[:, :, None].expand(n, v, vm // v).reshape(n, 1, 1, vm).to(dst.dtype)
        res.mul_(1 - sel_m)
        if maps.L is not None:
            res.addcmul_(bag6(q, maps.L.to(device=dst.device, dtype=dst.dtype)), sel_m)
    dst.copy_(res)
    return out
