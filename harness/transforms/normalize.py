"""The 2s-AGCN / UmURL / USDRL preprocessing of NTU skeletons (docs/reference/data-formats.md §4), vectorised.

Steps, as the reference ``ntu_gendata.py`` + ``preprocess.py`` apply them:

1. :func:`select_bodies` — keep the 2 most energetic of (up to) 4 bodies.
2. the caller stores frames ``[0, T)`` in a zero array (``num_frame = T``).
3. :func:`pre_normalization` on (N, C, T, V, M):
   (a) :func:`pad_null_frames`, (b) :func:`centre`, (c) optional z-alignment, (d) x-alignment,
   the rotations by :func:`rotation_to` (Euler–Rodrigues).

Differences from the reference loops (all documented where they occur):

- "empty" means *all coordinates are zero*; the reference tests ``sum() == 0``. The two differ only
  for frames or joints whose coordinates cancel exactly, which real Kinect data does not produce.
- z-alignment is off by default, because UmURL (and so USDRL) skip it; ``z_align=True`` gives the
  HiCo / SCD-Net / CMD / PCM3 arrays. The two kinds of arrays are not interchangeable.
- Rotations are computed in float64 and stored as float32, as the reference does (``np.dot`` of a
  float64 matrix with float32 joints, assigned back into the float32 array).
"""

from __future__ import annotations

import numpy as np

from ..data.topology import NTU25, Topology

_X = np.array([1.0, 0.0, 0.0])
_Z = np.array([0.0, 0.0, 1.0])


# --- body selection ---------------------------------------------------------------------------

def body_energy(bodies: np.ndarray) -> np.ndarray:
    """(B, T, V, C) → (B,): std(x) + std(y) + std(z) over all joints of the body's non-empty frames.

    A body with no non-empty frame has energy 0 (the reference's ``get_nonzero_std``).
    """
    bodies = np.asarray(bodies)
    out = np.zeros(bodies.shape[0], dtype=np.float64)
    for b, body in enumerate(bodies):
        frames = body[(body != 0).any(axis=(1, 2))]  # (t, V, C)
        if len(frames):
            out[b] = sum(float(frames[..., c].std()) for c in range(frames.shape[-1]))
    return out


