"""Peak memory (CPU RSS; CUDA max_memory_allocated on a GPU) in run.json and `harness bench encoder`."""

from __future__ import annotations

import json

import pytest
import torch

from harness.cli import main

from harness.engine import pretrain
from harness.engine.memory import peak_memory, peak_rss_mib
from harness.config import load_config

pytestmark = pytest.mark.usefixtures("one_thread")


def test_peak_rss_covers_a_large_allocation():
    before = peak_rss_mib()
    assert before is not None and before > 0
    big = torch.ones(64 * 1024 * 1024 // 4 * 3)  # 192 MiB, touched
    assert peak_rss_mib() >= before and peak_rss_mib() >= big.numel() * 4 / 2**20
    assert set(peak_memory("cpu")) == {"peak_rss_mib"}


def test_run_json_records_peak_memory_at_finish(tmp_path):
    cfg = load_config("smoke", overrides={"method.name": "random", "workdir": str(tmp_path)})
    info = pretrain(cfg, progress=False)
    meta = json.loads((info.run_dir / "run.json").read_text())
    assert meta["status"] == "finished" and meta["peak_rss_mib"] > 0
    assert ("cuda_max_allocated_mib" in meta) == meta["device"].startswith("cuda")


def test_bench_encoder_reports_peak_memory(capsys):
    assert main(["bench", "encoder", "--config", "smoke", "--seconds", "0", "--json", "--matmul-size", "64",
                 "--batch-size", "4", "--infer-batch-size", "4", "--no-malloc-tuning", "--encoders", "sttr",
                 "--device", "cpu"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["peak_rss_mib"] > 0 and row["cuda_max_allocated_mib"] is None
