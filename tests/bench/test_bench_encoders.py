"""pytest-benchmark timings of the DSTE and STTR forward pass (eval mode, no grad, one thread).

``pyproject.toml`` passes ``--benchmark-disable``, so in the normal suite the smoke- and cpu-size
tests run once as plain tests (with their shape checks) and the paper-size ones skip; run with
``--benchmark-enable`` to time all of them. Efficiency targets are measured by
``harness bench encoder`` (ratios to a matmul in the same process), never here.
"""

from __future__ import annotations

import pytest
import torch


from harness.contracts import DataInfo, build_encoder
from harness.data.topology import NTU25
from harness.config import load_config
from harness.resolve import resolved

BATCH = {"smoke": 16, "cpu": 16, "paper": 8}


pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_thread")]  # tests/conftest.py


def _encoder(name: str, preset: str):
    cfg = resolved(load_config(preset, overrides={"encoder.name": name}))
    torch.manual_seed(0)
    info = DataInfo(topology=NTU25, num_classes=60, frames=cfg.data.frames, persons=2)
    enc = build_encoder(cfg, info, reference_init=True).eval()
    x = torch.randn(BATCH[preset], 3, cfg.data.frames, 25, 2)
    return enc, x, cfg


def _forward(enc, x):
    with torch.inference_mode():
        return enc(x)


@pytest.mark.parametrize("preset", ["smoke", "cpu"])
@pytest.mark.parametrize("name", ["dste", "sttr"])
def test_bench_forward(benchmark, name, preset):
    enc, x, cfg = _encoder(name, preset)
    out = benchmark(_forward, enc, x)
    d = cfg.encoder.options["hidden"]
    assert out.pooled.shape == (x.shape[0], 2 * d)
    assert out.temporal.shape == (x.shape[0], cfg.data.frames, d) and out.spatial.shape == (x.shape[0], 50, d)
    assert torch.isfinite(out.pooled).all()


@pytest.mark.parametrize("name", ["dste", "sttr"])
def test_bench_forward_paper(benchmark, name):
    if benchmark.disabled:
        pytest.skip("paper-size timing runs only with --benchmark-enable")
    enc, x, _ = _encoder(name, "paper")
    out = benchmark.pedantic(_forward, args=(enc, x), rounds=3, warmup_rounds=1)
    assert out.pooled.shape == (x.shape[0], 2048)
