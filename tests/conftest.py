"""Shared fixtures. Real data lives at $HARNESS_REAL_DATA (default ../shared/data/real)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from harness.data.prepared.kinds import real_data_dir


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real data folder; skips when absent, except in CI (HARNESS_REQUIRE_REAL_DATA=1) where it fails."""
    root = real_data_dir()
    if not root.is_dir():
        if os.environ.get("HARNESS_REQUIRE_REAL_DATA"):
            pytest.fail(f"real data folder {root} is missing (HARNESS_REQUIRE_REAL_DATA is set)")
        pytest.skip(f"real data folder {root} not found (set HARNESS_REAL_DATA)")
    return root


@pytest.fixture
def one_thread():
    """Tiny tensors on a shared machine: one intra-op thread (no spinning contention), restored after.

    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pytest_collection_modifyitems(config, items):
    """Every test that uses the real data folder (directly or through a fixture) is marked ``real``,
    so ``-m "not real"`` leaves out exactly the tests that read it."""
    for item in items:
        if "real_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.real)
