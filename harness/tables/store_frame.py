"""The results store as the tables read it: parsed helper columns (value, seed, line, extra, fused,
sweep), and the store's own problems: lines of ``results.csv`` that are not complete rows (torn, cut,
glued, unparsable; :func:`harness.results.read_store`) never reach a cell and are listed in
``df.attrs["store_problems"]`` for the tables' "Store problems" section."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..registry import METHODS
from ..results import StoreProblem, read_store

# --- the store ------------------------------------------------------------------------------------
def _parse_extra(text: Any) -> dict[str, Any]:
    if not isinstance(text, str) or not text.strip():
        return {}
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return {"_raw": text}
    return obj if isinstance(obj, dict) else {"_raw": obj}


_SCORE_SPLIT = (re.compile(r"^(?:linear|semi|detection)-.+-(?P<split>[^-]+)-seed\d+\.npz$"),
                re.compile(r"^knn-.+-(?P<split>[^-]+)\.npz$"))


def _split_from_files(files: Any) -> str:
    """The split named by protocol score files (``linear-<kind>-<split>-seed<k>.npz``), if they agree."""
    if not isinstance(files, list):
        return ""
    found = set()
    for f in files:
        name = Path(str(f)).name
        for pat in _SCORE_SPLIT:
            m = pat.match(name)
            if m:
                found.add(m.group("split"))
                break
    return found.pop() if len(found) == 1 else ""


def prepare_store(df: pd.DataFrame, lines: list[int] | None = None) -> pd.DataFrame:
    """The store with parsed helper columns: ``_value`` (float, NaN when bad), ``_seed``, ``_line``
    (``lines``: each row's line in results.csv; default: row order after the header), ``_extra``
    (dict), ``_fused``, ``_sweep``, ``_checkpoint`` (the sha256 of a file ``harness run --checkpoint``
    evaluated, else "")."""
    df = df.copy()
    for col in ("method", "dataset", "protocol", "metric", "variant", "encoder", "modality", "split", "preset",
                "config_hash", "date", "extra"):
        if col not in df.columns:
            df[col] = ""
        df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
    if "value" not in df.columns:
        df["value"] = ""
    if "seed" not in df.columns:
        df["seed"] = 0
    df["_line"] = (np.asarray(lines, dtype=np.int64) if lines is not None
                   else np.arange(len(df), dtype=np.int64) + 2)  # line 1 is the CSV header
    df["_value"] = pd.to_numeric(df["value"], errors="coerce").astype(float)
    df["_seed"] = pd.to_numeric(df["seed"], errors="coerce")
    if "pretrain_seed" not in df.columns:
        df["pretrain_seed"] = 0
    df["_pseed"] = pd.to_numeric(df["pretrain_seed"], errors="coerce")
    df["_extra"] = [_parse_extra(e) for e in df["extra"]]
    df["_fused"] = [isinstance(e, dict) and "weights" in e for e in df["_extra"]]
    df["_sweep"] = [bool(e.get("overrides")) for e in df["_extra"]]
    # a pretraining method's row with no recorded budget (steps 0) comes from an older harness version
    steps = pd.to_numeric(df["steps"], errors="coerce").fillna(0) if "steps" in df.columns else pd.Series(0, df.index)
    trains = df["method"].map(lambda m: getattr(METHODS.get(m), "pretrains", True) if m in METHODS else True)
    df["_checkpoint"] = [str(e.get("checkpoint_sha256", "")) for e in df["_extra"]]  # harness run --checkpoint
    # fused rows inherit their score files' budget; a published checkpoint's budget is not ours to record
    df["_no_budget"] = (steps == 0) & trains.astype(bool) & ~df["_fused"] & (df["_checkpoint"] == "")
    # harness fuse --record leaves split empty; its score file names carry it
    split = df["split"].tolist()
    for i, (s, fused, extra) in enumerate(zip(split, df["_fused"], df["_extra"])):
        if fused and not s:
            split[i] = _split_from_files(extra.get("files"))
    df["split"] = split
    return df


def load_store(results_dir: str | Path) -> pd.DataFrame:
    """The trusted rows of ``results_dir/results.csv``, prepared; its broken lines (dicts: line,
    what, text) in ``attrs["store_problems"]``."""
    read = read_store(results_dir)
    df = prepare_store(read.frame(), [x.number for x in read.rows])
    problems = read.problems if read.header_error is None else [
        _header_problem(read.header_line, read.header_error, sum(x.kind == "unread" for x in read.lines))]
    df.attrs["store_problems"] = [p.as_dict() for p in problems]
    df.attrs["store_dir"] = str(results_dir)  # where the rows' per-sample predictions are (extra.predictions)
    return df


def _header_problem(line: int, error: str, unread: int) -> StoreProblem:
    return StoreProblem(line, f"{error}; the {unread} line(s) below it are not read", "")


