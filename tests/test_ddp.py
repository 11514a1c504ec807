"""DistributedDataParallel on CPU: two Gloo processes vs one process on the same global batch.

1. A decorrelation loss (VAC + XC + similarity, from methods/losses/) on embeddings gathered with
   ``gather_with_grad`` has the same value on every rank as the single-process loss, and the same
   weight gradients after DDP's averaging; the rank-local input gradients are world_size times the
   single-process ones (DDP's 1/world averaging undoes that for the weights).
2. ``pretrain`` under two ranks (the engine's own process-group setup, sharding, DDP, gathered
   loss, rank-0 checkpoints) ends with the same weights as a single-process run.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from harness.resolve import resolved
from harness.engine import gather_with_grad, pretrain

from test_engine import TOY, _toy_methods, make_dataset, toy_cfg, toy_methods  # noqa: E402,F401  (the toy methods)

pytestmark = pytest.mark.e2e

try:
    from harness.methods.losses import cross_correlation, similarity, vac
except ImportError:  # pragma: no cover - a local copy of the docs/reference/usdrl.md §8 formulas
    def vac(z):
        b, d = z.shape
        v = torch.relu(1 - torch.sqrt(z.var(0) + 1e-4)).mean()
        zc = z - z.mean(0)
        c = zc.T @ zc / (b - 1)
        return 5 * v + (c.pow(2).sum() - torch.diagonal(c).pow(2).sum()) / d

    def cross_correlation(a, b):
        an = (a - a.mean(0)) / a.std(0)
        bn = (b - b.mean(0)) / b.std(0)
        c = an.T @ bn / a.shape[0]
        return (torch.diagonal(c) - 1).pow(2).sum() + 0.005 * (c.pow(2).sum() - torch.diagonal(c).pow(2).sum())

    def similarity(zs):
        return sum(torch.nn.functional.mse_loss(z, zs[-1]) for z in zs[:-1])

WORLD = 2
BATCH = 12


def inputs():
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(BATCH, 6, generator=g, dtype=torch.float64)
    x2 = x1 + 0.3 * torch.randn(BATCH, 6, generator=g, dtype=torch.float64)
    torch.manual_seed(1)
    lin = torch.nn.Linear(6, 5).double()
    return x1, x2, lin


def decorrelation(z1, z2):
    return vac(z1) + vac(z2) + 1e-3 * cross_correlation(z1, z2) + 5 * similarity([z1, z2])


def _worker(rank: int, port: int, tmp: str, dataset: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        # 1. the gathered loss and its gradients
        x1, x2, lin = inputs()
        ddp = torch.nn.parallel.DistributedDataParallel(lin)
        rows = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
        a, b = x1[rows].clone().requires_grad_(), x2[rows].clone().requires_grad_()
        loss = decorrelation(gather_with_grad(ddp(a)), gather_with_grad(ddp(b)))
        loss.backward()
        torch.save({"loss": loss.detach(), "weight": lin.weight.grad, "bias": lin.bias.grad,
                    "a": a.grad, "b": b.grad}, Path(tmp) / f"grad{rank}.pt")
        # 2. the engine under two ranks (uses the existing process group)
        with toy_methods():  # a spawned process: the module fixture did not run here
            info = pretrain(toy_cfg(Path(dataset), Path(tmp) / "ddp", **ENGINE_SETS), progress=False)
        torch.save({"steps": info.global_step, "rank": rank}, Path(tmp) / f"engine{rank}.pt")
    finally:
        dist.destroy_process_group()


# SGD, not Adam: with noiseless views some gradients are pure rounding noise (the toy loss is
# shift-invariant), which Adam's normalisation would blow up into visible weight differences.
ENGINE_SETS = {"train.epochs": 2, "train.batch_size": 8, "train.optimizer": "sgd",
               "method.options": {"noise": 0.0, "dropout": 0.0}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_matches_single_process(tmp_path):
    dataset = make_dataset(tmp_path)
    mp.spawn(_worker, args=(free_port(), str(tmp_path), str(dataset)), nprocs=WORLD, join=True)

    # 1. single process on the whole batch
    x1, x2, lin = inputs()
    a, b = x1.clone().requires_grad_(), x2.clone().requires_grad_()
    loss = decorrelation(lin(a), lin(b))
    loss.backward()
    ranks = [torch.load(tmp_path / f"grad{r}.pt", weights_only=True) for r in range(WORLD)]
    for r, got in enumerate(ranks):
        assert torch.allclose(got["loss"], loss.detach(), rtol=1e-12, atol=1e-12)
        assert torch.allclose(got["weight"], lin.weight.grad, rtol=1e-10, atol=1e-12)
        assert torch.allclose(got["bias"], lin.bias.grad, rtol=1e-10, atol=1e-12)
        rows = slice(r * BATCH // WORLD, (r + 1) * BATCH // WORLD)
        assert torch.allclose(got["a"] / WORLD, a.grad[rows], rtol=1e-10, atol=1e-12)
        assert torch.allclose(got["b"] / WORLD, b.grad[rows], rtol=1e-10, atol=1e-12)
    # without the gather the per-rank statistics differ: the test can tell
    local = decorrelation(lin(x1[: BATCH // WORLD]), lin(x2[: BATCH // WORLD]))
    assert not torch.allclose(local, loss)

    # 2. the engine: same final weights as one process on the same global batches
    single = pretrain(toy_cfg(dataset, tmp_path / "single", **ENGINE_SETS), progress=False)
    cfg = toy_cfg(dataset, tmp_path / "ddp", **ENGINE_SETS)
    run = tmp_path / "ddp" / "runs" / f"{TOY}-{resolved(cfg).pretrain_hash}"
    assert [torch.load(tmp_path / f"engine{r}.pt")["steps"] for r in range(WORLD)] == [single.global_step] * 2
    got = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    want = torch.load(single.checkpoint, weights_only=True)
    assert len(got["rng"]) == WORLD and len(want["rng"]) == 1
    for k, v in want["model"].items():
        assert torch.allclose(got["model"][k], v, rtol=1e-4, atol=1e-5), k
    assert got["metrics"]["loss"] == pytest.approx(want["metrics"]["loss"], rel=1e-4)
    assert (run / "backbone.pt").is_file()
