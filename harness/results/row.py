"""One result row: its columns, the values a trustworthy row holds, and how rows of older stores
read in today's columns (:data:`ADDED_COLUMNS`, :func:`upgrade_row`)."""

from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import HarnessError
from ..registry import METHODS


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
    # not a column: the per-sample outputs behind the value (a harness.results.predictions.Predictions),
    # written beside the store when the row is recorded and named in ``extra.predictions``
    predictions: Any = field(default=None, repr=False, compare=False, metadata={"column": False})

    def add_extra(self, **fields: Any) -> "ResultRow":
        """Merge ``fields`` into the row's ``extra`` JSON object (a non-object ``extra`` is kept under
        ``_raw``); returns the row."""
        try:
            extra = json.loads(self.extra) if self.extra else {}
        except json.JSONDecodeError:
            extra = {"_raw": self.extra}
        if not isinstance(extra, dict):
            extra = {"_raw": extra}
        extra.update(fields)
        self.extra = json.dumps(extra, sort_keys=True)
        return self

    def as_dict(self) -> dict[str, Any]:
        """The row's columns (its predictions are not one)."""
        return {c: getattr(self, c) for c in COLUMNS}


COLUMNS = [f.name for f in fields(ResultRow) if f.metadata.get("column", True)]
INT_COLUMNS = ("seed", "epochs", "pretrain_seed", "steps")
REQUIRED_COLUMNS = ("method", "dataset", "protocol", "metric")  # never empty in a real row
# columns added since the first store, with the value older rows get when the file is upgraded
ADDED_COLUMNS = {"pretrain_seed": "0", "steps": "0"}


class StoreError(HarnessError):
    """The store cannot be used as it is (an unknown header); names the file and what to do."""


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


# --- upgrading older stores -------------------------------------------------------------------
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


def header_problem(header: list[str]) -> str | None:
    """Why ``header`` is not a results header this version reads (None: today's, or an older one)."""
    if header == COLUMNS:
        return None
    dupes = sorted({c for c in header if header.count(c) > 1})
    unknown = [c for c in header if c not in COLUMNS]
    lacking = [c for c in COLUMNS if c not in header and c not in ADDED_COLUMNS]
    if not (dupes or unknown or lacking):
        return None  # an older column set: read with the added columns' defaults
    parts = ([f"unknown column(s) {', '.join(map(repr, unknown[:5]))}"] if unknown else []) \
        + ([f"missing column(s) {', '.join(lacking[:5])}"] if lacking else []) \
        + ([f"repeated column(s) {', '.join(dupes)}"] if dupes else [])
    return f"not a results header ({'; '.join(parts)}); expected {','.join(COLUMNS)}"


def _is_date(text: str) -> bool:
    try:
        _dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return False
    return True


def row_problem(values: list[str], header: list[str]) -> str | None:
    """Why one data row cannot be trusted, or None."""
    if len(values) != len(header):
        if len(values) < len(header):
            return (f"{len(values)} field(s) where the header has {len(header)}: a torn or cut row "
                    f"(its config hash, date or extra are lost)")
        return (f"{len(values)} fields where the header has {len(header)}: two rows glued together "
                f"(a missing newline before the second) or stray commas")
    row = dict(zip(header, values))
    for col in REQUIRED_COLUMNS:
        if not row[col].strip():
            return f"column '{col}' is empty"
    if row["value"].strip():  # an empty value is a missing measurement: the tables flag it in its cell
        try:
            float(row["value"])
        except ValueError:
            return f"value {row['value'][:40]!r} is not a number"
    for col in INT_COLUMNS:
        if col in row:
            try:
                int(row[col])
            except ValueError:
                return f"column '{col}' is {row[col][:40]!r}, not an integer"
    if not _is_date(row["date"]):
        return f"date {row['date'][:40]!r} is not an ISO date (a cut or shifted row?)"
    if row["extra"].strip():
        try:
            json.loads(row["extra"])
        except json.JSONDecodeError:
            return f"column 'extra' is not valid JSON (a cut row?): {row['extra'][:60]!r}"
    return None
