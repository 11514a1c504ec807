"""Writing and reading the per-sample predictions files (the format: :mod:`harness.results.predictions`):
the key of a set from its rows' identity, the atomic write, the verified read."""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import math
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .. import atomic
from .predictions import FOLDER, FORMAT, IDENTITY_COLUMNS, VERSION, _INT_IDENTITY, Predictions, PredictionsError

def _get(row: Any, col: str) -> Any:
    return getattr(row, col) if hasattr(row, "as_dict") else row[col]


def row_identity(row: Any) -> dict[str, Any]:
    """The columns that name a row's measurement, normalised (ints as int, the rest as str)."""
    out = {}
    for col in IDENTITY_COLUMNS:
        v = _get(row, col)
        out[col] = int(v) if col in _INT_IDENTITY else ("" if v is None else str(v))
    return out


def _array_sum(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": hashlib.sha256(a.tobytes()).hexdigest()}


def prediction_key(identity: Mapping[str, Any], kind: str, group: str, sums: Mapping[str, Any]) -> str:
    blob = json.dumps({"identity": dict(identity), "kind": kind, "group": group, "arrays": dict(sums)},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def relative_name(key: str) -> str:
    return f"{FOLDER}/{key}.npz"


# --- writing ------------------------------------------------------------------------------------
def write_predictions(store_dir: str | Path, pred: Predictions, rows: Sequence[Any]) -> str:
    """Write ``pred`` for ``rows`` (one identity) under ``store_dir``; returns the name relative to it.

    A file of the same key already there (the same measurement recorded before) keeps the metrics it
    backs; its arrays are the same by construction (the key covers their checksums)."""
    identity = row_identity(rows[0])
    arrays = {k: np.ascontiguousarray(v) for k, v in sorted(pred.arrays.items())}
    if "header" in arrays:
        raise ValueError("'header' is reserved in a predictions file")
    sums = {k: _array_sum(v) for k, v in arrays.items()}
    key = prediction_key(identity, pred.kind, pred.group, sums)
    rel = relative_name(key)
    path = Path(store_dir) / rel
    metrics: dict[str, float | None] = {}
    if path.exists():
        try:
            metrics.update(read_predictions(path).header["metrics"])
        except PredictionsError:
            pass  # a torn file of an earlier write: replaced below
    for r in rows:
        v = float(_get(r, "value"))
        metrics[str(_get(r, "metric"))] = None if math.isnan(v) else v
    header = {"format": FORMAT, "version": VERSION, "key": key, "kind": pred.kind, "group": pred.group,
              "identity": identity, "metrics": metrics, "meta": pred.meta, "arrays": sums,
              "code_version": str(_get(rows[0], "code_version")),
              "written": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    blob = json.dumps(header, sort_keys=True, default=_json_default).encode("utf-8")
    buf = io.BytesIO()
    np.savez_compressed(buf, header=np.frombuffer(blob, dtype=np.uint8), **arrays)
    atomic.write_bytes(path, buf.getvalue())
    return rel


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"{type(x).__name__} is not JSON")


def attach_predictions(store_dir: str | Path, rows: Sequence[Any]) -> int:
    """Write the predictions the rows carry and record each file in its rows' ``extra.predictions``.

    Never raises: a set that cannot be written is reported on stderr and its rows are recorded without
    a reference (the rows matter more than their per-sample detail). Returns the files written."""
    groups: dict[tuple, tuple[Predictions, list]] = {}
    for r in rows:
        pred = getattr(r, "predictions", None)
        if pred is None:
            continue
        ident = tuple(sorted(row_identity(r).items()))
        groups.setdefault((id(pred), ident), (pred, []))[1].append(r)
    written, failed = 0, []
    for pred, members in groups.values():
        try:
            rel = write_predictions(store_dir, pred, members)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the rows are still recorded
            failed.append((members, exc))
            continue
        for r in members:
            r.add_extra(predictions=rel)
        written += 1
    for members, exc in failed:
        metrics = ", ".join(sorted({str(_get(r, "metric")) for r in members}))
        print(f"harness: warning: per-sample predictions of {len(members)} row(s) ({metrics}) were not written to "
              f"{Path(store_dir) / FOLDER} ({type(exc).__name__}: {exc}); the rows are recorded without them",
              file=sys.stderr)
    return written


# --- reading ------------------------------------------------------------------------------------
def read_predictions(path: str | Path) -> Predictions:
    """Read and verify one predictions file on its own (checksums, key, file name)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            if "header" not in names:
                raise PredictionsError(path, "not a predictions file (no header)")
            raw = {k: z[k] for k in names}
    except PredictionsError:
        raise
    except FileNotFoundError:
        raise PredictionsError(path, "the predictions file is missing") from None
    except (OSError, ValueError, EOFError, KeyError, zlib.error, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise PredictionsError(path, f"torn or not a predictions file ({type(exc).__name__}: {exc})") from None
    try:
        header = json.loads(raw.pop("header").tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise PredictionsError(path, f"the header is not JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise PredictionsError(path, f"not a {FORMAT} file")
    if header.get("version") != VERSION:
        raise PredictionsError(path, f"format version {header.get('version')!r}; this harness reads {VERSION}")
    sums = header.get("arrays") or {}
    if sorted(sums) != sorted(raw):
        raise PredictionsError(path, f"arrays {sorted(raw)} where the header lists {sorted(sums)}")
    for name, a in raw.items():
        if _array_sum(a) != sums[name]:
            raise PredictionsError(path, f"array {name!r} does not match its checksum in the header "
                                         "(changed after it was written)")
    try:
        key = prediction_key(header["identity"], header["kind"], header["group"], sums)
    except (KeyError, TypeError) as exc:
        raise PredictionsError(path, f"the header lacks {exc}") from None
    if key != header.get("key") or path.stem != key:
        raise PredictionsError(path, f"the header's identity, kind or group give key {key}, the file says "
                                     f"{header.get('key')!r} and is named {path.name} (edited or renamed)")
    try:
        return Predictions(header["kind"], raw, header["group"], dict(header.get("meta") or {}), header, path)
    except ValueError as exc:
        raise PredictionsError(path, str(exc)) from None


def predictions_name(row: Any) -> str | None:
    """The row's ``extra.predictions`` (relative to the store folder), or None."""
    extra = _get(row, "extra")
    if not extra:
        return None
    try:
        extra = json.loads(extra) if isinstance(extra, str) else extra
    except json.JSONDecodeError:
        return None
    name = extra.get("predictions") if isinstance(extra, dict) else None
    return str(name) if name else None


def load_predictions(store_dir: str | Path, row: Any) -> Predictions:
    """The verified predictions of ``row`` (a ResultRow, a store row dict or a ``load_results`` row).

    Raises :class:`PredictionsError` when the row records none, or when the file is torn, changed, or
    does not back this row (another identity, or not this metric and value)."""
    name = predictions_name(row)
    if name is None:
        raise PredictionsError(Path(store_dir) / FOLDER, f"no per-sample predictions recorded for the "
                                                          f"{_get(row, 'metric')} row of {_get(row, 'method')}")
    path = Path(store_dir) / name
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise PredictionsError(path, "extra.predictions is not a name inside the store folder")
    pred = read_predictions(path)
    identity = row_identity(row)
    if pred.header["identity"] != identity:
        diff = [f"{k}: file {pred.header['identity'].get(k)!r}, row {v!r}" for k, v in identity.items()
                if pred.header["identity"].get(k) != v]
        raise PredictionsError(path, f"made for another row ({'; '.join(diff)})")
    metric, value = str(_get(row, "metric")), float(_get(row, "value"))
    metrics = pred.header.get("metrics") or {}
    if metric not in metrics:
        raise PredictionsError(path, f"does not back metric {metric!r} (it backs {', '.join(sorted(metrics))})")
    have = metrics[metric]
    same = math.isnan(value) if have is None else (not math.isnan(value) and math.isclose(have, value, rel_tol=1e-9,
                                                                                          abs_tol=1e-12))
    if not same:
        raise PredictionsError(path, f"records {metric} = {have}, the row {value}")
    return pred
