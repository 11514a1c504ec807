"""Per-(clip, joint) 3×3 linear maps p' = A·p on column vectors p = (x, y, z), and the random
matrices the spatial augmentations draw (shear, AimCLR and Euler rotations).

Maps are stored two-level (:class:`JointMaps`: one matrix for the selected joints, another for the
rest), so a run of linear steps composes into one map per clip and joint and is applied once.
Translation-free maps keep zero-padded persons at exactly zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import HarnessError
from .random import _randint, _uniform
from .sync import sync_free

__all__ = ["JointMaps", "apply_joint_maps", "shear_matrices", "rotation_matrices", "aimclr_angles",
           "euler_angles"]


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
    if not sync_free(x) and not bool(sel.any()):  # a host read: only where it is free
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
