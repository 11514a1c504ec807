"""The results store: one CSV row per measurement, appended atomically.

``results/results.csv`` is machine-written. Every number in the tables comes from here.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import io
import platform
import subprocess
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from . import __version__, atomic
from .errors import HarnessError
from .registry import METHODS

STORE_NAME = "results.csv"


@dataclass
class ResultRow:
    method: str
    dataset: str
    protocol: str
    metric: str  # e.g. top1, top1_best, top5, knn1, mAP_a, mAP_v, mAP_a_voc
    value: float
    variant: str = "default"
    encoder: str = ""
    modality: str = "joint"
    split: str = ""
    seed: int = 0
    preset: str = ""
    epochs: int = 0  # pretraining epochs (completed passes over the training split)
    config_hash: str = ""  # the configuration without its pretraining seed (rows of several seeds share it)
    pretrain_seed: int = 0  # train.seed of the pretraining run (the protocol's own seed is ``seed``)
    steps: int = 0  # pretraining optimizer steps (0: not recorded, rows older than the step budgets)
    code_version: str = field(default_factory=lambda: code_version())
    hardware: str = field(default_factory=lambda: hardware())
    date: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    extra: str = ""  # free-form JSON for protocol specifics (e.g. label fraction, theta)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS = [f.name for f in fields(ResultRow)]


def code_version() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def hardware() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:  # pragma: no cover - torch always importable here
        pass
    return f"cpu:{platform.machine()}"


@contextlib.contextmanager
def _store_lock(store_dir: Path):
    """Serialise appends from concurrent processes (each append rewrites the file atomically)."""
    store_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: appends are still atomic, not serialised
        yield
        return
    with open(store_dir / ".results.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# columns added since the first store, with the value older rows get when the file is upgraded
ADDED_COLUMNS = {"pretrain_seed": "0", "steps": "0"}


def own_backbone(method: str) -> str | None:
    """The one encoder a method trains, when it trains its own (MAMP: mamp-vit), else None."""
    if method not in METHODS:
        return None
    encoders = getattr(METHODS.get(method), "encoders", None)
    return encoders[0] if encoders and len(encoders) == 1 else None


def upgrade_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row of an older store in today's terms: the added columns get their defaults, and a method
    that trains its own backbone gets it as its encoder (stores before the encoder seam recorded the
    unused ``encoder.name``, e.g. "dste" for MAMP). Values are never changed."""
    row = {**ADDED_COLUMNS, **row}
    own = own_backbone(str(row.get("method", "")))
    if own and row.get("encoder") != own:
        row["encoder"] = own
    return row


def _upgrade_header(path: Path) -> None:
    """Rewrite a store written with an older column set under today's header (under the lock).

    Old rows keep every value; a column they lack gets :data:`ADDED_COLUMNS`' default (the
    pretraining seed of every run before pretrain seeds existed was 0)."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        if header == COLUMNS:
            return
        unknown = set(header) - set(COLUMNS)
        if unknown or set(COLUMNS) - set(header) - set(ADDED_COLUMNS):
            raise HarnessError(f"{path}: its header {header} is not a results store this version can upgrade")
        rows = list(reader)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(upgrade_row(row))
    atomic.write_text(path, buf.getvalue())


def append_rows(store_dir: str | Path, rows: Iterable[ResultRow]) -> Path:
    """Append rows to ``store_dir/results.csv`` atomically; concurrent appenders never lose rows."""
    path = Path(store_dir) / STORE_NAME
    with _store_lock(Path(store_dir)):
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        if not path.exists() or path.stat().st_size == 0:
            writer.writeheader()
        else:
            _upgrade_header(path)
        for row in rows:
            writer.writerow(row.as_dict())
        atomic.append_text(path, buf.getvalue())
    return path


def load_results(store_dir: str | Path) -> pd.DataFrame:
    path = Path(store_dir) / STORE_NAME
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    df = pd.read_csv(path, keep_default_na=False)
    if any(col not in df.columns for col in ADDED_COLUMNS):  # a store from before the columns existed
        df = pd.DataFrame([upgrade_row(r) for r in df.to_dict("records")], columns=COLUMNS)
        for col in ADDED_COLUMNS:
            df[col] = pd.to_numeric(df[col])
    return df
