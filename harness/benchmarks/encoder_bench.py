"""Encoder throughput: parameters, GFLOPs/sample, inference and USDRL training-step samples/s.

For each encoder (DSTE, STTR by default) at a preset's size (``--config paper|cpu|smoke``):

- ``params``: encoder parameters; ``train_params`` adds the three USDRL projectors;
- ``gflops_per_sample``: forward GFLOPs per clip counted by FlopCounterMode (matmuls, convolutions
  and attention at 2 FLOPs/MAC; see ``harness.benchmarks.flops``);
- inference: eval mode, ``torch.inference_mode``, batches of ``--batch-size`` clips;
- training step: the full USDRL step on ``--batch-size`` clips — 4 pre-made views (augmentation is
  benchmarked by ``harness bench augment``) through the encoder and the t/s/i projectors, the
  multi-grained decorrelation loss, backward, Adam step (lr 5e-4, weight decay 1e-5). It uses
  the registered ``usdrl`` method when it is importable, else the encoder + projectors + the
  ``harness.methods.losses`` loss, else a stand-in loss (the output says which);
- memory: ``peak_rss_mib`` (the process's peak resident set so far, ``getrusage``: it never goes
  down, so with several encoders it covers the earlier ones too) and, on CUDA,
  ``cuda_max_allocated_mib`` (``torch.cuda.max_memory_allocated`` since this encoder's benchmark
  started), read after the training step (harness.engine.memory);
- efficiency = achieved GFLOP/s ÷ GFLOP/s of a square ``--matmul-size`` matmul measured in
  the same process, interleaved with the model measurements (medians of both), in the precision
  the model computes in: fp32, or bf16 / fp16 under ``--amp`` (then ``efficiency`` is the
  model-FLOPs utilisation, also reported as ``mfu``). Training FLOPs per sample = 3 × views ×
  (encoder + projector forward FLOPs), the usual forward + 2× backward convention; the loss's D×D
  products are not counted, so the train efficiency is slightly understated;
- the step is built as the Trainer runs it (``harness.benchmarks.train_step``): ``--amp``
  (``train.amp``: auto = bf16 on CUDA, fp32 on the CPU; fp16 adds the GradScaler), ``--compile``
  (``train.compile``: torch.compile of the method; the compiling first call is timed apart as
  ``compile_s``), ``--augment`` (the method's own view making on raw clips inside the step);
- on CUDA a batch that runs out of memory is halved until one fits: ``batch_size`` is what was
  measured, ``oom_batch_sizes`` the ones that did not fit (``requested_batch_size`` the first).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch

from ..config import DEFAULT_METHOD, load_config
from ..resolve import resolved
from ..contracts import DataInfo, build_encoder
from ..data.topology import NTU25
from ..engine.amp import resolve_amp
from ..engine.memory import peak_memory
from ..registry import ENCODERS
from .flops import count_flops, encoder_flops
from .train_step import free_cuda, is_oom, make_train_step

# training clips per step. The USDRL loss has a batch-independent cost (D×D matrices, D = 4096 for
# the instance domain) that the reference amortises over 178 clips per GPU; 16 is the smallest
# paper batch at which it stays a few percent of a CPU step (at 8 it is ~7 % of the DSTE step).
DEFAULT_BATCH = {"paper": 16, "cpu": 32, "smoke": 32}
TRAIN_FLOPS_CONVENTION = "3 x views x (encoder + projectors) forward FLOPs per sample; loss not counted"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument("--config", choices=["paper", "cpu", "smoke"], default="paper",
                   help="encoder size preset (default: paper)")
    p.add_argument("--encoders", default="dste,sttr", help="comma-separated registered encoders")
    p.add_argument("--batch-size", type=int, default=None,
                   help="clips per training step, each encoded as --views views (default: paper 16, "
                        "cpu 32, smoke 32)")
    p.add_argument("--infer-batch-size", type=int, default=None,
                   help="clips per inference call (default: batch size x views, the number of clips "
                        "the encoder sees per training step)")
    p.add_argument("--seconds", type=float, default=5.0, help="time per measurement after warm-up")
    p.add_argument("--views", type=int, default=4, help="views per clip in the training step")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--matmul-size", type=int, default=None,
                   help="side of the reference square matmul (default: 2048 on the CPU, 8192 on CUDA)")
    p.add_argument("--amp", choices=["auto", "off", "bf16", "fp16"], default="auto",
                   help="autocast as train.amp (auto: bf16 on CUDA, fp32 on the CPU; fp16 adds a GradScaler)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the method as train.compile=true does (compile time reported apart)")
    p.add_argument("--augment", action="store_true",
                   help="make the views inside the training step from raw clips (method.make_views)")
    p.add_argument("--attention", choices=["auto", "sdpa", "matmul"], default=None,
                   help="attention kernel (methods/encoders/layers.py ATTENTION_IMPL; default: "
                        "HARNESS_ATTENTION or auto = fused SDPA on CUDA, matmuls on the CPU)")
    p.add_argument("--skip-train", action="store_true", help="measure inference only")
    p.add_argument("--clock", choices=["wall", "process"], default="wall",
                   help="time with the wall clock (default) or this process's CPU time (steadier on a "
                        "shared machine; meaningful with --threads 1)")
    p.add_argument("--no-malloc-tuning", action="store_true",
                   help="keep glibc's default malloc settings (see tune_malloc)")


def tune_malloc() -> bool:
    """Make glibc keep freed memory in the heap instead of returning it to the OS.

    By default every tensor above glibc's mmap threshold (at most 32 MB) is mmap'ed and unmapped on
    free, so each training step page-faults its activations in again: about 0.9 M page faults and
    ~3 s of kernel time per paper-size DSTE step at batch 8 (15 % of the step). With these settings
    the heap is reused and a warm step has no page faults. Linux/glibc only; returns False elsewhere.
    The trade-off is that the process keeps its peak heap size.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    ok = True
    for param, value in ((m_mmap_threshold, 1 << 30), (m_trim_threshold, 2 ** 31 - 1), (m_top_pad, 1 << 30)):
        ok = bool(libc.mallopt(param, value)) and ok
    return ok


