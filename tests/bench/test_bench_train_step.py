"""``harness bench encoder``'s training-step options: --amp, --compile, --augment, --attention, and
the CUDA out-of-memory fallback (simulated on the CPU). Timings are never checked here."""

from __future__ import annotations

import json

import pytest
import torch

from harness.benchmarks import encoder_bench as bench
from harness.benchmarks import train_step
from harness.cli import main

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("one_thread")]

SMALL = ["bench", "encoder", "--config", "smoke", "--encoders", "dste", "--seconds", "0", "--json",
         "--matmul-size", "64", "--batch-size", "4", "--infer-batch-size", "4", "--no-malloc-tuning"]


def _run(capsys, *extra):
    assert main(SMALL + list(extra)) == 0
    return json.loads(capsys.readouterr().out)[0]


def test_amp_bf16_measures_against_a_bf16_matmul_and_reports_mfu(capsys):
    r = _run(capsys, "--amp", "bf16")
    assert r["amp"] == "bf16" and r["matmul_dtype"] == "bfloat16"
    assert r["mfu"] == r["train_efficiency"] > 0 and r["train_tflops_per_s"] == pytest.approx(
        r["train_gflops_per_s"] / 1e3)
    assert "amp bf16" in r["loss"]
    r = _run(capsys)
    assert r["amp"] == "off" and r["matmul_dtype"] == "float32"  # auto on the CPU = fp32


def test_fp16_on_the_cpu_is_refused(capsys):
    assert main(SMALL + ["--amp", "fp16"]) == 2
    assert "fp16" in capsys.readouterr().err


def test_compile_times_the_first_call_apart(capsys, monkeypatch):
    monkeypatch.setenv("HARNESS_COMPILE_BACKEND", "eager")  # dynamo only: seconds, not minutes
    r = _run(capsys, "--compile")
    assert r["compiled"] and r["compile_s"] > 0 and "torch.compile" in r["loss"]


def test_augment_makes_the_views_in_the_step(capsys):
    r = _run(capsys, "--augment")
    assert r["augment"] and "views made in the step" in r["loss"] and r["train_samples_per_s"] > 0


def test_attention_switch(capsys):
    before = bench.attention_impl()
    try:
        assert _run(capsys, "--attention", "sdpa")["attention"] == "sdpa"
    finally:
        bench.attention_impl(before)


def test_a_batch_that_runs_out_of_memory_is_halved(monkeypatch):
    real = train_step.make_train_step

    def fake(cfg, info, dev, *, batch, **kw):
        if batch > 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")
        return real(cfg, info, dev, batch=batch, **kw)

    monkeypatch.setattr(bench, "make_train_step", fake)
    r = bench.bench_encoder("dste", config="smoke", batch_size=16, infer_batch_size=4, seconds=0, matmul_size=64)
    assert r.requested_batch_size == 16 and r.oom_batch_sizes == [16, 8] and r.batch_size == 4
    assert "does not fit" in r.notes[0] and r.train_samples_per_s > 0


def test_other_errors_are_not_taken_for_oom():
    assert train_step.is_oom(torch.OutOfMemoryError("x")) and train_step.is_oom(RuntimeError("CUDA out of memory."))
    assert not train_step.is_oom(RuntimeError("shape mismatch")) and not train_step.is_oom(ValueError("x"))
