"""The pretraining loop: ``pretrain(cfg) → RunInfo`` and ``find_or_pretrain(cfg)``.

One epoch = one pass over the training split (``data.split``/train, capped by
``data.max_train_samples`` and ``train.max_steps_per_epoch``). Each step reads a batch of raw
clips, lets the method make its views on the training device with a step generator that depends
only on (seed, epoch, step, rank), runs the method under autocast, and steps Adam/AdamW/SGD. The
learning rate follows MultiStepLR(milestones, gamma), stepped once per epoch (milestones are
0-based epoch indices: ``[351]`` means epochs 351… use lr·gamma).

Determinism: everything is seeded from ``train.seed`` (Python, NumPy, torch), the data order
from (seed, epoch), the augmentations from the step generator, and checkpoints carry every RNG
state, so an interrupted run resumed from ``last.pt`` ends with the same weights as an
uninterrupted one (on the same device and software).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..config import RunConfig, to_yaml
from ..data.kinds import resolve_dataset
from ..data.prepared import PreparedDataset
from ..errors import HarnessError, UnknownNameError
from . import checkpoint as ck
from . import distributed as dd
from .amp import resolve_amp
from .logging import MetricsLog, fmt_terms, progress_bar
from .runs import (RunInfo, checkpoint_dir, finished_run, numbered_checkpoint, numbered_checkpoints,
                   recorded_fingerprint, retire_stale_run, run_dir_for, run_lock, write_run_json)

OPTIMIZERS = ("adam", "adamw", "sgd")
LAST_EVERY_S = 600.0  # also refresh last.pt at an epoch end when the last save is older than this

StepHook = Callable[[int, int, dict[str, float]], None]  # (epoch 1-based, global step, terms)
EpochHook = Callable[[int, dict[str, Any]], None]  # (completed epochs, epoch record)
StartHook = Callable[[Any], None]  # (the built method, resumed state loaded), before the first epoch


class NonFiniteLossError(HarnessError):
    """A loss term became NaN or Inf; the run stops before the bad step is applied."""

    def __init__(self, epoch: int, step: int, terms: dict[str, float], run_dir: Path | None,
                 last_checkpoint: Path | None):
        self.epoch, self.step, self.terms = epoch, step, terms
        bad = ", ".join(f"{k}={v}" for k, v in terms.items() if not math.isfinite(v))
        keep = (f"; the last good checkpoint {last_checkpoint} is untouched" if last_checkpoint
                else "; no checkpoint had been written yet")
        super().__init__(f"non-finite loss at epoch {epoch}, step {step} (global): {bad}{keep}. "
                         f"Try a lower train.lr or train.amp=off.")


# --- pieces ----------------------------------------------------------------------------------
def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    spec = (spec or "auto").strip()
    if spec == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise HarnessError(f"train.device={spec} but CUDA is not available; use train.device=cpu or auto")
        dev = torch.device(spec if ":" in spec else f"cuda:{local_rank}")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise HarnessError(f"train.device={spec}: only {torch.cuda.device_count()} CUDA device(s)")
        return dev
    raise HarnessError(f"train.device={spec!r}: expected auto, cpu, cuda or cuda:N")


def build_optimizer(cfg: RunConfig, params) -> torch.optim.Optimizer:
    t = cfg.train
    params = [p for p in params if p.requires_grad]
    if not params:
        raise HarnessError(f"method {cfg.method.name!r} has no trainable parameters")
    if t.optimizer == "adam":  # weight decay as a coupled L2 penalty (the reference)
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=0.9, weight_decay=t.weight_decay)
    raise UnknownNameError("optimizer", t.optimizer, list(OPTIMIZERS))


def split_holdout(ds: PreparedDataset, idx: np.ndarray, spec: Any) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out): a seeded, class-stratified hold-out of ``idx`` (``data.options.holdout``).

    ``spec`` is ``{"fraction": f, "seed": s}``: from every class of ``idx`` (by label, in class
    order) round(f·n) samples, at most n − 1, are held out with NumPy's generator seeded by
    (s, 11). Both parts come back sorted. ``harness tune`` pretrains on the kept part and scores
    kNN on the held-out one, so tuning never sees the test split.
    """
    if not isinstance(spec, dict) or set(spec) - {"fraction", "seed"} or "fraction" not in spec:
        raise HarnessError(f"data.options.holdout must be a mapping {{fraction: F, seed: S}}, got {spec!r}")
    fraction, seed = float(spec["fraction"]), int(spec.get("seed", 0))
    if not 0.0 < fraction < 1.0:
        raise HarnessError(f"data.options.holdout.fraction must lie in (0, 1), got {fraction}")
    idx = np.asarray(idx, dtype=np.int64)
    labels = ds.samples["label"].to_numpy()[idx]
    rng = np.random.default_rng([seed, 11])
    held = []
    for c in np.unique(labels):
        members = idx[labels == c]
        n_out = min(int(round(fraction * len(members))), len(members) - 1)
        if n_out > 0:
            held.append(members[rng.permutation(len(members))[:n_out]])
    out = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    return np.setdiff1d(idx, out), out


