"""pytest-benchmark timings of the USDRL augmentation: batched (one call per batch) and the
per-sample reference feeder, on realistic raw NTU-like clips, one thread.

``pyproject.toml`` passes ``--benchmark-disable``, so in the normal suite each runs once as a plain
test (the shape checks still apply); ``tox -e bench`` enables the timings. The throughput target
itself is measured by ``harness bench augment`` (same process, ratio to the reference), never here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.benchmarks.augment import make_clips, padded_batch
from harness.benchmarks.reference_feeder import ReferenceFeeder
from harness.methods.usdrl import usdrl_views

pytestmark = pytest.mark.unit

BATCH = 32


@pytest.fixture(scope="module")
def clips():
    return make_clips(2 * BATCH, seed=0)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
    else:
        with threadpool_limits(1):
            yield
    torch.set_num_threads(threads)


def test_bench_usdrl_views_batched(benchmark, clips, one_thread):
    data, lengths = clips
    x, ln = padded_batch(data, lengths, np.arange(BATCH), torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    views = benchmark(usdrl_views, x, ln, 4, 64, gen)
    assert len(views) == 4 and all(v.shape == (BATCH, 3, 64, 25, 2) for v in views)
    benchmark.extra_info["samples_per_call"] = BATCH


def test_bench_usdrl_reference_feeder(benchmark, clips, one_thread):
    data, lengths = clips
    feeder = ReferenceFeeder(data, lengths, seed=0)

    def batch_of_samples():
        return [feeder[i] for i in range(BATCH)]

    out = benchmark(batch_of_samples)
    assert len(out) == BATCH and all(len(s) == 4 and s[0].shape == (3, 64, 25, 2) for s in out)
    benchmark.extra_info["samples_per_call"] = BATCH
