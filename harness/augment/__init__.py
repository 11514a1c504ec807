"""Batched skeleton augmentations on the training device: one call per batch, no per-sample loop.

Every random draw takes a ``torch.Generator`` (drawn on the generator's device, then moved to the
data's), and every parameter is per sample. Clips are (N, 3, T, V, M) joint coordinates; nothing
here assumes 25 joints or 2 persons.

Building blocks (functions in :mod:`.ops`, and the same as :class:`Compose` steps in :mod:`.steps`):

- :func:`crop_resize` — USDRL/UmURL temporal crop-resize (docs/reference/usdrl.md §9.1): scale ~ U(ratio),
  ℓ = min(max(⌊nf·scale⌋, min_length), nf) with ``min_length`` = ``frames`` by default, start uniform
  in [0, nf − ℓ], linear resampling with half-pixel centres (:func:`harness.transforms.resample.resample`).
- :func:`shear` (S = I + off-diagonals U(−m, m), p' = S·p), :func:`joint_corruption` and
  :func:`corrupt_or_shear` (docs/reference/usdrl.md §9.2), :func:`rotate_aimclr` (one main axis U(0°, 30°), the other
  two U(0°, 1°); AimCLR/SCD-Net) and :func:`rotate_euler` (three angles U(−0.3, 0.3) rad; MAMP),
  :func:`axis_mask`, :func:`flip` (``Topology.flip``), :func:`gaussian_noise`,
  :func:`gaussian_blur`, :func:`joint_mask`, :func:`structural_mask` and :func:`temporal_mask`
  (SCD-Net, docs/reference/methods.md §3). Each has a per-sample probability ``p``.

Joint counts scale with the topology (:func:`scaled_count`, :mod:`.random`): the reference values
are for 25 joints and become ⌊n·V/25 + ½⌋ (at least 1), so USDRL's 15 corrupted joints are 15 of 25
(NTU) and 12 of 20 (MSR); SCD-Net's 5 seeds and 8 masked joints become 4 and 6 of 20. SCD-Net's 6
masked chunks out of 16 scale the same way with the number of 4-frame chunks.

Spatial maps are per (clip, joint) 3×3 matrices acting on column vectors p = (x, y, z), stored
two-level (:class:`JointMaps` in :mod:`.joint_maps`: one matrix for the selected joints, another for
the rest), so a run of linear steps is fused into one application and, after a crop, into the
resampling gather itself (:func:`crop_resize_map` in :mod:`.fused`: ``embedding_bag`` computes
Σ_j G_ij·((1−λ)·x_j[lo] + λ·x_j[hi]) for every output row of V·M values, a few calls per batch).
Translation-free maps keep zero-padded persons at exactly zero. AimCLR's Gaussian blur is reproduced
with its unnormalised taps (see :class:`GaussianBlur`).

A method's view set is its own recipe, a :class:`Compose` built in its module (USDRL/UmURL's is
``harness.methods.views``); :meth:`Compose.views` makes all views of a batch in one
call. On the CPU the fused crop writes into a :class:`HostBufferPool` (:mod:`.buffers`) that
recycles a buffer once no tensor refers to it any more (fresh large allocations cost page faults
that were about half the time of this step).
"""

from .buffers import DEFAULT_POOL, HostBufferPool
from .fused import crop_resize, crop_resize_map, crop_windows
from .joint_maps import (JointMaps, aimclr_angles, apply_joint_maps, euler_angles, rotation_matrices,
                         shear_matrices)
from .ops import (axis_mask, flip, gaussian_blur, gaussian_noise, joint_corruption, joint_mask, rotate_aimclr,
                  rotate_euler, shear, structural_mask, temporal_mask, corrupt_or_shear)
from .random import random_subsets, scaled_count
from .steps import (AxisMask, Compose, CropResize, Flip, GaussianBlur, GaussianNoise, JointCorruption, JointMapStep,
                    JointMask, Lambda, RotateAimCLR, RotateEuler, Shear, Step, StructuralMask, TemporalMask,
                    CorruptOrShear)

__all__ = [
    "scaled_count", "random_subsets", "HostBufferPool", "JointMaps", "apply_joint_maps",
    "crop_windows", "crop_resize", "crop_resize_map", "shear_matrices", "rotation_matrices",
    "aimclr_angles", "euler_angles", "shear", "rotate_aimclr", "rotate_euler", "axis_mask",
    "joint_corruption", "corrupt_or_shear", "flip", "gaussian_noise", "gaussian_blur", "joint_mask",
    "structural_mask", "temporal_mask", "Compose", "CropResize", "JointMapStep", "Shear",
    "RotateAimCLR", "RotateEuler", "AxisMask", "JointCorruption", "CorruptOrShear", "Flip",
    "GaussianNoise", "GaussianBlur", "JointMask", "StructuralMask", "TemporalMask", "Lambda", "Step",
    "DEFAULT_POOL",
]
