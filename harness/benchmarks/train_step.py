"""The timed USDRL training step of ``harness bench encoder``, built the way the Trainer runs one.

One step (:mod:`harness.engine.trainer`, ``Trainer.run_epoch``): optionally the method's own
``make_views`` on raw clips (``augment``: the batched augmentation on the training device, outside
autocast), ``zero_grad``, the method's forward under the run's autocast (``train.amp``: bf16 on a
CUDA device that has it, fp16 with a ``GradScaler``, or off), the scaled backward, the optimizer
step through the scaler. ``compile`` wraps the method in ``torch.compile`` with the backend the
Trainer uses for ``train.compile=true`` (``HARNESS_COMPILE_BACKEND``, default inductor); the first
call, which compiles the forward and backward graphs, is timed apart (``compile_s``) and is never
part of the measured steps. Nothing in the step reads a value back to the host.

The optimizer is Adam (lr 5e-4, coupled weight decay 1e-5, the reference's), fused where torch has
a fused kernel for the device (CUDA; recent CPU builds too).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..contracts import DataInfo, Method, build_method
from ..engine.amp import AmpSettings

__all__ = ["TrainStep", "make_train_step", "is_oom", "free_cuda"]

RAW_FRAMES = 300  # raw clip length of NTU-style data when the step augments (--augment)


@dataclass
class TrainStep:
    step: Callable[[], None]
    method: Method
    compile_s: float | None
    description: str


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _adam(method: torch.nn.Module) -> torch.optim.Optimizer:
    kw: dict[str, Any] = {"lr": 5e-4, "weight_decay": 1e-5}
    try:
        return torch.optim.Adam(method.parameters(), fused=True, **kw)
    except (RuntimeError, TypeError):  # no fused kernel for this device / build
        return torch.optim.Adam(method.parameters(), **kw)


def raw_clips(batch: int, info: DataInfo, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """NTU-like raw clips (B, 3, 300, V, M) and valid lengths, on ``device`` (for ``augment``)."""
    from .augment import make_clips

    clips, lengths = make_clips(batch, max_frames=RAW_FRAMES, joints=info.joints, persons=info.persons, seed=seed)
    return torch.from_numpy(clips).to(device), torch.from_numpy(np.asarray(lengths)).to(device)


def make_train_step(cfg: Any, info: DataInfo, device: torch.device, *, batch: int, views: int,
                    amp: AmpSettings, compile: bool = False, augment: bool = False,
                    seed: int = 0) -> TrainStep:
    """The step closure, on fixed inputs (pre-made views, or raw clips when ``augment``)."""
    method = build_method(cfg, info).to(device)
    method.train()
    opt = _adam(method)
    scaler = amp.grad_scaler()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    if augment:
        raw, lengths = raw_clips(batch, info, device, seed)
        view_gen = torch.Generator(device=device).manual_seed(seed)
        vs = None
    else:
        shape = (batch, 3, info.frames, info.joints, info.persons)
        vs = [torch.randn(shape, generator=gen).to(device) for _ in range(views)]
    model: Callable[..., Any] = method
    if compile:  # the call Trainer._wrap makes for train.compile=true
        model = torch.compile(method, backend=os.environ.get("HARNESS_COMPILE_BACKEND", "inductor"))

    def step() -> None:
        v = method.make_views(raw, lengths, view_gen) if augment else vs
        opt.zero_grad(set_to_none=True)
        with amp.autocast():
            out = model(v)
        scaler.scale(out["loss"]).backward()
        scaler.step(opt)
        scaler.update()

    compile_s = None
    if compile:
        t0 = time.perf_counter()
        step()
        _sync(device)
        compile_s = time.perf_counter() - t0
    parts = ["usdrl method (harness.methods.usdrl, multi-grained loss)", f"amp {amp.mode}"]
    if compile:
        parts.append("torch.compile")
    if augment:
        parts.append("views made in the step")
    return TrainStep(step, method, compile_s, ", ".join(parts))


def is_oom(exc: BaseException) -> bool:
    """A CUDA out-of-memory error (torch raises ``torch.OutOfMemoryError``; older builds a RuntimeError)."""
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc)


def free_cuda(device: torch.device) -> None:
    """Give cached blocks back after an OOM and restart the peak counter for the next attempt."""
    if device.type == "cuda":
        import gc

        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
