"""What a pretraining cost: the ``cost`` object of ``run.json`` and the compact ``extra.cost`` of its rows.

The :class:`~harness.engine.trainer.Trainer` measures it on the hardware the run trains on and writes
it into ``run.json`` when the run finishes (:func:`run_cost`); every row a protocol measures on the
run's backbone carries it in ``extra.cost`` (:func:`row_cost`, compact keys), so Table 7
(:mod:`harness.tables.cost_table`) is built from the results store alone.

``run.json`` ``cost``:

- ``hardware``: ``device`` (``cuda``, ``cpu``, ...), ``name`` (``torch.cuda.get_device_name``, or the
  CPU model from ``/proc/cpuinfo``, else ``platform.processor()`` / ``platform.machine()``),
  ``threads`` (``torch.get_num_threads()`` of the training process), ``world_size`` (processes),
  ``devices`` and ``unit``: on CUDA one GPU per process (``devices`` = world size, unit ``GPU``); on
  the CPU the torch threads are the devices (``devices`` = threads × world size, unit ``CPU thread``).
- ``wall_s``: wall-clock seconds of the training loop over all sessions of the run
  (``RunInfo.train_s``): per epoch, from its first batch read to its last optimizer step (batch reads,
  views, forward, backward, optimizer steps, metric logging; the first steps' warm-up and, with
  ``train.compile``, the compilation). Not included: opening or preparing the dataset, building the
  method, the FLOP count below, checkpoint writes, the backbone export, evaluation. A session killed
  in the middle of an epoch adds nothing for that epoch (the resumed run trains it again).
- ``device_hours``: ``wall_s × devices / 3600`` in ``device_hour_unit``: ``GPU-hours`` on CUDA,
  ``CPU-thread-hours`` on the CPU (a CPU-thread-hour is not a GPU-hour: compare like with like).
- ``steps`` (optimizer steps), ``clips`` (training clips the steps read, all processes together),
  ``clips_per_s`` (``clips / wall_s``).
- ``params``: ``method`` (trainable parameters of the method: the encoder, projectors, predictors,
  heads; a momentum copy or another frozen part not), ``method_all`` (every parameter) and
  ``backbone`` (the exported backbone the protocols evaluate).
- ``flops``: ``train_per_clip`` (one training step, ``Method.forward`` and its backward, per clip),
  ``forward_per_clip``, ``batch`` (the clips of the counted batch), ``count_s`` (how long the count
  took), ``convention``; or ``error`` when the count failed (the run goes on).
  Counted once per session, on the session's first training batch (the training batch size), on a copy
  of the method (its buffers, queues and counters untouched) with every RNG state restored after, so
  the run trains exactly as without the count. ``torch.utils.flop_counter.FlopCounterMode``
  (:func:`harness.benchmarks.flops.flop_counter`): matrix multiplications, convolutions and attention
  at 2 FLOPs per multiply-accumulate; the backward as autograd runs it; norms, activations,
  element-wise ops, the views (augmentation), the optimizer step and, under DDP, communication are not
  counted. Under DDP it is rank 0's batch (a loss over the gathered batch counts its whole size).
- ``peak_memory``: ``peak_rss_mib`` (the process's peak resident set so far: it never goes down and
  covers dataset preparation and earlier runs of the same process) and, on CUDA,
  ``cuda_max_allocated_mib`` (peak tensor allocations of the training steps: the trainer resets the
  counter when training starts and after the FLOP count).
- ``pretrain_hash`` and ``pretrain_config``: the run, and its configuration without the pretraining
  seed (Table 7 groups a method's pretraining seeds by it).

A method that does not pretrain (``random``) records zero training cost and its parameters.
"""

from __future__ import annotations

import copy
import platform
import time
from functools import lru_cache
from typing import Any, Callable

import torch

FLOP_CONVENTION = ("torch.utils.flop_counter.FlopCounterMode on the first training batch: Method.forward + "
                   "backward, 2 FLOPs per multiply-accumulate of matmuls, convolutions and attention; views, "
                   "optimizer, norms and element-wise ops not counted")

# run.json cost → the compact keys every result row carries in extra.cost
ROW_KEYS = {
    "hw": "hardware.name", "dev": "hardware.device", "n": "hardware.devices", "unit": "hardware.unit",
    "threads": "hardware.threads", "world": "hardware.world_size", "wall_s": "wall_s", "dev_h": "device_hours",
    "steps": "steps", "clips": "clips", "clips_s": "clips_per_s", "params": "params.method",
    "bb_params": "params.backbone", "flops": "flops.train_per_clip", "fwd_flops": "flops.forward_per_clip",
    "rss_mib": "peak_memory.peak_rss_mib", "gpu_mib": "peak_memory.cuda_max_allocated_mib",
    "ph": "pretrain_hash", "pcfg": "pretrain_config",
}


@lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo`` "model name"), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def hardware(device: torch.device, world_size: int = 1) -> dict[str, Any]:
    """The device the run trains on, and how many devices device-hours count (see the module doc)."""
    threads = torch.get_num_threads()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        devices, unit = world_size, "GPU"
    elif device.type == "cpu":
        name = cpu_name()
        devices, unit = threads * world_size, "CPU thread"
    else:
        name = device.type
        devices, unit = world_size, device.type
    return {"device": device.type, "name": name, "devices": int(devices), "unit": unit, "threads": int(threads),
            "world_size": int(world_size)}


def device_hour_unit(unit: str) -> str:
    return {"GPU": "GPU-hours", "CPU thread": "CPU-thread-hours"}.get(unit, f"{unit}-hours")


def parameter_counts(method: torch.nn.Module) -> dict[str, int]:
    """Trainable and all parameters of the method, and the parameters of its exported backbone."""
    backbone = method.backbone()  # type: ignore[operator]
    return {"method": sum(p.numel() for p in method.parameters() if p.requires_grad),
            "method_all": sum(p.numel() for p in method.parameters()),
            "backbone": sum(p.numel() for p in backbone.parameters())}


def training_step_flops(method: Any, x: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor | None,
                        generator: torch.Generator, autocast: Callable[[], Any]) -> dict[str, Any]:
    """FLOPs of one training step on this batch, per clip (see the module doc), with ``count_s``.

    Runs on a deep copy of ``method`` and restores the Python, NumPy and torch RNG states afterwards,
    so the training that follows is the one it would have been. A failure is recorded, never raised."""
    from ..benchmarks.flops import flop_counter
    from . import checkpoint as ck

    t0 = time.perf_counter()
    state = ck.rng_state()
    out: dict[str, Any] = {"batch": int(x.shape[0]), "convention": FLOP_CONVENTION}
    try:
        twin = copy.deepcopy(method)
        twin.train()
        views = twin.make_views(x, lengths, generator)  # outside the counter: the views are not counted
        with flop_counter() as counter:
            with autocast():
                res = twin(views, labels if getattr(twin, "needs_labels", False) else None)
            forward = counter.get_total_flops()
            res["loss"].backward()
            total = counter.get_total_flops()
        out["forward_per_clip"] = forward / max(out["batch"], 1)
        out["train_per_clip"] = total / max(out["batch"], 1)
        del twin, views, res
    except Exception as exc:  # noqa: BLE001 - the cost record must never stop a run
        out["error"] = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        ck.set_rng_state(state)
    out["count_s"] = round(time.perf_counter() - t0, 4)
    return out


def no_training_flops() -> dict[str, Any]:
    """The ``flops`` of a method that does not pretrain: no training step."""
    return {"train_per_clip": 0, "forward_per_clip": 0, "batch": 0, "count_s": 0.0, "convention": FLOP_CONVENTION}


def run_cost(*, hardware_info: dict[str, Any], wall_s: float, steps: int, clips: int, params: dict[str, int],
             flops: dict[str, Any] | None, peak: dict[str, Any], pretrain_hash: str,
             pretrain_config: str) -> dict[str, Any]:
    """The ``cost`` object of ``run.json`` (see the module doc)."""
    wall_s = float(wall_s)
    return {
        "hardware": hardware_info,
        "wall_s": round(wall_s, 3),
        "device_hours": float(f"{wall_s * hardware_info['devices'] / 3600.0:.4g}"),
        "device_hour_unit": device_hour_unit(hardware_info["unit"]),
        "steps": int(steps),
        "clips": int(clips),
        "clips_per_s": round(clips / wall_s, 3) if wall_s > 0 else 0.0,
        "params": params,
        "flops": flops if flops is not None else {"error": "not counted (no training step ran in this session)"},
        "peak_memory": peak,
        "pretrain_hash": pretrain_hash,
        "pretrain_config": pretrain_config,
    }


def _get(d: dict[str, Any], dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def row_cost(cost: dict[str, Any] | None) -> dict[str, Any] | None:
    """``run.json``'s ``cost`` in the compact keys of ``extra.cost`` (:data:`ROW_KEYS`); None without one."""
    if not isinstance(cost, dict):
        return None
    out = {}
    for short, dotted in ROW_KEYS.items():
        v = _get(cost, dotted)
        if v is None:
            continue
        if short in ("flops", "fwd_flops"):
            v = int(round(float(v)))
        out[short] = v
    return out


def pretrain_config_hash(cfg: Any) -> str:
    """The pretraining configuration without its seed (``ResolvedConfig.pretrain_dict`` less
    ``train.seed``): the pretraining seeds of one configuration share it."""
    from ..config import stable_hash

    d = cfg.pretrain_dict()
    d["train"].pop("seed", None)
    return stable_hash(d)
