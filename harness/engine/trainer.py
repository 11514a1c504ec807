"""The pretraining loop as one object: :class:`Trainer` (built by :func:`harness.engine.loop.pretrain`).

Budget: ``train.steps`` optimizer steps (or ``train.epochs`` passes over the training split when
``steps`` is 0); one epoch is one pass over ``data.split``/train (capped by
``data.max_train_samples`` and ``train.max_steps_per_epoch``); the last epoch stops when the budget
is spent. Each step reads a batch of raw clips, lets the method make its views on the training
device with a step generator that depends only on (seed, epoch, step, rank), runs the method under
autocast and steps the optimizer. The learning rate follows a timm scheduler updated before every
step (:mod:`harness.engine.schedule`: step decay or cosine, warm-up, times as fractions of the budget).

Loss values are read back to the host only every ``train.log_every`` steps on a GPU (every step on
the CPU, where reading is free), and checked there: a NaN/Inf stops the run before any checkpoint
is written from the bad weights.

Determinism: everything is seeded from ``train.seed`` (Python, NumPy, torch), the data order from
(seed, epoch), the augmentations from the step generator, and checkpoints carry every RNG state, so
an interrupted run resumed from ``last.pt`` ends with the same weights as an uninterrupted one (on
the same device and software).
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .. import atomic
from ..config import to_yaml
from ..resolve import ResolvedConfig
from ..contracts import DataInfo, Method, build_method
from ..data.prepared.format import PreparedDataset
from ..errors import HarnessError
from . import checkpoint as ck
from . import cost as cost_
from . import distributed as dd
from .amp import AmpSettings
from .logging import MetricsLog, fmt_terms, progress_bar
from .memory import peak_memory
from .optim import build_optimizer
from .runs import (RunInfo, checkpoint_dir, clear_run, now, numbered_checkpoint, numbered_checkpoints, resume_source,
                   write_run_json)
from .schedule import make_scheduler, train_budget

LAST_EVERY_S = 600.0  # also refresh last.pt at an epoch end when the last save is older than this

StepHook = Callable[[int, int, dict[str, float]], None]  # (epoch 1-based, global step, terms)
EpochHook = Callable[[int, dict[str, Any]], None]  # (completed epochs, epoch record)
StartHook = Callable[[Any], None]  # (the built method, resumed state loaded), before the first epoch


class NonFiniteLossError(HarnessError):
    """A loss term became NaN or Inf; the run stops before a checkpoint is written from it."""

    def __init__(self, epoch: int, step: int, terms: dict[str, float], last_checkpoint: Path | None):
        self.epoch, self.step, self.terms = epoch, step, terms
        bad = ", ".join(f"{k}={v}" for k, v in terms.items() if not math.isfinite(v))
        keep = (f"; the last good checkpoint {last_checkpoint} is untouched" if last_checkpoint
                else "; no checkpoint had been written yet")
        super().__init__(f"non-finite loss at epoch {epoch}, step {step} (global): {bad}{keep}. "
                         f"Try a lower train.lr or train.amp=off.")


def scalar_terms(out: Any, method_name: str) -> dict[str, torch.Tensor]:
    """The method's output dict → its scalar terms (detached, on the device; no host sync)."""
    if not isinstance(out, dict) or "loss" not in out:
        raise HarnessError(f"method {method_name!r}: forward must return a dict with a 'loss' entry, "
                           f"got {type(out).__name__}")
    loss = out["loss"]
    if not torch.is_tensor(loss) or loss.numel() != 1 or not loss.requires_grad:
        raise HarnessError(f"method {method_name!r}: 'loss' must be a scalar tensor that requires grad")
    terms = {"loss": loss.detach().reshape(()).float()}
    for k, v in out.items():
        if k == "loss":
            continue
        if torch.is_tensor(v) and v.numel() == 1:
            terms[k] = v.detach().reshape(()).float()
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            terms[k] = torch.tensor(float(v), device=loss.device)
    return terms


class _Window:
    """Running sums of the loss terms on the device, read back to the host on demand."""

    def __init__(self) -> None:
        self.names: list[str] | None = None
        self.sum: torch.Tensor | None = None
        self.steps = self.samples = 0
        self.t0 = time.perf_counter()

    def add(self, terms: dict[str, torch.Tensor], samples: int) -> torch.Tensor:
        if self.names is None:
            self.names = list(terms)
        vec = torch.stack([terms[k] for k in self.names])
        self.sum = vec.clone() if self.sum is None else self.sum + vec
        self.steps += 1
        self.samples += samples
        return vec

    def means(self) -> dict[str, float]:
        if self.sum is None or not self.steps:
            return {}
        return dict(zip(self.names or [], (self.sum / self.steps).tolist()))