def train_indices(ds: PreparedDataset, cfg: RunConfig) -> np.ndarray:
    """The pretraining samples: split ``data.split`` part "train", capped by max_train_samples.

    With ``data.options.holdout`` the held-out part (:func:`split_holdout`) is left out first.
    The cap keeps a seeded (data.seed) random subset, in dataset order.
    """
    idx = ds.indices(cfg.data.split, "train")
    if cfg.data.options.get("holdout"):
        idx = split_holdout(ds, idx, cfg.data.options["holdout"])[0]
    cap = cfg.data.max_train_samples
    if cap and cap < len(idx):
        rng = np.random.default_rng([cfg.data.seed, 7])
        idx = np.sort(idx[rng.choice(len(idx), size=cap, replace=False)])
    if len(idx) == 0:
        raise HarnessError(f"{ds.root}: split {cfg.data.split}/train is empty")
    return idx


def data_info(ds: PreparedDataset, cfg: RunConfig):
    from harness.methods.base import DataInfo

    return DataInfo(topology=ds.topology, num_classes=ds.num_classes, frames=cfg.data.frames,
                    persons=ds.num_persons)


def _scalar_terms(out: Any, method_name: str) -> dict[str, torch.Tensor]:
    if not isinstance(out, dict) or "loss" not in out:
        raise HarnessError(f"method {method_name!r}: forward must return a dict with a 'loss' entry, "
                           f"got {type(out).__name__}")
    loss = out["loss"]
    if not torch.is_tensor(loss) or loss.numel() != 1 or not loss.requires_grad:
        raise HarnessError(f"method {method_name!r}: 'loss' must be a scalar tensor that requires grad")
    terms = {"loss": loss.detach().reshape(())}
    for k, v in out.items():
        if k == "loss":
            continue
        if torch.is_tensor(v) and v.numel() == 1:
            terms[k] = v.detach().reshape(()).float()
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            terms[k] = torch.tensor(float(v), device=loss.device)
    return terms


def _resume_source(resume: str | os.PathLike, run_dir: Path) -> Path | None:
    if str(resume) == "never":
        return None
    if str(resume) == "auto":
        last = checkpoint_dir(run_dir) / "last.pt"
        return last if last.is_file() else None
    p = Path(resume)
    if p.is_dir():
        for cand in (p / "checkpoints" / "last.pt", p / "last.pt"):
            if cand.is_file():
                return cand
        raise HarnessError(f"--resume {p}: no last.pt in this folder or its checkpoints/")
    if not p.is_file():
        raise HarnessError(f"--resume {p}: no such checkpoint (use auto, never or a path)")
    return p


def _clear_run(run_dir: Path) -> None:
    """Start over (--resume never): remove the old checkpoints, logs and export of this run."""
    for p in numbered_checkpoints(run_dir) + [checkpoint_dir(run_dir) / "last.pt", run_dir / "backbone.pt",
                                               run_dir / "metrics.jsonl"]:
        if p.exists():
            p.unlink()