@dataclass
class EncoderBench:
    encoder: str
    config: str
    device: str
    batch_size: int
    infer_batch_size: int
    params: int
    train_params: int = 0
    gflops_per_sample: float = 0.0
    infer_samples_per_s: float = 0.0
    infer_gflops_per_s: float = 0.0
    infer_efficiency: float = 0.0
    train_samples_per_s: float | None = None
    train_gflops_per_s: float | None = None
    train_efficiency: float | None = None
    train_gflops_per_sample: float | None = None
    train_flops_convention: str = TRAIN_FLOPS_CONVENTION
    views: int = 4
    loss: str = ""
    matmul_gflops_per_s: float = 0.0
    threads: int = 0
    clock: str = "wall"
    malloc_tuned: bool = False
    peak_rss_mib: float | None = None
    cuda_max_allocated_mib: float | None = None
    amp: str = "off"
    matmul_dtype: str = "float32"
    mfu: float | None = None  # = train_efficiency: against the matmul rate in the compute precision
    train_tflops_per_s: float | None = None
    compiled: bool = False
    compile_s: float | None = None
    augment: bool = False
    attention: str = ""
    requested_batch_size: int = 0
    oom_batch_sizes: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


_CLOCKS = {"wall": time.perf_counter, "process": time.process_time}


class _Matmul:
    """Square matmul rate (fp32 unless ``dtype``), sampled between model measurements."""

    def __init__(self, n: int, device: torch.device, clock: str = "wall", dtype: torch.dtype = torch.float32):
        self.clock = _CLOCKS[clock]
        self.dtype = dtype
        g = torch.Generator(device="cpu").manual_seed(0)
        self.a = torch.randn(n, n, generator=g).to(device, dtype)
        self.b = torch.randn(n, n, generator=g).to(device, dtype)
        self.out = torch.empty(n, n, device=device, dtype=dtype)
        self.flops = 2.0 * n ** 3
        self.device = device
        self.samples: list[float] = []
        torch.mm(self.a, self.b, out=self.out)  # warm-up
        _sync(device)

    def sample(self, reps: int = 3) -> None:
        best = float("inf")
        for _ in range(reps):
            t0 = self.clock()
            torch.mm(self.a, self.b, out=self.out)
            _sync(self.device)
            best = min(best, self.clock() - t0)
        self.samples.append(self.flops / best / 1e9)

    def gflops(self, since: int = 0) -> float:
        return statistics.median(self.samples[since:])


def _measure(step: Callable[[], Any], seconds: float, device: torch.device, mm: _Matmul,
             min_iters: int = 2) -> tuple[float, float]:
    """Median seconds per step (after one warm-up step) and the median matmul rate around them."""
    step()
    _sync(device)
    first = len(mm.samples)
    mm.sample()
    times: list[float] = []
    clock = mm.clock
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < seconds:
        t0 = clock()
        step()
        _sync(device)
        times.append(clock() - t0)
        mm.sample(reps=2)
    return statistics.median(times), mm.gflops(first)


