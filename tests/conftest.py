"""Shared fixtures. Real data lives at $HARNESS_REAL_DATA (default ../shared/data/real)."""

from __future__ import annotations

import hashlib
import os
import subprocess
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


# --- the test command writes no tracked file ------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]


def _results_files() -> dict[str, str] | None:
    """sha256 of every file under results/ that git tracks, and the untracked ones it does not ignore
    (None outside a git checkout): the committed campaign store, its tables, figures and index."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "results"],
                                cwd=REPO, capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    out = {}
    for name in filter(None, listed.decode().split("\0")):
        path = REPO / name
        out[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "absent"
    return out


def pytest_sessionstart(session):
    session.config.stash[_RESULTS_KEY] = _results_files()


def pytest_sessionfinish(session, exitstatus):
    """Fail the session when a test changed, removed or added a file under results/: tests write to
    their temporary folders (``--results``, ``--workdir``), never to the committed store."""
    before = session.config.stash.get(_RESULTS_KEY, None)
    if before is None:
        return
    after = _results_files() or {}
    changed = sorted(n for n in set(before) | set(after) if before.get(n) != after.get(n))
    if not changed:
        return
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    text = ("the test session changed files under results/ (a test wrote into the repository instead of its "
            "temporary folder, or someone edited them meanwhile): " + ", ".join(changed))
    if reporter is not None:
        reporter.write("\n")
        reporter.write_line(text, red=True, bold=True)


_RESULTS_KEY = pytest.StashKey[dict]()
