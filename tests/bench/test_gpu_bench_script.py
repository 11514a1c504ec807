"""scripts/gpu_bench.py runs end to end on the CPU (``--smoke``: tiny shapes, no timing claims).

The reference part runs only when ``HARNESS_USDRL_REFERENCE`` names a checkout of
wengwanjiang/USDRL outside the repository (it is never part of the repository); otherwise the rows
say it was skipped. The compile variant uses the ``eager`` backend here (dynamo only, seconds).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def _script():
    spec = importlib.util.spec_from_file_location("gpu_bench", REPO / "scripts" / "gpu_bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_bench_smoke_runs_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_COMPILE_BACKEND", "eager")
    ref = os.environ.get("HARNESS_USDRL_REFERENCE")
    out = tmp_path / "gpu-train.json"
    argv = ["--smoke", "--out", str(out)] + (["--reference", ref] if ref else [])
    assert _script().main(argv) == 0
    rows = json.loads(out.read_text())
    parity, *measured, estimate = rows
    assert parity["kind"] == "parity" and parity["bf16_vs_fp32_ok"]
    assert estimate["kind"] == "estimate" and estimate["one_gpu_hours"] > 0 and estimate["eight_gpu_hours"] > 0
    keys = {"device", "encoder", "precision", "batch_size", "ours_samples_per_s", "reference_samples_per_s",
            "mfu", "peak_memory_gb"}
    assert {(r["encoder"], r["precision"]) for r in measured if "variant" not in r} == {
        (e, p) for e in ("dste", "sttr") for p in ("fp32", "bf16")}
    for r in measured:
        assert keys <= set(r) and r["ours_samples_per_s"] > 0 and r["smoke"] and not r["timing_claims"]
    assert any(r.get("compile") and r["compile_s"] is not None for r in measured)
    if ref:
        assert parity["ours_vs_reference_ok"] and all(r["reference_samples_per_s"] for r in measured
                                                       if "variant" not in r)
    else:
        assert all(r["reference_samples_per_s"] is None and "reference not timed" in " ".join(r["notes"])
                   for r in measured if "variant" not in r)


def test_gpu_bench_refuses_a_reference_inside_the_repository(tmp_path):
    with pytest.raises(SystemExit, match="outside this repository"):
        _script().main(["--smoke", "--reference", str(REPO / "scripts"), "--out", str(tmp_path / "x.json")])


def test_gpu_bench_without_cuda_asks_for_smoke(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(SystemExit, match="--smoke"):
        _script().main(["--out", str(tmp_path / "x.json")])
