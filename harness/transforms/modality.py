"""Joint, bone and motion modalities, derived through the topology (docs/reference/usdrl.md §9)."""

from __future__ import annotations

import torch

from ..errors import UnknownNameError
from ..data.topology import Topology

MODALITIES = ("joint", "bone", "motion")


def bone(x: torch.Tensor, topology: Topology) -> torch.Tensor:
    """b[..., v, :] = x[..., v, :] − x[..., parent(v), :] on (N, C, T, V, M)."""
    parent = torch.as_tensor(topology.parents(), device=x.device)
    return x - x.index_select(3, parent)


def motion(x: torch.Tensor) -> torch.Tensor:
    """m[:, :, t] = x[:, :, t+1] − x[:, :, t]; the last frame is 0 (N, C, T, V, M)."""
    m = torch.zeros_like(x)
    m[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    return m


def to_modality(x: torch.Tensor, modality: str, topology: Topology) -> torch.Tensor:
    if modality == "joint":
        return x
    if modality == "bone":
        return bone(x, topology)
    if modality == "motion":
        return motion(x)
    raise UnknownNameError("modality", modality, list(MODALITIES))
