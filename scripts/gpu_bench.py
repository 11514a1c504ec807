#!/usr/bin/env python
"""Every GPU measurement of issue 14 in one run: ours vs the USDRL reference on the same GPU.

    python scripts/gpu_bench.py --reference /scratch/USDRL            # on a CUDA machine
    python scripts/gpu_bench.py --smoke [--reference /scratch/USDRL]  # on the CPU: tiny shapes, no timing claims

``--reference`` is a checkout of wengwanjiang/USDRL kept OUTSIDE this repository (its ``model/``
folder is imported from there by file path; nothing of it is copied or committed). Without it the
reference part is skipped and said so. What runs, in this order (the JSON is rewritten after
every row, so a run cut short keeps what it measured):

1. loss parity on one batch with the same weights and no stochastic depth: fp32 on the GPU vs fp32
   on the CPU (target 1e-4 relative), bf16 and fp16 autocast vs fp32 on the GPU (tolerance 2e-3:
   one bf16 rounding step; see tests/test_speed_paths.py), and, with ``--reference``, our loss vs
   the reference's own loss functions on its model with the same weights (eval mode, fp32);
2. ``harness bench encoder --device cuda`` at the paper configuration (``bench_encoder``, the
   function behind that command) for DSTE and STTR in bf16 and fp16 at ``--batch`` clips (356,
   the paper's batch; a batch that runs out of memory is halved and the row says so): samples/s,
   TFLOP/s, MFU against the bf16/fp16 matmul rate measured in the same process, peak memory;
3. the reference's own training step (its model under DataParallel, fp16 autocast, GradScaler,
   its attention and loss, its four ``.item()`` reads per step, torch's default Adam) on the same
   pre-made views, timed the same way;
4. variants of our DSTE bf16 step: torch.compile (compile time apart), explicit-matmul attention
   instead of SDPA, views made on the GPU inside the step, and the per-GPU batch of an 8-GPU run;
5. the estimate of the paper schedule (451 epochs × 40,091 NTU-60 xsub clips) on one GPU and with
   torchrun on 8 (per-GPU batch ⌈356/8⌉ = 45 measured; DDP scaling assumed, not measured).

Writes ``--out`` (default results/bench/gpu-train.json): a JSON list, one object per measured
configuration (device, encoder, precision, batch_size, ours_samples_per_s,
reference_samples_per_s, mfu, peak_memory_gb, ...), then a parity object and an estimate object.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from harness.config import load_config
from harness.resolve import resolved

REPO = Path(__file__).resolve().parents[1]
PAPER_EPOCHS, NTU60_XSUB_TRAIN = 451, 40_091
T_INPUT, S_INPUT = 150, 192  # the reference's token widths: M·V·C = 2·25·3 and T·C = 64·3
ASSUMED_DDP_SCALING = 0.9  # per-GPU throughput kept by 8-GPU DDP (gradient all-reduce overlapped)


# --- the reference, imported by path ------------------------------------------------------------
def load_reference(folder: Path) -> dict[str, Any]:
    """The reference's model/DSTE.py, model/STTR.py and model/loss.py as private modules."""
    mods = {}
    for name in ("DSTE", "STTR", "loss"):
        path = folder / "model" / f"{name}.py"
        if not path.is_file():
            raise SystemExit(f"--reference {folder}: {path} not found (expected a checkout of wengwanjiang/USDRL)")
        spec = importlib.util.spec_from_file_location(f"_usdrl_reference_{name.lower()}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        mods[name] = mod
    return mods


def reference_model(mods: dict[str, Any], encoder: str, hidden: int) -> torch.nn.Module:
    cls = mods["DSTE" if encoder == "dste" else "STTR"].USDRL
    return cls(T_INPUT, S_INPUT, hidden, 1, 2)  # num_head 1, num_layer 2 (options_pretraining.py)


def reference_loss(mods: dict[str, Any], z_t, z_s, z_i, criterion) -> tuple[torch.Tensor, ...]:
    """pretrain.py's loss assembly, with its weights (sim 5, vac 1, xcorr 1e-3)."""
    L = mods["loss"]
    sim = L.similarity(z_i, criterion) + 0.5 * (L.similarity(z_t, criterion) + L.similarity(z_s, criterion))
    vac = sum(L.v_ac(x) for x in z_i) + 0.5 * (sum(L.v_ac(x) for x in z_t) + sum(L.v_ac(x) for x in z_s))
    xc = L.cal_xc(z_i) + 0.5 * (L.cal_xc(z_s) + L.cal_xc(z_t))
    return sim * 5 + vac * 1.0 + xc * 1e-3, sim, vac, xc


def time_reference(mods, encoder: str, hidden: int, batch: int, frames: int, device: torch.device,
                   seconds: float, fp16: bool) -> dict[str, Any]:
    """The reference's training step (pretrain.py ``train``), median seconds per step; OOM halves."""
    oom: list[int] = []
    while True:
        _fresh_peak(device)
        try:
            model = torch.nn.DataParallel(reference_model(mods, encoder, hidden)).to(device).train()
            opt = torch.optim.Adam(model.parameters(), 5e-4, weight_decay=1e-5)
            scaler = torch.amp.GradScaler(device.type, enabled=fp16)
            criterion = torch.nn.MSELoss()
            g = torch.Generator().manual_seed(0)
            views = [torch.randn(batch, 3, frames, 25, 2, generator=g).to(device) for _ in range(4)]

            def step() -> None:
                opt.zero_grad()
                with torch.autocast(device.type, dtype=torch.float16, enabled=fp16):
                    z_t, z_s, z_i = model(*views)
                    loss, sim, vac, xc = reference_loss(mods, z_t, z_s, z_i, criterion)
                for v in (loss, vac, sim, xc):  # its AverageMeter updates read four values per step
                    v.item()
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()

            sec = _median_step(step, seconds, device)
            return {"samples_per_s": batch / sec, "batch_size": batch, "oom_batch_sizes": oom,
                    "peak_memory_gb": _peak_gb(device)}
        except Exception as exc:  # noqa: BLE001 - only CUDA OOM is handled
            from harness.benchmarks.train_step import is_oom

            if not is_oom(exc) or batch < 4:
                raise
        model = opt = views = step = None  # noqa: F841 - freed before the next attempt (_fresh_peak)
        oom.append(batch)
        batch //= 2


def _median_step(step, seconds: float, device: torch.device, warmup: int = 2, min_iters: int = 3) -> float:
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _fresh_peak(device: torch.device) -> None:
    if device.type == "cuda":
        import gc

        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    torch.cuda.reset_peak_memory_stats(device)
    return round(peak, 2)


# --- parity ------------------------------------------------------------------------------------
def _our_method(preset: str, device: torch.device, hidden: int | None = None, encoder: str = "dste"):
    from harness.config import load_config as resolve
    from harness.contracts import DataInfo, build_method
    from harness.data.topology import NTU25

    over: dict[str, Any] = {"method.name": "usdrl", "encoder.name": encoder, "data.frames": 64}
    if encoder == "dste":
        over["encoder.options"] = {"drop_path": 0.0, **({"hidden": hidden, "mlp_hidden": 2 * hidden} if hidden else {})}
    elif hidden:
        over["encoder.options"] = {"hidden": hidden, "ffn": hidden}
    cfg = resolved(resolve(preset, overrides=over))
    info = DataInfo(topology=NTU25, num_classes=60, frames=64, persons=2)
    torch.manual_seed(0)
    return build_method(cfg, info).to(device)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-30)


