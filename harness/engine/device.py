"""Where and on how many threads work runs: ``train.device`` → a torch device, and a block with
``train.num_threads`` torch threads. Pretraining, evaluation, ``harness tune`` and checkpoint
evaluation all use these two."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from ..errors import HarnessError

__all__ = ["resolve_device", "torch_threads"]


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    spec = (spec or "auto").strip()
    if spec == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise HarnessError(f"train.device={spec} but CUDA is not available; use train.device=cpu or auto")
        dev = torch.device(spec if ":" in spec else f"cuda:{local_rank}")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise HarnessError(f"train.device={spec}: only {torch.cuda.device_count()} CUDA device(s)")
        return dev
    raise HarnessError(f"train.device={spec!r}: expected auto, cpu, cuda or cuda:N")


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads (0: leave torch's count), restoring the count after.

    ``train.num_threads`` covers pretraining and evaluation: on a small shared machine, two jobs
    with one thread each run far faster than two with two each (oversubscription)."""
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
