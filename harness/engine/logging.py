"""Training logs: ``metrics.jsonl`` (always), TensorBoard events (when installed), a tqdm bar.

``metrics.jsonl`` has one JSON object per line: ``{"kind": "step", ...}`` every ``train.log_every``
steps (loss terms averaged since the previous line) and ``{"kind": "epoch", ...}`` after every
epoch (averaged over the epoch). Both carry ``epoch`` (1-based), ``step`` (global optimiser steps
so far), each loss term, ``lr`` and ``samples_per_s``. Only rank 0 writes.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from .. import atomic


def _tensorboard_writer(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package
    except Exception:  # not installed: TensorBoard output is optional
        return None
    try:
        return SummaryWriter(log_dir=str(log_dir))
    except Exception:
        return None


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no NaN/Inf
    return v


class MetricsLog:
    def __init__(self, run_dir: Path, *, enabled: bool = True, tensorboard: bool = True):
        self.path = run_dir / "metrics.jsonl"
        self.enabled = enabled
        self.tb = _tensorboard_writer(run_dir / "tb") if (enabled and tensorboard) else None

    def truncate_after(self, epoch: int, step: int) -> None:
        """Drop lines written after a checkpoint (epoch, step) that a resumed run will redo."""
        if not self.enabled or not self.path.exists():
            return
        keep = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a kill
            if rec.get("step", 0) <= step and (rec.get("kind") != "epoch" or rec.get("epoch", 0) <= epoch):
                keep.append(line)
        atomic.write_text(self.path, "".join(k + "\n" for k in keep))

    def reset(self) -> None:
        if self.enabled and self.path.exists():
            self.path.unlink()

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({k: _clean(v) for k, v in record.items()}) + "\n")
        if self.tb is not None:
            prefix = "epoch" if record.get("kind") == "epoch" else "step"
            for k, v in record.items():
                if k not in ("kind", "epoch", "step") and isinstance(v, (int, float)):
                    self.tb.add_scalar(f"{prefix}/{k}", v, record.get("step", 0))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
            self.tb = None


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr, or None when disabled or stderr is not a terminal."""
    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr)


def fmt_terms(terms: dict[str, float], samples_per_s: float | None = None) -> dict[str, str]:
    out = {k: f"{v:.4g}" for k, v in terms.items()}
    if samples_per_s is not None:
        out["samples/s"] = f"{samples_per_s:.0f}"
    return out