def parity(device: torch.device, preset: str, hidden: int | None, batch: int, mods: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "parity", "device": _device_name(device), "batch_size": batch}
    m = _our_method(preset, torch.device("cpu"), hidden).train()
    g = torch.Generator().manual_seed(1)
    views = [torch.randn(batch, 3, 64, 25, 2, generator=g) for _ in range(4)]
    with torch.no_grad():
        cpu32 = m(views)["loss"].item()
    out["loss_fp32_cpu"] = cpu32
    if device.type == "cuda":
        md = copy.deepcopy(m).to(device)
        dv = [v.to(device) for v in views]
        with torch.no_grad():
            gpu32 = md(dv)["loss"].item()
            out["loss_fp32_cuda"] = gpu32
            out["fp32_cuda_vs_cpu_rel"] = _rel(gpu32, cpu32)
            out["fp32_cuda_vs_cpu_ok"] = out["fp32_cuda_vs_cpu_rel"] <= 1e-4
            for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
                with torch.autocast("cuda", dtype=dtype):
                    low = md(dv)["loss"].item()
                out[f"loss_{name}_cuda"] = low
                out[f"{name}_vs_fp32_rel"] = _rel(low, gpu32)
                out[f"{name}_vs_fp32_ok"] = out[f"{name}_vs_fp32_rel"] <= 2e-3
    else:  # the smoke run: bf16 autocast on the CPU
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            low = m(views)["loss"].item()
        out["loss_bf16_cpu"] = low
        out["bf16_vs_fp32_rel"] = _rel(low, cpu32)
        out["bf16_vs_fp32_ok"] = out["bf16_vs_fp32_rel"] <= 2e-3
    if mods is not None:
        out.update(_reference_parity(mods, m, views, hidden or 1024))
    return out


