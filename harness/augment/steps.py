"""Augmentation steps and :class:`Compose`, which runs them in order, one batched call each.

A leading :class:`CropResize` and the :class:`JointMapStep` run right after it are fused into one
gather (:func:`harness.augment.fused.crop_resize_map`); other runs of map steps into one
application of their composed maps. Random draws happen in step order.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch

from ..transforms.resample import resample
from ..data.topology import Topology
from ..errors import HarnessError
from .buffers import DEFAULT_POOL, HostBufferPool
from .fused import crop_resize_map, crop_windows
from .joint_maps import (JointMaps, _eye, aimclr_angles, apply_joint_maps, euler_angles, rotation_matrices,
                         shear_matrices)
from .random import _coin, _draw_device, _randint, _uniform, random_subsets, scaled_count

__all__ = ["Step", "CropResize", "JointMapStep", "Shear", "RotateAimCLR", "RotateEuler", "AxisMask",
           "CorruptOrShear", "JointCorruption", "Flip", "GaussianNoise", "GaussianBlur", "JointMask",
           "StructuralMask", "TemporalMask", "Lambda", "Compose"]


def _mix(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-clip choice: a where mask (N,) else b."""
    return torch.where(mask.view(-1, *([1] * (a.dim() - 1))), a, b)


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


class CorruptOrShear(JointMapStep):
    """docs/reference/usdrl.md §9.2: with p_corrupt joint corruption (zero ``count`` joints with p_zero, else map them
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


class JointCorruption(CorruptOrShear):
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