def attention_impl(value: str | None = None) -> str:
    """The attention kernel of the registered encoders that have a switch (``Encoder.attention``:
    DSTE and STTR), set on each first when ``value`` is given."""
    found = ""
    for name in ENCODERS.names():
        found = ENCODERS.get(name).attention(value) or found
    return found


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


_AMP_DTYPES = {"off": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _projector_flops(method: Any, dev: torch.device) -> float:
    total = 0.0
    for proj in (method.t_proj, method.s_proj, method.i_proj):
        if proj is None:
            continue
        was = proj.training
        proj.eval()
        with torch.no_grad():
            total += count_flops(proj, torch.zeros(2, proj[0].in_features, device=dev)) / 2
        proj.train(was)
    return total


def bench_encoder(name: str, *, config: str = "paper", batch_size: int | None = None,
                  infer_batch_size: int | None = None, seconds: float = 5.0, views: int = 4,
                  device: str | torch.device = "auto", matmul_size: int | None = None, train: bool = True,
                  mm: _Matmul | None = None, amp: str = "auto", compile: bool = False,
                  augment: bool = False) -> EncoderBench:
    dev = _resolve_device(device) if isinstance(device, str) else device
    settings = resolve_amp(amp, dev)
    cfg = resolved(load_config(config, overrides={"encoder.name": name, "method.name": DEFAULT_METHOD,
                                     "method.options": {"num_views": views}}))
    b = batch_size or DEFAULT_BATCH[config]
    bi = infer_batch_size or b * views
    info = DataInfo(topology=NTU25, num_classes=60, frames=cfg.data.frames, persons=2)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)  # this encoder's peak, not the previous one's
    mm = mm or _Matmul(matmul_size or (8192 if dev.type == "cuda" else 2048), dev,
                       dtype=_AMP_DTYPES[settings.mode])
    gen = torch.Generator(device="cpu").manual_seed(0)

    encoder = build_encoder(cfg, info, reference_init=True).to(dev)
    flops = encoder_flops(encoder, batch=1)
    res = EncoderBench(encoder=name, config=config, device=str(dev), batch_size=b, infer_batch_size=bi,
                       params=sum(p.numel() for p in encoder.parameters()), gflops_per_sample=flops / 1e9,
                       views=views, threads=torch.get_num_threads(),
                       clock="process" if mm.clock is time.process_time else "wall", amp=settings.mode,
                       matmul_dtype=str(mm.dtype).replace("torch.", ""), compiled=compile, augment=augment,
                       attention=ENCODERS.get(name).attention(), requested_batch_size=b)

    encoder.eval()
    while True:  # on CUDA, halve an inference batch that does not fit
        try:
            x = torch.randn(bi, 3, info.frames, info.joints, info.persons, generator=gen).to(dev)

            def infer() -> None:
                with torch.inference_mode(), settings.autocast():
                    encoder(x)

            sec, mm_rate = _measure(infer, seconds, dev, mm)
            break
        except Exception as exc:  # noqa: BLE001 - only CUDA OOM is handled
            if not is_oom(exc) or bi < 2:
                raise
        x = None
        free_cuda(dev)  # after the except block: the error's frames no longer hold the tensors
        res.notes.append(f"inference batch {bi} ran out of memory")
        bi //= 2
    res.infer_batch_size = bi
    res.infer_samples_per_s = bi / sec
    res.infer_gflops_per_s = flops * bi / sec / 1e9
    res.infer_efficiency = res.infer_gflops_per_s / mm_rate
    res.matmul_gflops_per_s = mm_rate
    del encoder, x
    if not train:
        return _with_memory(res, dev)

    while True:  # on CUDA, halve a training batch that does not fit and say so
        ts = None
        try:
            ts = make_train_step(cfg, info, dev, batch=b, views=views, amp=settings, compile=compile,
                                 augment=augment)
            sec, mm_rate = _measure(ts.step, seconds, dev, mm)
            break
        except Exception as exc:  # noqa: BLE001 - only CUDA OOM is handled
            if not is_oom(exc) or b < 4:
                raise
        del ts
        free_cuda(dev)
        res.oom_batch_sizes.append(b)
        b //= 2
    if res.oom_batch_sizes:
        res.notes.append(f"training batch {res.oom_batch_sizes[0]} does not fit on {dev} "
                         f"({', '.join(map(str, res.oom_batch_sizes))} ran out of memory); measured {b}")
    method = ts.method
    res.batch_size = b
    res.loss = ts.description
    res.compile_s = ts.compile_s
    res.train_params = sum(p.numel() for p in method.parameters())  # parameters() skips shared ones
    res.train_gflops_per_sample = 3 * views * (flops + _projector_flops(method, dev)) / 1e9
    res.train_samples_per_s = b / sec
    res.train_gflops_per_s = res.train_gflops_per_sample * b / sec
    res.train_tflops_per_s = res.train_gflops_per_s / 1e3
    res.train_efficiency = res.mfu = res.train_gflops_per_s / mm_rate
    res.matmul_gflops_per_s = mm.gflops()
    return _with_memory(res, dev)