def _reference_parity(mods, ours, views, hidden: int) -> dict[str, Any]:
    """Our loss vs the reference's on its model with our weights (eval: no DropPath, BN running stats)."""
    ref = reference_model(mods, "dste", hidden)
    ours_state = ours.state_dict()
    mapped = {}
    for key in ref.state_dict():
        src = "net.encoder." + key[len("backbone."):] if key.startswith("backbone.") else key
        if src not in ours_state:
            return {"reference_parity": f"skipped: reference key {key} has no counterpart {src}"}
        mapped[key] = ours_state[src]
    missing = ref.load_state_dict(mapped, strict=False)
    ref.eval()
    ours = copy.deepcopy(ours).eval()
    with torch.no_grad():
        ref_loss = reference_loss(mods, *ref(*views), torch.nn.MSELoss())[0].item()
        our_loss = ours(views)["loss"].item()
    return {"reference_loss_fp32_cpu": ref_loss, "ours_loss_same_weights": our_loss,
            "ours_vs_reference_rel": _rel(our_loss, ref_loss), "ours_vs_reference_ok": _rel(our_loss, ref_loss) <= 1e-4,
            "reference_keys_unloaded": list(missing.missing_keys)}


# --- ours ---------------------------------------------------------------------------------------
def ours_row(encoder: str, precision: str, batch: int, *, config: str, device: torch.device, seconds: float,
             compile: bool = False, augment: bool = False, attention: str | None = None) -> dict[str, Any]:
    from harness.benchmarks.encoder_bench import attention_impl, bench_encoder

    _fresh_peak(device)
    before = attention_impl()
    if attention is not None:
        attention_impl(attention)
    try:
        r = bench_encoder(encoder, config=config, batch_size=batch, seconds=seconds, views=4, device=device,
                          amp=precision, compile=compile, augment=augment,
                          matmul_size=None if device.type == "cuda" else 256)
    finally:
        attention_impl(before)
    peak = r.cuda_max_allocated_mib
    return {"device": _device_name(device), "encoder": encoder, "precision": "fp32" if precision == "off" else precision,
            "batch_size": r.batch_size,
            "requested_batch_size": r.requested_batch_size, "oom_batch_sizes": r.oom_batch_sizes,
            "ours_samples_per_s": r.train_samples_per_s, "mfu": r.mfu, "train_tflops_per_s": r.train_tflops_per_s,
            "matmul_tflops_per_s": r.matmul_gflops_per_s / 1e3, "matmul_dtype": r.matmul_dtype,
            "peak_memory_gb": None if peak is None else round(peak / 1024, 2),
            "infer_samples_per_s": r.infer_samples_per_s, "gflops_per_sample": r.gflops_per_sample,
            "train_gflops_per_sample": r.train_gflops_per_sample, "compile": compile, "compile_s": r.compile_s,
            "augment": augment, "attention": r.attention, "notes": r.notes}


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def schedule_hours(samples_per_s: float | None, gpus: int = 1, scaling: float = 1.0) -> float | None:
    if not samples_per_s:
        return None
    return PAPER_EPOCHS * NTU60_XSUB_TRAIN / (samples_per_s * gpus * scaling) / 3600


def _with_reference(row: dict[str, Any], ref: dict[str, Any] | None, device: torch.device) -> dict[str, Any]:
    row["reference_precision"] = "fp16" if device.type == "cuda" else "fp32"
    row["reference_samples_per_s"] = ref["samples_per_s"] if ref else None
    row["reference_batch_size"] = ref["batch_size"] if ref else None
    row["reference_oom_batch_sizes"] = ref["oom_batch_sizes"] if ref else None
    row["reference_peak_memory_gb"] = ref["peak_memory_gb"] if ref else None
    row["speedup"] = (row["ours_samples_per_s"] / ref["samples_per_s"]) if ref else None
    row["paper_schedule_hours_1gpu"] = schedule_hours(row["ours_samples_per_s"])
    if ref is None:
        row["notes"] = row["notes"] + ["reference not timed (no --reference)"]
    return row