# --- the loop --------------------------------------------------------------------------------
def pretrain(cfg: RunConfig, *, resume: str | os.PathLike = "auto", progress: bool = True,
             on_step_end: StepHook | None = None, on_epoch_end: EpochHook | None = None,
             wait_for_lock: bool = False, on_start: StartHook | None = None) -> RunInfo:
    """Pretrain ``cfg.method`` on ``cfg.data`` and export its backbone; see the module docstring.

    resume: "auto" continues from ``<run>/checkpoints/last.pt`` when it exists, "never" starts
    over, a path resumes from that checkpoint (or run folder). A checkpoint whose pretrain_hash
    differs from ``cfg``'s is refused. The hooks are for tests and tools: an exception raised by
    one stops the run as a kill would (the checkpoints written so far stay valid). ``on_start``
    gets the method itself (e.g. to evaluate ``method.backbone()`` from ``on_epoch_end``).
    """
    _, _, local_rank = dd.env_world()
    device = resolve_device(cfg.train.device, local_rank)
    amp = resolve_amp(cfg.train.amp, device)
    if str(resume) not in ("auto", "never") and not Path(resume).exists():
        raise HarnessError(f"--resume {resume}: no such checkpoint (use auto, never or a path)")
    env = dd.setup(device.type)
    try:
        run_dir = run_dir_for(cfg)
        ds = _open_data(cfg, env)
        if env.is_main:
            retire_stale_run(run_dir, ds.fingerprint)
        with run_lock(run_dir, wait=wait_for_lock, enabled=env.is_main), torch_threads(cfg.train.num_threads):
            return _pretrain(cfg, env, ds, device, amp, resume, progress, on_step_end, on_epoch_end, on_start)
    finally:
        dd.teardown(env)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads (0: leave torch's count), restoring the count after.

    ``train.num_threads`` covers pretraining and evaluation: on a small shared machine, two jobs
    with one thread each run far faster than two with two each (oversubscription)."""
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _open_data(cfg: RunConfig, env: dd.DistEnv) -> PreparedDataset:
    if env.enabled and not env.is_main:
        dd.barrier()  # rank 0 builds an auto-prepared dataset first
        return resolve_dataset(cfg.data, cfg.workdir)
    ds = resolve_dataset(cfg.data, cfg.workdir)
    if env.enabled:
        dd.barrier()
    return ds


def _pretrain(cfg: RunConfig, env: dd.DistEnv, ds: PreparedDataset, device: torch.device, amp, resume,
              progress: bool, on_step_end: StepHook | None, on_epoch_end: EpochHook | None,
              on_start: StartHook | None = None) -> RunInfo:
    from harness.methods.base import build_method

    t = cfg.train
    if t.epochs < 0 or t.batch_size < 1:
        raise HarnessError(f"train.epochs ({t.epochs}) must be >= 0 and train.batch_size ({t.batch_size}) >= 1")
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False

    indices = train_indices(ds, cfg)
    info = data_info(ds, cfg)
    ck.seed_everything(t.seed)
    method = build_method(cfg, info).to(device)
    name = cfg.method.name

    run_dir = run_dir_for(cfg)
    run = RunInfo(run_dir=run_dir, method=name, pretrain_hash=cfg.pretrain_hash, config_hash=cfg.config_hash)
    extra = {"device": str(device), "world_size": env.world_size, "amp": amp.mode,
             "torch": torch.__version__, "dataset": str(ds.root), "dataset_fingerprint": ds.fingerprint,
             "train_samples": int(len(indices))}
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        from .. import atomic

        atomic.write_text(run_dir / "config.yaml", to_yaml(cfg))

    if not getattr(method, "pretrains", True):  # e.g. the random-init floor: export only
        if env.is_main:
            run.backbone = ck.export_backbone(method, cfg, run_dir / "backbone.pt", epochs=0, global_step=0)
            run.status = "finished"
            write_run_json(run, extra | {"finished_at": now_str()})
        dd.barrier()
        return run

    optimizer = build_optimizer(cfg, method.parameters())
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(t.milestones), gamma=t.gamma)
    scaler = amp.grad_scaler()

    # --- resume ---------------------------------------------------------------------------
    start_epoch, global_step, train_s, last_metrics = 0, 0, 0.0, {}
    state = None
    if env.is_main:
        src = _resume_source(resume, run_dir)
        if src is not None:
            state = ck.load(src, ck.CKPT_FORMAT)
            ck.check_same_run(state, cfg, src)
            run.resumed_from = str(src)
        elif str(resume) == "never":
            _clear_run(run_dir)
    state = dd.broadcast_object(state)
    if state is not None:
        method.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        ck.load_scheduler_state(scheduler, state["scheduler"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch, global_step = int(state["epoch"]), int(state["global_step"])
        train_s, last_metrics = float(state.get("train_s", 0.0)), dict(state.get("metrics", {}))
        rngs = state["rng"]
        if len(rngs) == env.world_size:
            ck.set_rng_state(rngs[env.rank])
        else:  # a different number of processes: continue, but not bit-exactly
            ck.seed_everything(t.seed + 1000 * start_epoch + env.rank)
        run.resumed_from = run.resumed_from or "checkpoint"
        del state
    elif env.rank > 0:
        ck.seed_everything(t.seed + env.rank)  # distinct dropout masks per process

    model: torch.nn.Module = method
    if env.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=bool(getattr(method, "ddp_find_unused_parameters", False)))
    if t.compile:
        model = torch.compile(model, backend=os.environ.get("HARNESS_COMPILE_BACKEND", "inductor"))

    loader = dd.ShardedBatches(ds, indices, t.batch_size, rank=env.rank, world_size=env.world_size,
                               shuffle=True, seed=t.seed, device=device)
    log = MetricsLog(run_dir, enabled=env.is_main)
    if start_epoch or global_step:
        log.truncate_after(start_epoch, global_step)
    else:
        log.reset()
    run.epochs, run.global_step, run.metrics, run.train_s = start_epoch, global_step, last_metrics, train_s
    last_pt = checkpoint_dir(run_dir) / "last.pt"
    if env.is_main:
        run.checkpoint = last_pt if last_pt.exists() else None
        write_run_json(run, extra | {"started_at": now_str()})

    steps_per_epoch = len(loader)
    if t.max_steps_per_epoch > 0:
        steps_per_epoch = min(steps_per_epoch, t.max_steps_per_epoch)
    last_save = time.monotonic()
    try:
        if on_start is not None:
            on_start(method)
        for epoch in range(start_epoch, t.epochs):
            record = _run_epoch(cfg, env, method, model, loader, optimizer, scaler, amp, device, epoch,
                                global_step, steps_per_epoch, log, progress, on_step_end, run)
            global_step = record["step"]
            scheduler.step()
            train_s += record.pop("_train_s")
            run.epochs, run.global_step, run.metrics, run.train_s = epoch + 1, global_step, record, train_s
            log.write(record)
            if progress and env.is_main:
                _epoch_line(record, t.epochs)
            done = epoch + 1
            numbered = done == t.epochs or (t.checkpoint_every > 0 and done % t.checkpoint_every == 0)
            if numbered or time.monotonic() - last_save > LAST_EVERY_S:
                _save_checkpoint(cfg, env, method, optimizer, scheduler, scaler, done, global_step,
                                 train_s, record, run_dir, numbered)
                last_save = time.monotonic()
                if env.is_main:
                    run.checkpoint = last_pt
                    write_run_json(run, extra)
            if on_epoch_end is not None:
                on_epoch_end(done, record)
    except BaseException as exc:
        run.status = "failed"
        run.error = f"{type(exc).__name__}: {exc}"
        if env.is_main:
            write_run_json(run, extra)
        log.close()
        raise
    log.close()

    if env.is_main:
        run.backbone = ck.export_backbone(method, cfg, run_dir / "backbone.pt", epochs=run.epochs,
                                          global_step=global_step)
        run.checkpoint = last_pt if last_pt.exists() else None
        run.checkpoints = numbered_checkpoints(run_dir)
        run.status = "finished"
        write_run_json(run, extra | {"finished_at": now_str()})
    dd.barrier()
    return run


def _epoch_line(record: dict[str, Any], epochs: int) -> None:
    terms = " ".join(f"{k} {v:.4g}" for k, v in record.items()
                     if k not in ("kind", "epoch", "step", "lr", "samples_per_s", "time_s", "steps")
                     and "_" not in k and isinstance(v, float))
    print(f"epoch {record['epoch']}/{epochs}: {terms}, lr {record['lr']:.3g}, "
          f"{record['samples_per_s']:.0f} samples/s, {record['time_s']:.1f} s", file=sys.stderr, flush=True)


def now_str() -> str:
    from .runs import now

    return now()


def _run_epoch(cfg: RunConfig, env: dd.DistEnv, method, model, loader, optimizer, scaler, amp,
               device: torch.device, epoch: int, global_step: int, steps: int, log: MetricsLog,
               progress: bool, on_step_end: StepHook | None, run: RunInfo) -> dict[str, Any]:
    t = cfg.train
    loader.set_epoch(epoch)
    model.train()
    lr = optimizer.param_groups[0]["lr"]
    bar = progress_bar(steps, f"epoch {epoch + 1}/{t.epochs}", progress and env.is_main)
    names: list[str] | None = None
    epoch_sum: np.ndarray | None = None
    win_sum: np.ndarray | None = None
    win_n, win_samples, epoch_samples, n_steps = 0, 0, 0, 0
    t0 = win_t0 = time.perf_counter()
    for i, batch in enumerate(loader):
        if i >= steps:
            break
        gen = ck.step_generator(t.seed, epoch, global_step, env.rank, device)
        views = method.make_views(batch.x, batch.lengths, gen)
        with amp.autocast():
            out = model(views, batch.labels if method.needs_labels else None)
        terms = _scalar_terms(out, cfg.method.name)
        if names is None:
            names = list(terms)
        vec = torch.stack([terms[k].float() for k in names])
        if env.enabled:
            vec = dd.all_reduce_sum(vec) / env.world_size
        values = np.asarray(vec.tolist(), dtype=np.float64)
        if not np.isfinite(values).all():
            raise NonFiniteLossError(epoch + 1, global_step + 1, dict(zip(names, values.tolist())), run.run_dir,
                                     run.checkpoint)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(out["loss"]).backward()
        scaler.step(optimizer)
        scaler.update()
        method.after_step()
        global_step += 1
        n_steps += 1
        samples = int(batch.x.shape[0]) * env.world_size
        epoch_samples += samples
        win_samples += samples
        epoch_sum = values if epoch_sum is None else epoch_sum + values
        win_sum = values if win_sum is None else win_sum + values
        win_n += 1
        if t.log_every > 0 and global_step % t.log_every == 0:
            now = time.perf_counter()
            rate = win_samples / max(now - win_t0, 1e-9)
            terms_mean = dict(zip(names, (win_sum / win_n).tolist()))
            log.write({"kind": "step", "epoch": epoch + 1, "step": global_step, **terms_mean, "lr": lr,
                       "samples_per_s": rate})
            win_sum, win_n, win_samples, win_t0 = None, 0, 0, now
        if bar is not None:
            bar.update(1)
            shown = {k: v for k, v in zip(names, values.tolist()) if "_" not in k}  # not per-domain parts
            bar.set_postfix(fmt_terms(shown, epoch_samples / max(time.perf_counter() - t0, 1e-9)))
        if on_step_end is not None:
            on_step_end(epoch + 1, global_step, dict(zip(names, values.tolist())))
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t0
    if n_steps == 0:
        raise HarnessError(f"epoch {epoch + 1} had no training steps")
    means = dict(zip(names or [], (epoch_sum / n_steps).tolist())) if epoch_sum is not None else {}
    return {"kind": "epoch", "epoch": epoch + 1, "step": global_step, **means, "lr": lr,
            "samples_per_s": epoch_samples / max(elapsed, 1e-9), "time_s": elapsed, "steps": n_steps,
            "_train_s": elapsed}


def _save_checkpoint(cfg: RunConfig, env: dd.DistEnv, method, optimizer, scheduler, scaler, epoch: int,
                     global_step: int, train_s: float, record: dict[str, Any], run_dir: Path,
                     numbered: bool) -> None:
    rngs = dd.all_gather_object(ck.rng_state())  # every rank's RNG, so a resume is exact
    if env.is_main:
        state = {
            "format": ck.CKPT_FORMAT, "version": ck.VERSION, "pretrain_hash": cfg.pretrain_hash,
            "config": cfg.to_dict(), "epoch": epoch, "global_step": global_step, "train_s": train_s,
            "model": method.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": ck.scheduler_state(scheduler), "scaler": scaler.state_dict(),
            "rng": rngs, "metrics": {k: v for k, v in record.items() if not k.startswith("_")},
        }
        last = checkpoint_dir(run_dir) / "last.pt"
        if numbered:
            path = ck.save(state, numbered_checkpoint(run_dir, epoch))
            ck.link_or_copy(path, last)
        else:
            ck.save(state, last)
    dd.barrier()


def find_or_pretrain(cfg: RunConfig, *, progress: bool = True) -> RunInfo:
    """The finished run with ``cfg``'s pretrain_hash if one exists (reused), else train it.

    An unfinished run of the same configuration is resumed; a run being trained by another
    process is waited for.
    """
    found = finished_run(cfg)
    if found is not None:
        made_on = recorded_fingerprint(found.run_dir)
        if made_on is None or made_on == resolve_dataset(cfg.data, cfg.workdir).fingerprint:
            found.reused = True
            return found
        # made on other data: pretrain() moves it aside and trains afresh
    return pretrain(cfg, resume="auto", progress=progress, wait_for_lock=True)
