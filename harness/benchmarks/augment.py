"""Throughput of a method's batched views (default USDRL: 4 views, 64 frames) against the per-sample reference feeder.

The method is built through the registry (``--method``, ``--preset``, ``--set``) for NTU-like data
(25 joints, 2 persons) and its own ``make_views(x, lengths, generator)`` is timed, so the number
measures what training runs. Both sides run in this process on one thread
(``torch.set_num_threads(1)``, BLAS limited to one thread), on the same realistic raw NTU-like clips
(3, 300, 25, 2) with varied valid lengths. The batched side gets padded batches as ``ClipBatches``
yields them (frames up to the longest clip in the batch); the reference side times
``ReferenceFeeder.__getitem__`` (USDRL's per-sample feeder, making as many views as the method; it
copies the stored sample, as the reference does from its memory map), so the ratio compares like
with like for USDRL's recipe (usdrl, umurl) and is only indicative for other methods. Timed rounds
alternate between the two so that a noisy machine slows both alike; the reported ``speedup`` is the
wall-clock ratio measured in this one run, and ``cpu_*`` are the same per second of the thread's CPU
time (time.thread_time), which a busy machine disturbs less.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..config import DEFAULT_METHOD, PRESETS, load_config
from ..resolve import resolved
from ..contracts import DataInfo, Method, build_method
from ..data.topology import NTU25
from ..errors import HarnessError
from .reference_feeder import ReferenceFeeder

NUM_CLASSES = 60  # NTU-60-like labels: only methods that check the class count look at it


def make_clips(n: int, *, max_frames: int = 300, joints: int = 25, persons: int = 2, seed: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
    """Raw NTU-like clips (n, 3, max_frames, V, M) float32 and their valid lengths.

    Lengths follow NTU-60's shape (log-normal, median 75 frames, clipped to [32, max_frames]); a
    second person is present in 20 % of the clips (zero otherwise); joints move smoothly around a
    body-sized template (metres), and frames beyond the length are zero.
    """
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.round(rng.lognormal(np.log(75), 0.45, n)), 32, max_frames).astype(np.int64)
    t = np.arange(max_frames, dtype=np.float32)
    template = rng.normal(0, 0.35, (3, 1, joints, 1)).astype(np.float32)
    data = np.zeros((n, 3, max_frames, joints, persons), dtype=np.float32)
    for i in range(n):
        freq = rng.uniform(0.02, 0.15, (3, 1, joints, persons)).astype(np.float32)
        phase = rng.uniform(0, 2 * np.pi, (3, 1, joints, persons)).astype(np.float32)
        amp = rng.uniform(0.02, 0.2, (3, 1, joints, persons)).astype(np.float32)
        offset = rng.normal(0, 0.3, (3, 1, 1, persons)).astype(np.float32)
        offset[2] += 3.0  # about 3 m from the camera
        clip = template + offset + amp * np.sin(freq * t[None, :, None, None] + phase)
        clip[:, lengths[i]:] = 0
        if persons > 1 and rng.random() >= 0.2:
            clip[..., 1:] = 0
        data[i] = clip
    return data, lengths


def padded_batch(data: np.ndarray, lengths: np.ndarray, idx: np.ndarray, device: torch.device
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips ``idx`` as the loader gives them: frames up to the batch's longest clip."""
    t_b = int(lengths[idx].max())
    x = torch.from_numpy(np.ascontiguousarray(data[idx, :, :t_b])).to(device)
    return x, torch.from_numpy(lengths[idx]).to(device)


def build_views_method(name: str = DEFAULT_METHOD, preset: str = "paper", *, frames: int | None = None,
                       overrides: Sequence[str] = (), batch_size: int = 0, train_samples: int = 0,
                       device: torch.device | str = "cpu", seed: int = 0) -> Method:
    """The registered method ``name`` for NTU-like clips (25 joints, 2 persons), as training builds it:
    the preset, ``method.name=name``, ``data.frames`` (default the preset's) and ``overrides``."""
    sets = [f"method.name={name}", *([f"data.frames={frames}"] if frames is not None else []), *overrides]
    cfg = resolved(load_config(preset, overrides=sets))  # every plugin default filled in, as a run has it
    info = DataInfo(topology=NTU25, num_classes=NUM_CLASSES, frames=cfg.data.frames, persons=2,
                    train_samples=train_samples, batch_size=batch_size)
    torch.manual_seed(seed)  # the weights are never used; seeded only so that building is repeatable
    return build_method(cfg, info).to(torch.device(device))


@dataclass
class AugmentBench:
    method: str
    preset: str
    samples_per_s: float  # wall clock
    reference_samples_per_s: float
    speedup: float
    cpu_samples_per_s: float  # per second of this thread's CPU time (less sensitive to a busy machine)
    reference_cpu_samples_per_s: float
    cpu_speedup: float
    batch_size: int
    num_views: int
    frames: int
    threads: int
    device: str
    seconds: float
    batched_samples: int
    reference_samples: int
    batched_ms_per_batch_median: float
    torch: str
    numpy: str
    machine: str


@contextlib.contextmanager
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits  # NumPy's BLAS (the reference's np.dot)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        limiter = contextlib.nullcontext()
    else:
        limiter = threadpool_limits(1)
    try:
        with limiter:
            yield
    finally:
        torch.set_num_threads(old)


