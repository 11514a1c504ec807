"""Multi-process training (``torchrun``): process-group setup, batch sharding and gathers.

The engine runs one process per device. ``torchrun --nproc_per_node=G [--nnodes ...] -m harness.cli
pretrain ...`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``; the engine
then initialises a process group (NCCL on CUDA, Gloo on CPU) and wraps the method in
``DistributedDataParallel``.

Batches: ``train.batch_size`` is the *global* batch. Every rank computes the same shuffled order
(seed, epoch), cuts it into global batches exactly as a single process would, and takes its own
contiguous ``batch_size / world_size`` slice of each. Gathering per-rank embeddings in rank order
(:func:`gather_with_grad`) therefore reproduces the single-process batch row for row.

Losses that need whole-batch statistics (variance/covariance/cross-correlation) call
:func:`gather_with_grad` on their embeddings; it is the identity in a single process. Its backward
sums the incoming gradients over ranks and returns each rank its own rows; DDP then averages the
parameter gradients over ranks, so the parameter gradients equal those of one process on the
global batch (the rank-local input gradients are ``world_size`` times the single-process ones,
which DDP's averaging undoes). BatchNorm layers (e.g. in projectors) stay per-process, as with the
reference's ``nn.DataParallel``: their statistics come from each rank's share of the batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist

from ..data.prepared.loader import ClipBatches
from ..data.prepared.format import PreparedDataset
from ..errors import HarnessError


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False  # this module created the process group (and destroys it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_world() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the torchrun environment (0, 1, 0 when absent)."""
    def read(name: str, default: int) -> int:
        raw = os.environ.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise HarnessError(f"environment variable {name}={raw!r} is not an integer") from None

    world = read("WORLD_SIZE", 1)
    rank = read("RANK", 0)
    local = read("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise HarnessError(f"bad distributed environment: RANK={rank}, WORLD_SIZE={world}")
    return rank, world, local


def setup(device_kind: str) -> DistEnv:
    """Join (or create) the process group when WORLD_SIZE > 1; a no-op in a single process."""
    if dist.is_available() and dist.is_initialized():
        return DistEnv(dist.get_rank(), dist.get_world_size(), env_world()[2], False)
    rank, world, local = env_world()
    if world == 1:
        return DistEnv()
    if not dist.is_available():
        raise HarnessError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    backend = "nccl" if device_kind == "cuda" else "gloo"
    for var in ("MASTER_ADDR", "MASTER_PORT"):
        if var not in os.environ:
            raise HarnessError(f"WORLD_SIZE={world} but {var} is not set: launch with torchrun")
    if backend == "nccl":
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistEnv(rank, world, local, True)


def teardown(env: DistEnv) -> None:
    if env.initialised_here and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s object on every rank (identity in a single process)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj: Any) -> list[Any]:
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of `t` over ranks (a new tensor; the identity in a single process)."""
    if not is_distributed():
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x)
        ctx.rows = x.shape[0]
        return torch.cat(parts, 0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = dist.get_rank() * ctx.rows
        return grad[start:start + ctx.rows]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` (rows = this rank's samples) from all ranks in rank order, differentiably.

    Every rank must pass the same shape (the engine's sharding gives equal per-rank batches). In a
    single process it returns `x` itself. See the module docstring for the gradient convention.
    """
    if not is_distributed():
        return x
    return _GatherWithGrad.apply(x)


class ShardedBatches(ClipBatches):
    """ClipBatches whose global batches are split across ranks (rank r gets the r-th slice).

    With ``world_size == 1`` it yields exactly ClipBatches' batches, except that a final batch of
    a single sample is dropped (batch statistics of one sample are undefined). With several ranks a
    short final batch is padded with samples from the start of the epoch's order up to a multiple
    of the world size (as DistributedSampler pads), so every rank runs the same number of steps
    with the same number of samples.
    """

    def __init__(self, ds: PreparedDataset, indices: np.ndarray, batch_size: int, *, rank: int = 0,
                 world_size: int = 1, **kwargs: Any):
        if batch_size % world_size:
            raise HarnessError(f"train.batch_size ({batch_size}) must be divisible by the number of "
                               f"processes ({world_size})")
        if len(indices) < max(2, world_size):
            raise HarnessError(f"{len(indices)} training samples are too few for a batch across "
                               f"{world_size} process(es) (need at least {max(2, world_size)})")
        super().__init__(ds, indices, batch_size, **kwargs)
        self.rank, self.world_size = rank, world_size

    def global_chunks(self) -> list[np.ndarray]:
        order = self.order()
        chunks = [order[s:s + self.batch_size] for s in range(0, len(order), self.batch_size)]
        if self.drop_last and chunks and len(chunks[-1]) < self.batch_size:
            chunks.pop()
        if chunks and len(chunks[-1]) == 1 and self.world_size == 1:
            chunks.pop()
        if chunks and len(chunks[-1]) % self.world_size:
            short = chunks[-1]
            pad = self.world_size - len(short) % self.world_size
            chunks[-1] = np.concatenate([short, np.resize(order, pad)])
        return chunks

    def __len__(self) -> int:
        return len(self.global_chunks())

    def _chunks(self) -> Iterator[np.ndarray]:
        for chunk in self.global_chunks():
            per = len(chunk) // self.world_size
            yield chunk[self.rank * per:(self.rank + 1) * per]