def _with_memory(res: EncoderBench, dev: torch.device) -> EncoderBench:
    mem = peak_memory(dev)
    res.peak_rss_mib = mem.get("peak_rss_mib")
    res.cuda_max_allocated_mib = mem.get("cuda_max_allocated_mib")
    return res


def run(args: argparse.Namespace) -> int:
    from harness.errors import HarnessError
    from harness.registry import ENCODERS

    tuned = False if args.no_malloc_tuning else tune_malloc()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.encoders.split(",") if n.strip()]
    for n in names:
        ENCODERS.get(n)  # unknown names fail with suggestions
    if args.batch_size is not None and args.batch_size < 2:
        raise HarnessError("--batch-size must be at least 2 (the projectors' BatchNorm needs 2 samples)")
    if args.infer_batch_size is not None and args.infer_batch_size < 1:
        raise HarnessError("--infer-batch-size must be at least 1")
    if args.views < 2:
        raise HarnessError("--views must be at least 2")
    dev = _resolve_device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise HarnessError(f"--device {args.device}: CUDA is not available on this machine")
    settings = resolve_amp(args.amp, dev)
    if args.attention is not None:
        attention_impl(args.attention)
    size = args.matmul_size or (8192 if dev.type == "cuda" else 2048)
    mm = _Matmul(size, dev, args.clock, dtype=_AMP_DTYPES[settings.mode])
    results = []
    for n in names:
        results.append(bench_encoder(n, config=args.config, batch_size=args.batch_size,
                                     infer_batch_size=args.infer_batch_size, seconds=args.seconds,
                                     views=args.views, device=dev, matmul_size=size,
                                     train=not args.skip_train, mm=mm, amp=args.amp, compile=args.compile,
                                     augment=args.augment))
        results[-1].malloc_tuned = tuned
        if not args.json:
            _print_row(results[-1], header=len(results) == 1)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        print(f"\nefficiency = achieved GFLOP/s / {mm.dtype} {size}^2 matmul GFLOP/s in this process "
              f"({args.clock} clock, medians); training FLOPs = {TRAIN_FLOPS_CONVENTION}; "
              f"glibc malloc tuning {'on' if tuned else 'off'}")
        losses = {r.loss for r in results if r.loss}
        for desc in losses:
            print(f"training step: {desc}")
        for r in results:
            if r.compile_s is not None:
                print(f"{r.encoder}: compiling (first step) took {r.compile_s:.1f} s, not in the timing")
            for note in r.notes:
                print(f"{r.encoder}: {note}")
    return 0


def _print_row(r: EncoderBench, header: bool) -> None:
    if header:
        print(f"config {r.config}, device {r.device}, training batch {r.batch_size} clips x {r.views} views, "
              f"inference batch {r.infer_batch_size}, {r.threads} threads, {r.clock} clock")
        print(f"{'encoder':8} {'params':>12} {'GFLOPs/smp':>10} {'infer smp/s':>11} {'infer eff':>9} "
              f"{'train smp/s':>11} {'train eff':>9} {'matmul GF/s':>11} {'peak RSS MiB':>12} {'CUDA peak MiB':>13}")
    ts = f"{r.train_samples_per_s:11.2f}" if r.train_samples_per_s is not None else f"{'-':>11}"
    te = f"{r.train_efficiency:9.1%}" if r.train_efficiency is not None else f"{'-':>9}"
    rss = f"{r.peak_rss_mib:12.0f}" if r.peak_rss_mib is not None else f"{'-':>12}"
    cuda = f"{r.cuda_max_allocated_mib:13.0f}" if r.cuda_max_allocated_mib is not None else f"{'-':>13}"
    print(f"{r.encoder:8} {r.params:12,d} {r.gflops_per_sample:10.3f} {r.infer_samples_per_s:11.2f} "
          f"{r.infer_efficiency:9.1%} {ts} {te} {r.matmul_gflops_per_s:11.1f} {rss} {cuda}", flush=True)
