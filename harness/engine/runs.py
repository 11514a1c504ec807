"""Run folders: ``<workdir>/runs/<method>-<pretrain_hash>/``.

::

    config.yaml          the resolved RunConfig (harness.config.to_yaml)
    run.json             hashes, status (running | finished | failed), progress, final metrics
    metrics.jsonl        step and epoch log lines (see harness.engine.logging)
    tb/                  TensorBoard events (only when tensorboard is installed)
    checkpoints/         last.pt and epoch_NNNN.pt (full training state)
    backbone.pt          the backbone export protocols load (harness.engine.checkpoint.load_backbone)
    .lock                held by the process that trains the run

run.json records the prepared dataset's fingerprint; a run whose data has changed since is moved
to ``<workdir>/runs/.stale/`` and trained afresh instead of reused (:func:`retire_stale_run`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .. import atomic
from ..config import RunConfig
from ..errors import HarnessError
from ..resolve import resolved


def run_dir_for(cfg: RunConfig) -> Path:
    cfg = resolved(cfg)  # the folder is named by the resolved configuration's hash
    return Path(cfg.workdir) / "runs" / f"{cfg.method.name}-{cfg.pretrain_hash}"


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def numbered_checkpoint(run_dir: Path, epoch: int) -> Path:
    return checkpoint_dir(run_dir) / f"epoch_{epoch:04d}.pt"


def numbered_checkpoints(run_dir: Path) -> list[Path]:
    d = checkpoint_dir(run_dir)
    return sorted(d.glob("epoch_*.pt")) if d.is_dir() else []


def resume_source(resume: str | os.PathLike, run_dir: Path) -> Path | None:
    """The checkpoint ``--resume auto|never|PATH`` points to (None: start from scratch)."""
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


def clear_run(run_dir: Path) -> None:
    """Start over (--resume never): remove the old checkpoints, logs and export of this run."""
    for p in numbered_checkpoints(run_dir) + [checkpoint_dir(run_dir) / "last.pt", run_dir / "backbone.pt",
                                               run_dir / "metrics.jsonl"]:
        if p.exists():
            p.unlink()


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass
class RunInfo:
    run_dir: Path
    method: str
    pretrain_hash: str
    config_hash: str
    status: str = "running"  # running | finished | failed
    epochs: int = 0  # completed epochs
    global_step: int = 0
    checkpoint: Path | None = None  # last.pt (None for methods that do not pretrain)
    checkpoints: list[Path] = field(default_factory=list)  # numbered checkpoints
    backbone: Path | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # the last epoch's averages
    train_s: float = 0.0  # training wall time over all sessions of this run
    reused: bool = False  # find_or_pretrain found it finished
    resumed_from: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("run_dir", "checkpoint", "backbone"):
            d[k] = None if d[k] is None else str(d[k])
        d["checkpoints"] = [str(p) for p in self.checkpoints]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunInfo":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        for k in ("run_dir", "checkpoint", "backbone"):
            if known.get(k) is not None:
                known[k] = Path(known[k])
        known["checkpoints"] = [Path(p) for p in known.get("checkpoints", [])]
        return cls(**known)


def write_run_json(info: RunInfo, extra: dict[str, Any] | None = None) -> None:
    d = info.to_dict()
    d.pop("reused", None)
    d["updated_at"] = now()
    if extra:
        d.update(extra)
    atomic.write_json(info.run_dir / "run.json", d)


def read_run_json(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "run.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def finished_run(cfg: RunConfig) -> RunInfo | None:
    """The finished run of this pretraining configuration, if there is one."""
    cfg = resolved(cfg)
    run_dir = run_dir_for(cfg)
    d = read_run_json(run_dir)
    if not d or d.get("status") != "finished" or d.get("pretrain_hash") != cfg.pretrain_hash:
        return None
    if not (run_dir / "backbone.pt").is_file():
        return None
    info = RunInfo.from_dict(d)
    info.run_dir = run_dir  # the folder may have moved with its workdir
    info.backbone = run_dir / "backbone.pt"
    if info.checkpoint is not None:
        info.checkpoint = checkpoint_dir(run_dir) / "last.pt"
    info.checkpoints = numbered_checkpoints(run_dir)
    return info


def recorded_fingerprint(run_dir: Path) -> str | None:
    """The dataset fingerprint a run was pretrained on (None for runs that predate the record)."""
    return (read_run_json(run_dir) or {}).get("dataset_fingerprint")


def retire_stale_run(run_dir: Path, dataset_fingerprint: str) -> Path | None:
    """Move a run made on other data (its run.json records another dataset fingerprint) to
    ``runs/.stale/``, so it is neither reused nor resumed and nothing is lost; returns where it went.

    The pretrain hash covers the configuration only: a regenerated synthetic set, a re-prepared NTU
    folder or a new dataset version at the same path would otherwise reuse the old weights.
    """
    old = recorded_fingerprint(run_dir)
    if not old or old == dataset_fingerprint:
        return None
    with run_lock(run_dir, wait=True):
        dest = run_dir.parent / ".stale" / f"{run_dir.name}.{old[:8]}"
        k = 1
        while dest.exists():
            k += 1
            dest = dest.with_name(f"{run_dir.name}.{old[:8]}~{k}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(run_dir, dest)
    print(f"harness: {run_dir} was pretrained on other data (dataset fingerprint {old} ≠ "
          f"{dataset_fingerprint}); moved it to {dest} and training afresh", file=sys.stderr)
    return dest


# what a run folder holds before training has written anything of its own
NOTHING_YET = frozenset({".lock", "config.yaml"})


def _created_folders(run_dir: Path) -> list[Path]:
    """``run_dir`` and those of its parents that do not exist yet (innermost first)."""
    out, p = [], run_dir
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def _remove_if_unused(created: list[Path]) -> None:
    """Remove the folders a failed run created, if it left nothing in them but its lock and config:
    a rejected configuration must not leave a run folder behind."""
    run_dir = created[0]
    try:
        names = {p.name for p in run_dir.iterdir()}
    except OSError:
        return
    if names - NOTHING_YET:
        return  # checkpoints, logs or run.json: the record of a run that started, kept
    for name in names:
        with contextlib.suppress(OSError):
            (run_dir / name).unlink()
    for folder in created:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if empty: a parent may have gained other runs meanwhile


@contextlib.contextmanager
def run_lock(run_dir: Path, *, wait: bool = False, enabled: bool = True) -> Iterator[None]:
    """Hold ``run_dir/.lock`` so two processes never train the same run at once (POSIX only).

    When the guarded block fails before it wrote anything but the config, the folders this call
    created are removed again (a run that started keeps its folder, failed or not)."""
    if not enabled:
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; run unguarded
        yield
        return
    created = _created_folders(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fh = open(run_dir / ".lock", "a+", encoding="utf-8")
    failed = False
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            fh.seek(0)
            owner = fh.read().strip() or "?"
            raise HarnessError(f"{run_dir} is being trained by another process (pid {owner}); "
                               f"wait for it or stop it") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        except BaseException:
            failed = True
            raise
    finally:
        if failed and created:
            _remove_if_unused(created)  # still holding the lock: no other process is using the folder
        with contextlib.suppress(OSError):
            fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
