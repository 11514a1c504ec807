"""examples/harness-example-method: a third-party method found through the ``harness.methods`` entry point.

The example package is installed into a temporary ``--target`` folder (never into the venv); with that
folder on PYTHONPATH the CLI lists it, pretrains it and evaluates it with ``harness run``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch


from harness.data.topology import NTU25
from harness.contracts import DataInfo
from protocol_helpers import toy_dataset
from harness.config import load_config

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "harness-example-method"


pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    src = tmp_path_factory.mktemp("src") / EXAMPLE.name  # build from a copy: no build/ in the checkout
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(src)], check=True, capture_output=True)
    return target


def cli(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(site), "PATH": os.environ.get("PATH", ""), "OMP_NUM_THREADS": "1",
           "HOME": os.environ.get("HOME", "/tmp")}
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_example_loss_in_process():
    sys.path.insert(0, str(EXAMPLE))
    try:
        from harness_example_method import SimSiam
    finally:
        sys.path.remove(str(EXAMPLE))
    cfg = load_config("smoke", overrides={"method.name": "example_simsiam", "encoder.name": "sttr"})
    torch.manual_seed(0)
    m = SimSiam(cfg, DataInfo(NTU25, 60, 16, 2))
    m.predictor = torch.nn.Identity()  # then p = z and identical views give cos = 1 exactly
    x = torch.randn(4, 3, 16, 25, 2)
    assert m([x, x])["loss"].item() == pytest.approx(-1.0, abs=1e-5)
    views = m.make_views(torch.randn(4, 3, 20, 25, 2), torch.full((4,), 20), torch.Generator().manual_seed(0))
    assert m(views)["loss"].item() > -1.0


@pytest.mark.slow
def test_example_is_listed_pretrained_and_evaluated(site, tmp_path):
    listing = json.loads(cli(site, "list", "--json").stdout)
    entry = [e for e in listing["methods"] if e["name"] == "example_simsiam"]
    assert entry and entry[0]["source"] == "harness-example-method"
    assert entry[0]["variants"] == ["default", "light_crop"]

    ds = toy_dataset(tmp_path / "data")
    work = tmp_path / "work"
    out = cli(site, "pretrain", "--method", "example_simsiam", "--dataset", str(ds.root), "--preset", "smoke",
              "--workdir", str(work), "--no-progress", "--json").stdout
    run = json.loads(out)
    assert run["status"] == "finished" and Path(run["backbone"]).is_file()
    assert run["global_step"] == 6 and run["epochs"] == 6  # the smoke budget; 32 clips = one batch per epoch

    rows = json.loads(cli(site, "run", "--method", "example_simsiam", "--protocol", "knn", "--preset", "smoke",
                          "--dataset", str(ds.root), "--workdir", str(work), "--results", str(tmp_path / "results"),
                          "--no-progress", "--json").stdout)
    assert rows and all(r["method"] == "example_simsiam" and r["protocol"] == "knn" for r in rows)
    assert "knn1" in {r["metric"] for r in rows} and all(0.0 <= r["value"] <= 1.0 for r in rows)