def select_bodies(bodies: np.ndarray, keep: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Keep the `keep` most energetic bodies of (B, T, V, C), most energetic first.

    Returns (selected (keep, T, V, C), their indices). Ties keep the reference's order: it takes
    ``argsort(energy)[::-1]``, and for 4 bodies numpy's sort is stable, so among equal energies the
    later body comes first (e.g. absent bodies 3, 2, 1 in that order). With fewer than `keep`
    bodies the rest are zero.
    """
    bodies = np.asarray(bodies)
    energy = body_energy(bodies)
    order = np.argsort(energy, kind="stable")[::-1][:keep]
    selected = bodies[order]
    if len(order) < keep:  # fewer slots than wanted: pad with empty bodies
        pad = np.zeros((keep - len(order),) + bodies.shape[1:], dtype=bodies.dtype)
        selected = np.concatenate([selected, pad])
    return selected, order


# --- rotations --------------------------------------------------------------------------------

def rotation_matrix(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Euler–Rodrigues: counter-clockwise rotation by `angle` about `axis`; (..., 3), (...) → (..., 3, 3).

    The identity where ``|axis|₁ < 1e-6`` or ``|angle| < 1e-6`` (the reference's guard).
    """
    axis = np.asarray(axis, dtype=np.float64)
    angle = np.asarray(angle, dtype=np.float64)
    identity = (np.abs(axis).sum(-1) < 1e-6) | (np.abs(angle) < 1e-6)
    norm = np.sqrt((axis * axis).sum(-1, keepdims=True))
    unit = np.divide(axis, norm, out=np.zeros_like(axis), where=norm > 0)
    a = np.cos(angle / 2.0)
    b, c, d = np.moveaxis(-unit * np.sin(angle / 2.0)[..., None], -1, 0)
    aa, bb, cc, dd = a * a, b * b, c * c, d * d
    bc, ad, ac, ab, bd, cd = b * c, a * d, a * c, a * b, b * d, c * d
    rot = np.stack([
        np.stack([aa + bb - cc - dd, 2 * (bc + ad), 2 * (bd - ac)], -1),
        np.stack([2 * (bc - ad), aa + cc - bb - dd, 2 * (cd + ab)], -1),
        np.stack([2 * (bd + ac), 2 * (cd - ab), aa + dd - bb - cc], -1),
    ], -2)
    return np.where(identity[..., None, None], np.eye(3), rot)


def angle_between(v: np.ndarray, target: np.ndarray) -> np.ndarray:
    """arccos(clip(v̂·t̂, −1, 1)); 0 where ``|v|₁ < 1e-6`` (…, 3) → (…)."""
    v = np.asarray(v, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    tiny = np.abs(v).sum(-1) < 1e-6
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    unit = np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)
    cos = (unit * (target / np.linalg.norm(target))).sum(-1)
    return np.where(tiny, 0.0, np.arccos(np.clip(cos, -1.0, 1.0)))


def rotation_to(v: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The rotation taking `v` (…, 3) onto `target`'s direction: axis v × target, angle ∠(v, target).

    R·v is parallel to `target`, except where v is (anti-)parallel to it already or ~0: there the
    axis vanishes and R is the identity (so an exactly opposite v stays opposite, as in the reference).
    """
    v = np.asarray(v, dtype=np.float64)
    return rotation_matrix(np.cross(v, target), angle_between(v, target))


# --- pre_normalization steps on s = (N, M, T, V, C) -------------------------------------------

def pad_null_frames(s: np.ndarray) -> np.ndarray:
    """Step (a), per person with any data: if its first frame is empty, move all non-empty frames
    to the front (in order); then fill the trailing empty run [f, T) by repeating frames [0, f)
    cyclically (frame t ≥ f gets frame t mod f). Empty frames before the last non-empty one stay
    empty unless the compaction removed them. Returns a new array."""
    n, m, t = s.shape[:3]
    nonempty = (s != 0).any(axis=(3, 4))  # (N, M, T)
    has_data = nonempty.any(-1)
    frames = np.broadcast_to(np.arange(t), (n, m, t))
    compact = has_data & ~nonempty[..., 0]
    # stable argsort of "is empty" lists the non-empty frames first, each group in time order
    order = np.where(compact[..., None], np.argsort(~nonempty, axis=-1, kind="stable"), frames)
    nonempty = np.take_along_axis(nonempty, order, -1)
    last = t - 1 - np.argmax(nonempty[..., ::-1], axis=-1)  # last non-empty frame (0 if none)
    f = np.where(has_data, last + 1, t)[..., None]
    source = np.where(frames < f, frames, frames % f)
    index = np.take_along_axis(order, source, -1)
    return np.take_along_axis(s, index[..., None, None], axis=2)


def centre(s: np.ndarray, joint: int) -> np.ndarray:
    """Step (b): subtract person 0's `joint` of each frame from every joint of every person in that
    frame; joints that are exactly zero stay zero."""
    center = s[:, 0, :, joint:joint + 1, :][:, None]  # (N, 1, T, 1, C)
    mask = (s != 0).any(-1, keepdims=True)
    return (s - center) * mask


def align(s: np.ndarray, joints: tuple[int, int], target: np.ndarray) -> np.ndarray:
    """Steps (c)/(d): rotate every sample by the rotation that maps person 0's frame-0 vector
    ``joint[joints[0]] − joint[joints[1]]`` onto `target`. Zero joints stay zero (R·0 = 0), so
    rotating all frames equals the reference's rotating only non-empty ones."""
    vec = s[:, 0, 0, joints[0]] - s[:, 0, 0, joints[1]]  # (N, C), in the array's dtype like the reference
    rot = rotation_to(vec, target)  # (N, 3, 3)
    out = np.einsum("nij,nmtvj->nmtvi", rot, s.astype(np.float64))
    return out.astype(s.dtype)


def pre_normalization(data: np.ndarray, *, z_align: bool = False, topology: Topology = NTU25,
                      pad_null: bool = True) -> np.ndarray:
    """(N, C, T, V, M) → a new normalised array (steps a, b, [c], d of docs/reference/data-formats.md §4).

    ``pad_null=False`` skips step (a) (for data whose frames past each clip's length must stay zero,
    such as generated clips with exact lengths).

    The joints come from `topology`: centre = ``topology.center`` (NTU spine middle),
    z-axis pair = ``topology.hip_spine`` (spine base → spine middle), x-axis pair =
    ``topology.shoulders`` (left → right shoulder, i.e. the vector right − left).
    """
    data = np.asarray(data)
    if data.ndim != 5 or data.shape[1] != 3:
        raise ValueError(f"pre_normalization expects (N, 3, T, V, M), got {data.shape}")
    s = np.transpose(data, (0, 4, 2, 3, 1))  # N, M, T, V, C
    if pad_null:
        s = pad_null_frames(s)
    s = centre(s, topology.center)
    if z_align:
        if topology.hip_spine is None:
            raise ValueError(f"topology {topology.name} has no hip_spine pair for z-alignment")
        base, spine = topology.hip_spine
        s = align(s, (spine, base), _Z)
    left, right = topology.shoulders
    s = align(s, (right, left), _X)
    return np.ascontiguousarray(np.transpose(s, (0, 4, 2, 3, 1)))