def run_bench(batch_size: int = 256, seconds: float = 6.0, *, method: str = DEFAULT_METHOD, preset: str = "paper",
              frames: int | None = None, overrides: Sequence[str] = (), device: str = "cpu",
              num_clips: int | None = None, seed: int = 0, round_s: float = 0.25) -> AugmentBench:
    """Alternate timed rounds of the method's batched views and the reference until ``seconds`` have passed."""
    dev = torch.device(device)
    if num_clips is None:  # a pool of distinct clips twice the batch (512 for the default batch)
        num_clips = max(2 * batch_size, 64)
    data, lengths = make_clips(max(num_clips, batch_size), joints=NTU25.num_joints, seed=seed)
    model = build_views_method(method, preset, frames=frames, overrides=overrides, batch_size=batch_size,
                               train_samples=len(data), device=dev, seed=seed)
    make_views: Callable[..., Any] = model.make_views
    frames = model.info.frames
    num_views = int(getattr(model, "num_views", 1))
    rng = np.random.default_rng(seed + 1)
    batches = [padded_batch(data, lengths, rng.choice(len(data), batch_size, replace=False), dev)
               for _ in range(4)]
    feeder = ReferenceFeeder(data, lengths, input_size=frames, num_views=num_views, seed=seed)
    gen = torch.Generator(device=dev).manual_seed(seed)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    with _one_thread():
        for x, ln in batches[:2]:  # warm-up (allocations, pool, lazy inits)
            make_views(x, ln, gen)
        for i in range(8):
            feeder[i]
        sync()
        b_time = r_time = b_cpu = r_cpu = 0.0
        b_samples = r_samples = 0
        batch_times: list[float] = []
        k = j = 0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or b_samples == 0 or r_samples == 0:
            t0, c0 = time.perf_counter(), time.thread_time()  # batched round
            while True:
                x, ln = batches[k % len(batches)]
                t1 = time.perf_counter()
                views = make_views(x, ln, gen)
                sync()
                batch_times.append(time.perf_counter() - t1)
                del views
                k += 1
                b_samples += batch_size
                if time.perf_counter() - t0 >= round_s:
                    break
            b_time += time.perf_counter() - t0
            b_cpu += time.thread_time() - c0
            t0, c0 = time.perf_counter(), time.thread_time()  # reference round
            while True:
                feeder[j % len(feeder)]
                j += 1
                r_samples += 1
                if time.perf_counter() - t0 >= round_s:
                    break
            r_time += time.perf_counter() - t0
            r_cpu += time.thread_time() - c0
    sps, rsps = b_samples / b_time, r_samples / r_time
    csps, crsps = b_samples / max(b_cpu, 1e-9), r_samples / max(r_cpu, 1e-9)
    return AugmentBench(
        method=method, preset=preset, samples_per_s=sps, reference_samples_per_s=rsps, speedup=sps / rsps,
        cpu_samples_per_s=csps, reference_cpu_samples_per_s=crsps, cpu_speedup=csps / crsps, batch_size=batch_size,
        num_views=num_views, frames=frames, threads=1, device=str(dev), seconds=seconds,
        batched_samples=b_samples, reference_samples=r_samples,
        batched_ms_per_batch_median=float(np.median(batch_times) * 1e3), torch=torch.__version__,
        numpy=np.__version__, machine=platform.processor() or platform.machine())


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--method", default=DEFAULT_METHOD,
                   help=f"registered method whose make_views is timed (default {DEFAULT_METHOD})")
    p.add_argument("--preset", default="paper", choices=list(PRESETS),
                   help="config preset the method is built with (default paper: 64 frames)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for the method, e.g. --set method.options.num_views=2")
    p.add_argument("--batch-size", type=int, default=256, help="clips per batched call (default 256)")
    p.add_argument("--seconds", type=float, default=6.0, help="total timed seconds, both sides (default 6)")
    p.add_argument("--frames", type=int, default=None, help="frames per view (default: the preset's data.frames)")
    p.add_argument("--device", default="cpu", help="device of the batched side (default cpu)")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1 or args.seconds <= 0 or (args.frames is not None and args.frames < 1):
        raise HarnessError("--batch-size and --frames must be ≥ 1 and --seconds > 0")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise HarnessError(f"--device {args.device}: CUDA is not available")
    res = run_bench(args.batch_size, args.seconds, method=args.method, preset=args.preset, frames=args.frames,
                    overrides=args.overrides, device=args.device, seed=args.seed)
    if args.json:
        print(json.dumps(asdict(res), indent=2))
    else:
        print(f"batched   {res.samples_per_s:10.0f} samples/s  ({res.method} make_views: {res.num_views} views × "
              f"{res.frames} frames, batch {res.batch_size}, {res.device}, 1 thread; "
              f"median {res.batched_ms_per_batch_median:.1f} ms/batch)")
        print(f"reference {res.reference_samples_per_s:10.0f} samples/s  (USDRL's per-sample NumPy feeder)")
        print(f"speedup   {res.speedup:10.1f}×   (per CPU second: {res.cpu_samples_per_s:.0f} vs "
              f"{res.reference_cpu_samples_per_s:.0f} samples/s, {res.cpu_speedup:.1f}×)")
    return 0
