"""Peak memory of this process: CPU resident set (``getrusage``) and CUDA allocations.

``peak_rss_mib`` is the process's largest resident set so far (``ru_maxrss``; it never goes down,
so it covers everything the process did before, dataset preparation included).
``cuda_max_allocated_mib`` is ``torch.cuda.max_memory_allocated`` on the device: the peak of tensor
allocations since the process started or since the last ``torch.cuda.reset_peak_memory_stats``
(the caching allocator may hold more than that from the driver); the trainer resets it when training
starts and after its FLOP count, so a run's ``run.json`` holds that run's training peak
(:mod:`harness.engine.cost`).
"""

from __future__ import annotations

import sys
from typing import Any

import torch

MIB = 1024.0 * 1024.0


def peak_rss_mib() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / MIB  # KiB on Linux, bytes on macOS


def peak_memory(device: torch.device | str | None = None) -> dict[str, Any]:
    """``{"peak_rss_mib": …}`` plus ``"cuda_max_allocated_mib"`` when ``device`` is a CUDA device."""
    out: dict[str, Any] = {}
    rss = peak_rss_mib()
    if rss is not None:
        out["peak_rss_mib"] = round(rss, 1)
    dev = torch.device(device) if device is not None else None
    if dev is not None and dev.type == "cuda" and torch.cuda.is_available():
        out["cuda_max_allocated_mib"] = round(torch.cuda.max_memory_allocated(dev) / MIB, 1)
    return out