class Trainer:
    """Pretrains ``cfg.method`` on an opened dataset and exports its backbone (see the module docstring)."""

    def __init__(self, cfg: ResolvedConfig, ds: PreparedDataset, indices: np.ndarray, run_dir: Path,
                 env: dd.DistEnv, device: torch.device, amp: AmpSettings):
        if not isinstance(cfg, ResolvedConfig):  # the run's hashes and files need the resolved form
            raise TypeError("Trainer takes a ResolvedConfig (harness.resolve.resolved(cfg))")
        self.cfg, self.ds, self.indices, self.run_dir = cfg, ds, indices, run_dir
        self.env, self.device, self.amp = env, device, amp
        t = cfg.train
        self.loader = dd.ShardedBatches(ds, indices, t.batch_size, rank=env.rank, world_size=env.world_size,
                                        shuffle=True, seed=t.seed, device=device)
        self.steps_per_epoch, self.total_steps, self.epochs = train_budget(t, len(self.loader))
        self.info = DataInfo(topology=ds.topology, num_classes=ds.num_classes, frames=cfg.data.frames,
                             persons=ds.num_persons, train_samples=int(len(indices)), batch_size=t.batch_size,
                             total_steps=self.total_steps)
        ck.seed_everything(t.seed)
        self.method: Method = build_method(cfg, self.info).to(device)
        self.run = RunInfo(run_dir=run_dir, method=cfg.method.name, pretrain_hash=cfg.pretrain_hash,
                           config_hash=cfg.config_hash)
        self.extra = {"device": str(device), "world_size": env.world_size, "amp": amp.mode,
                      "torch": torch.__version__, "dataset": str(ds.root), "dataset_fingerprint": ds.fingerprint,
                      "train_samples": int(len(indices)), "total_steps": self.total_steps,
                      "epochs_planned": self.epochs, "derived": self.method.derived_settings()}
        # read losses back every step on the CPU (free), every log interval on a GPU (a host sync)
        self.read_every = 1 if device.type == "cpu" else max(t.log_every, 1)
        # what the run costs (run.json "cost", harness.engine.cost): parameters now, FLOPs on the first batch
        self.params = cost_.parameter_counts(self.method)
        self.flops: dict[str, Any] | None = None if self.method.pretrains else cost_.no_training_flops()
        self.clips = 0  # training clips read, all processes and sessions together

    # --- the whole run -------------------------------------------------------------------------
    def run_all(self, resume: str | os.PathLike, progress: bool, on_step_end: StepHook | None,
                on_epoch_end: EpochHook | None, on_start: StartHook | None) -> RunInfo:
        cfg, env, run = self.cfg, self.env, self.run
        if env.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic.write_text(self.run_dir / "config.yaml", to_yaml(cfg))
        self._reset_cuda_peak()  # the recorded CUDA peak is this run's, not an earlier one's in this process
        if not self.method.pretrains:  # e.g. the random-init floor: export only
            return self._finish(epochs=0, global_step=0)
        self.optimizer = build_optimizer(cfg, self.method, self.device)
        self.scheduler = make_scheduler(self.optimizer, total_steps=self.total_steps, schedule=cfg.train.schedule,
                                        milestones=cfg.train.milestones, gamma=cfg.train.gamma,
                                        warmup=cfg.train.warmup, min_lr=cfg.train.min_lr)
        self.scaler = self.amp.grad_scaler()
        start_epoch, global_step, train_s, metrics = self._resume(resume)
        model = self._wrap()
        log = MetricsLog(self.run_dir, enabled=env.is_main)
        if start_epoch or global_step:
            log.truncate_after(start_epoch, global_step)
        else:
            log.reset()
        run.epochs, run.global_step, run.metrics, run.train_s = start_epoch, global_step, metrics, train_s
        last_pt = checkpoint_dir(self.run_dir) / "last.pt"
        if env.is_main:
            run.checkpoint = last_pt if last_pt.exists() else None
            write_run_json(run, self.extra | {"started_at": now()})
        last_save = time.monotonic()
        try:
            if on_start is not None:
                on_start(self.method)
            for epoch in range(start_epoch, self.epochs):
                record = self.run_epoch(model, epoch, global_step, log, progress, on_step_end)
                global_step = record["step"]
                train_s += record.pop("_train_s")
                self.clips += record.pop("_clips")
                run.epochs, run.global_step, run.metrics, run.train_s = epoch + 1, global_step, record, train_s
                log.write(record)
                if progress and env.is_main:
                    _epoch_line(record, self.epochs)
                done = epoch + 1
                every = cfg.train.checkpoint_every
                numbered = done == self.epochs or (every > 0 and done % every == 0)
                if numbered or time.monotonic() - last_save > LAST_EVERY_S:
                    self._save(done, global_step, train_s, record, numbered)
                    last_save = time.monotonic()
                    if env.is_main:
                        run.checkpoint = last_pt
                        write_run_json(run, self.extra)
                if on_epoch_end is not None:
                    on_epoch_end(done, record)
        except BaseException as exc:
            run.status = "failed"
            run.error = f"{type(exc).__name__}: {exc}"
            if env.is_main:
                write_run_json(run, self.extra)
            log.close()
            raise
        log.close()
        run.checkpoint = last_pt if last_pt.exists() else None
        return self._finish(epochs=run.epochs, global_step=global_step)

    def _finish(self, *, epochs: int, global_step: int) -> RunInfo:
        run = self.run
        if self.env.is_main:
            peak = peak_memory(self.device)
            cost = cost_.run_cost(hardware_info=cost_.hardware(self.device, self.env.world_size), wall_s=run.train_s,
                                  steps=global_step, clips=self.clips, params=self.params, flops=self.flops,
                                  peak=peak, pretrain_hash=self.cfg.pretrain_hash,
                                  pretrain_config=cost_.pretrain_config_hash(self.cfg))
            run.backbone = ck.export_backbone(self.method, self.cfg, self.run_dir / "backbone.pt", epochs=epochs,
                                              global_step=global_step)
            run.checkpoints = numbered_checkpoints(self.run_dir)
            run.status = "finished"
            write_run_json(run, self.extra | {"finished_at": now(), **peak, "cost": cost})
        dd.barrier()
        return run

    def _reset_cuda_peak(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def _count_flops(self, batch: Any, epoch: int, global_step: int) -> float:
        """Count one training step's FLOPs on this batch (``self.flops``); returns the seconds it took."""
        gen = ck.step_generator(self.cfg.train.seed, epoch, global_step, self.env.rank, self.device)
        self.flops = cost_.training_step_flops(self.method, batch.x, batch.lengths, batch.labels, gen,
                                               self.amp.autocast)
        self._reset_cuda_peak()  # the method's copy is gone: the peak recorded is the training steps'
        return float(self.flops["count_s"])

    def _wrap(self) -> torch.nn.Module:
        model: torch.nn.Module = self.method
        if self.env.enabled:
            model = torch.nn.parallel.DistributedDataParallel(
                self.method, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=bool(getattr(self.method, "ddp_find_unused_parameters", False)))
        if self.cfg.train.compile:
            model = torch.compile(model, backend=os.environ.get("HARNESS_COMPILE_BACKEND", "inductor"))
        return model

    # --- resume --------------------------------------------------------------------------------
    def _resume(self, resume: str | os.PathLike) -> tuple[int, int, float, dict[str, Any]]:
        state = None
        if self.env.is_main:
            src = resume_source(resume, self.run_dir)
            if src is not None:
                state = ck.load_checkpoint(src)  # every key a resume reads, checked
                ck.check_same_run(state, self.cfg, src)
                self.run.resumed_from = str(src)
            elif str(resume) == "never":
                clear_run(self.run_dir)
        state = dd.broadcast_object(state)
        if state is None:
            if self.env.rank > 0:
                ck.seed_everything(self.cfg.train.seed + self.env.rank)  # distinct dropout masks per process
            self.clips = 0
            return 0, 0, 0.0, {}
        self.method.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        rngs = state["rng"]
        epoch, step = int(state["epoch"]), int(state["global_step"])
        if len(rngs) == self.env.world_size:
            ck.set_rng_state(rngs[self.env.rank])
        else:  # a different number of processes: continue, but not bit-exactly
            ck.seed_everything(self.cfg.train.seed + 1000 * epoch + self.env.rank)
        self.run.resumed_from = self.run.resumed_from or "checkpoint"
        # checkpoints older than the cost record hold no clip count: the nominal one of their steps
        self.clips = int(state.get("train_clips", step * self.cfg.train.batch_size * self.env.world_size))
        return epoch, step, float(state.get("train_s", 0.0)), dict(state.get("metrics", {}))

    # --- one epoch -----------------------------------------------------------------------------
    def run_epoch(self, model: torch.nn.Module, epoch: int, global_step: int, log: MetricsLog, progress: bool,
                  on_step_end: StepHook | None) -> dict[str, Any]:
        cfg, env, method = self.cfg, self.env, self.method
        t = cfg.train
        steps = min(self.steps_per_epoch, self.total_steps - global_step)
        self.loader.set_epoch(epoch)
        model.train()
        bar = progress_bar(steps, f"epoch {epoch + 1}/{self.epochs}", progress and env.is_main)
        epoch_win, log_win, check_win = _Window(), _Window(), _Window()
        first_lr = None
        for i, batch in enumerate(self.loader):
            if i >= steps:
                break
            self.scheduler.step_update(global_step)
            lr = self.optimizer.param_groups[0]["lr"]
            first_lr = lr if first_lr is None else first_lr
            if self.flops is None:  # once per session, on its first batch; its time is not training time
                spent = self._count_flops(batch, epoch, global_step)
                for win in (epoch_win, log_win, check_win):
                    win.t0 += spent
            gen = ck.step_generator(t.seed, epoch, global_step, env.rank, self.device)
            views = method.make_views(batch.x, batch.lengths, gen)
            with self.amp.autocast():
                out = model(views, batch.labels if method.needs_labels else None)
            terms = scalar_terms(out, cfg.method.name)
            if env.enabled:
                vec = dd.all_reduce_sum(torch.stack(list(terms.values()))) / env.world_size
                terms = dict(zip(terms, vec.unbind(0)))
            samples = int(batch.x.shape[0]) * env.world_size
            for win in (epoch_win, log_win, check_win):
                win.add(terms, samples)
            if check_win.steps >= self.read_every:
                self._check(check_win, epoch, global_step + 1)
                check_win = _Window()
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(out["loss"]).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            method.after_step()
            global_step += 1
            if t.log_every > 0 and global_step % t.log_every == 0:
                now_t = time.perf_counter()
                log.write({"kind": "step", "epoch": epoch + 1, "step": global_step, **log_win.means(), "lr": lr,
                           "samples_per_s": log_win.samples / max(now_t - log_win.t0, 1e-9)})
                if bar is not None:
                    shown = {k: v for k, v in log_win.means().items() if "_" not in k}  # not per-domain parts
                    bar.set_postfix(fmt_terms(shown, epoch_win.samples / max(now_t - epoch_win.t0, 1e-9)))
                log_win = _Window()
            if bar is not None:
                bar.update(1)
            if on_step_end is not None:
                on_step_end(epoch + 1, global_step, {k: float(v) for k, v in terms.items()})
        self._check(check_win, epoch, global_step)
        if bar is not None:
            bar.close()
        elapsed = time.perf_counter() - epoch_win.t0
        if epoch_win.steps == 0:
            raise HarnessError(f"epoch {epoch + 1} had no training steps")
        return {"kind": "epoch", "epoch": epoch + 1, "step": global_step, **epoch_win.means(), "lr": first_lr,
                "samples_per_s": epoch_win.samples / max(elapsed, 1e-9), "time_s": elapsed,
                "steps": epoch_win.steps, "_train_s": elapsed, "_clips": epoch_win.samples}

    def _check(self, win: _Window, epoch: int, step: int) -> None:
        """Read the window's losses back (one host sync) and stop on a NaN/Inf."""
        if win.sum is None:
            return
        values = win.means()
        if not all(math.isfinite(v) for v in values.values()):
            raise NonFiniteLossError(epoch + 1, step, values, self.run.checkpoint)

    # --- checkpoints ---------------------------------------------------------------------------
    def _save(self, epoch: int, global_step: int, train_s: float, record: dict[str, Any], numbered: bool) -> None:
        rngs = dd.all_gather_object(ck.rng_state())  # every rank's RNG, so a resume is exact
        if self.env.is_main:
            state = {
                "format": ck.CKPT_FORMAT, "version": ck.VERSION, "pretrain_hash": self.cfg.pretrain_hash,
                "config": self.cfg.to_dict(), "epoch": epoch, "global_step": global_step,
                "train_s": train_s, "train_clips": self.clips, "model": self.method.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "rng": rngs,
                "metrics": {k: v for k, v in record.items() if not k.startswith("_")},
            }
            last = checkpoint_dir(self.run_dir) / "last.pt"
            if numbered:
                path = ck.save(state, numbered_checkpoint(self.run_dir, epoch))
                ck.link_or_copy(path, last)
            else:
                ck.save(state, last)
        dd.barrier()


def _epoch_line(record: dict[str, Any], epochs: int) -> None:
    terms = " ".join(f"{k} {v:.4g}" for k, v in record.items()
                     if k not in ("kind", "epoch", "step", "lr", "samples_per_s", "time_s", "steps")
                     and "_" not in k and isinstance(v, float))
    print(f"epoch {record['epoch']}/{epochs}: {terms}, lr {record['lr']:.3g}, "
          f"{record['samples_per_s']:.0f} samples/s, {record['time_s']:.1f} s", file=sys.stderr, flush=True)
