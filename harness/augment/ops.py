"""The functional API: one batched call per augmentation, each a thin wrapper of its step
(:mod:`harness.augment.steps`), so both draw the same numbers from the same generator."""

from __future__ import annotations

from typing import Sequence

import torch

from ..data.topology import Topology
from .steps import (AxisMask, Flip, GaussianBlur, GaussianNoise, JointCorruption, JointMask, RotateAimCLR,
                    RotateEuler, Shear, StructuralMask, TemporalMask, CorruptOrShear)

__all__ = ["shear", "rotate_aimclr", "rotate_euler", "axis_mask", "joint_corruption", "corrupt_or_shear", "flip",
           "gaussian_noise", "gaussian_blur", "joint_mask", "structural_mask", "temporal_mask"]


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


def corrupt_or_shear(x: torch.Tensor, p_corrupt: float = 0.5, p_zero: float = 0.5, count: int | None = None,
                  magnitude: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """USDRL's one spatial augmentation per view: joint corruption with p_corrupt, else shear."""
    return CorruptOrShear(p_corrupt, p_zero, count, magnitude)(x, generator=generator)


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