# --- the run ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", type=Path, default=None, help="checkout of wengwanjiang/USDRL (outside this repo)")
    p.add_argument("--out", type=Path, default=REPO / "results" / "bench" / "gpu-train.json")
    p.add_argument("--smoke", action="store_true", help="CPU, tiny shapes, no timing claims (the test suite runs it)")
    p.add_argument("--batch", type=int, default=None, help="training clips per step (default 356; smoke 4)")
    p.add_argument("--seconds", type=float, default=None, help="time per measurement (default 3; smoke 0)")
    p.add_argument("--skip-variants", action="store_true", help="leave out step 4 (compile, matmul attention, ...)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.reference is not None:
        ref_dir = args.reference.resolve()
        if ref_dir == REPO or REPO in ref_dir.parents:
            raise SystemExit("--reference must be outside this repository (never commit reference code)")
    if args.smoke:
        device, config, hidden = torch.device("cpu"), "smoke", 32
        batch, seconds = args.batch or 4, 0.0 if args.seconds is None else args.seconds
        precisions = ("off", "bf16")
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device: run with --smoke on the CPU")
        device, config, hidden = torch.device("cuda"), "paper", None
        batch, seconds = args.batch or 356, 3.0 if args.seconds is None else args.seconds
        precisions = ("bf16", "fp16")
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 parity really in fp32
        torch.backends.cudnn.allow_tf32 = False
    mods = load_reference(args.reference) if args.reference is not None else None
    rows: list[dict[str, Any]] = []

    def save(extra: list[dict[str, Any]] = ()) -> None:
        from harness import atomic

        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(args.out, json.dumps(rows + list(extra), indent=2) + "\n")

    common = {"smoke": args.smoke, "timing_claims": not args.smoke, "torch": torch.__version__}
    rows.append({**common, **parity(device, config, hidden, 4 if args.smoke else 8, mods)})
    save()
    ref_rate: dict[str, Any] = {}
    for encoder in ("dste", "sttr"):
        if mods is not None:
            ref = time_reference(mods, encoder, hidden or 1024, batch, 64, device, seconds, fp16=device.type == "cuda")
            ref_rate[encoder] = ref
        for precision in precisions:
            row = {**common, **ours_row(encoder, precision, batch, config=config, device=device, seconds=seconds)}
            rows.append(_with_reference(row, ref_rate.get(encoder), device))
            save()
    per_gpu = math.ceil(356 / 8) if not args.smoke else batch
    variants = [] if args.skip_variants else [
        dict(compile=True), dict(attention="matmul"), dict(augment=True), dict(batch=per_gpu)]
    main_precision = precisions[-1] if args.smoke else "bf16"
    for v in variants:
        b = v.pop("batch", batch)
        row = {**common, **ours_row("dste", main_precision, b, config=config, device=device, seconds=seconds, **v)}
        row["variant"] = ", ".join(f"{k}={val}" for k, val in v.items()) or f"per-GPU batch of 8 GPUs ({b})"
        rows.append(_with_reference(row, ref_rate.get("dste"), device))
        save()
    shown = "fp32" if main_precision == "off" else main_precision
    main_row = next(r for r in rows if r.get("encoder") == "dste" and r.get("precision") == shown)
    per_gpu_row = next((r for r in rows if r.get("variant", "").startswith("per-GPU")), main_row)
    estimate = {"kind": "estimate", "epochs": PAPER_EPOCHS, "clips_per_epoch": NTU60_XSUB_TRAIN,
                "one_gpu_hours": schedule_hours(main_row["ours_samples_per_s"]),
                "one_gpu_batch": main_row["batch_size"],
                "eight_gpu_hours": schedule_hours(per_gpu_row["ours_samples_per_s"], 8, ASSUMED_DDP_SCALING),
                "eight_gpu_per_gpu_batch": per_gpu_row["batch_size"], "assumed_ddp_scaling": ASSUMED_DDP_SCALING,
                "reference_one_gpu_hours": schedule_hours((ref_rate.get("dste") or {}).get("samples_per_s")),
                "note": "ours at bf16 (DSTE); 8 GPUs = 8 x the per-GPU-batch throughput x the assumed DDP scaling "
                        "(torchrun not measured here)"}
    save([estimate])
    print(json.dumps(rows + [estimate], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
