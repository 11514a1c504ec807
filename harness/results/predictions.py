"""Per-sample predictions of recorded rows: ``<store>/predictions/<key>.npz``, verified on read.

A protocol hands what it predicted for every evaluated sample to the core on the rows themselves
(``ResultRow.predictions``, a :class:`Predictions`; not a store column). Rows that share one object
(top-1 and top-5 of one probe, every mAP of one detection head) share one file. When the rows are
recorded (:func:`harness.results.record_rows`) each set is written beside the store and the rows say
where (``extra.predictions``: the file's name relative to the store folder), so intervals, per-class
results and new metrics can be computed later without rerunning anything.

**The file** (``np.savez_compressed``, written atomically) holds the arrays and a JSON ``header``:
format and version, the ``key``, ``kind`` (:data:`CLASSIFICATION` or :data:`INTERVALS`), ``group``
(which of a protocol's outputs: ``final``, ``best``, ...), ``identity`` (the rows' columns named in
:data:`IDENTITY_COLUMNS`), ``metrics`` (metric → value of every row that points at it), ``meta``
(number of classes, class names and the dataset's fingerprint when the protocol gave its dataset,
θ for intervals, ...) and, per array, its dtype, shape and sha256.

**The key** is the first 24 hex digits of the sha256 of the identity, the kind, the group and the
arrays' checksums: stable (the same measurement gives the same name), and a re-run that predicts
otherwise gets a file of its own instead of overwriting the one older rows point at.

**Verification** (:func:`read_predictions`, :func:`load_predictions`): a torn or foreign file, a
missing or extra array, an array whose bytes, dtype or shape differ from the header, a header whose
key does not match its contents or the file name, or a row whose identity, metric or value the file
does not back raise :class:`PredictionsError` naming the file; nothing is returned from it.

Kinds (what the arrays are):

* ``classification``: ``index`` (dataset indices of the evaluated test samples), ``label`` (true
  class), ``pred`` (the class the top-1 metric scored) and optionally ``topk`` ((N, k) classes by
  descending score, for top-k metrics);
* ``intervals`` (detection): ``index`` (dataset indices of the test videos; ``meta.videos`` their
  scorer names), detections ``det_video`` (position in ``index``), ``det_label`` (1..C),
  ``det_start``, ``det_end``, ``det_score``; ground truth ``gt_video``, ``gt_label``, ``gt_start``,
  ``gt_end``; optionally per-frame argmax predictions ``frame_pred`` (0 = background) cut by
  ``frame_offsets``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import math
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .. import atomic
from ..errors import HarnessError

FORMAT = "harness-predictions"
VERSION = 1
FOLDER = "predictions"
CLASSIFICATION = "classification"
INTERVALS = "intervals"
KINDS = (CLASSIFICATION, INTERVALS)
# the columns that name a measurement (not metric and value: rows of one set differ in those)
IDENTITY_COLUMNS = ("method", "variant", "encoder", "modality", "dataset", "protocol", "split", "seed", "preset",
                    "epochs", "steps", "config_hash", "pretrain_seed")
_INT_IDENTITY = ("seed", "epochs", "steps", "pretrain_seed")
REQUIRED = {CLASSIFICATION: ("index", "label", "pred"),
            INTERVALS: ("index", "det_video", "det_label", "det_start", "det_end", "det_score",
                        "gt_video", "gt_label", "gt_start", "gt_end")}


class PredictionsError(HarnessError):
    """A predictions file that cannot be trusted (torn, tampered, or not the row's); names the file."""

    def __init__(self, path: Path | str, what: str):
        super().__init__(f"{path}: {what}")
        self.path, self.what = Path(path), what


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _class_dtype(num_classes: int) -> np.dtype:
    return np.dtype(np.int16) if num_classes < 2 ** 15 else np.dtype(np.int32)


def _index_dtype(index: np.ndarray) -> np.dtype:
    return np.dtype(np.int32) if not index.size or int(index.max()) < 2 ** 31 else np.dtype(np.int64)


def _dataset_meta(dataset: Any) -> dict[str, Any]:
    """What a predictions file records of its evaluation dataset (what it has of it)."""
    out: dict[str, Any] = {}
    for name in ("kind", "num_classes", "class_names", "fingerprint", "subset"):
        try:
            value = getattr(dataset, name)
        except Exception:  # a dataset without meta.json or data.npy: record what there is
            continue
        if value not in (None, ""):
            out["dataset_" + name if name in ("kind", "fingerprint", "subset") else name] = value
    return out


@dataclass(eq=False)
class Predictions:
    """One set of per-sample predictions (see the module docstring for the kinds' arrays)."""

    kind: str
    arrays: dict[str, np.ndarray]
    group: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    header: dict[str, Any] | None = None  # the file's header, when read from one
    path: Path | None = None  # the file it was read from

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"predictions kind {self.kind!r}; one of {', '.join(KINDS)}")
        lacking = [a for a in REQUIRED[self.kind] if a not in self.arrays]
        if lacking:
            raise ValueError(f"{self.kind} predictions lack array(s) {', '.join(lacking)}")

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @property
    def num_classes(self) -> int:
        if "num_classes" in self.meta:
            return int(self.meta["num_classes"])
        labels = [self.arrays[a] for a in ("label", "pred", "topk", "gt_label", "det_label") if a in self.arrays]
        top = max((int(a.max()) for a in labels if a.size), default=-1)
        return top if self.kind == INTERVALS else top + 1

    @property
    def class_names(self) -> list[str]:
        names = self.meta.get("class_names")
        n = self.num_classes
        return [str(x) for x in names] if names and len(names) == n else [str(i) for i in range(n)]

    # --- building (protocols) ---------------------------------------------------------------------
    @classmethod
    def classification(cls, index: Any, labels: Any, *, pred: Any = None, topk: Any = None, group: str = "",
                       dataset: Any = None, **meta: Any) -> "Predictions":
        """Recognition outputs: ``pred`` the predicted class per sample, or ``topk`` ((N, k) classes by
        descending score; ``pred`` defaults to its first column). ``dataset`` (the evaluation
        PreparedDataset) adds its class names, number of classes and fingerprint to ``meta``."""
        meta = {**(_dataset_meta(dataset) if dataset is not None else {}), **meta}
        index, labels = _numpy(index).reshape(-1), _numpy(labels).reshape(-1)
        arrays: dict[str, np.ndarray] = {}
        if topk is not None:
            arrays["topk"] = _numpy(topk)
            if arrays["topk"].ndim != 2 or len(arrays["topk"]) != len(labels):
                raise ValueError(f"topk of shape {arrays['topk'].shape} for {len(labels)} samples")
            if pred is None:
                pred = arrays["topk"][:, 0]
        if pred is None:
            raise ValueError("classification predictions need pred or topk")
        pred = _numpy(pred).reshape(-1)
        if not len(index) == len(labels) == len(pred):
            raise ValueError(f"{len(index)} indices, {len(labels)} labels, {len(pred)} predictions")
        n = int(meta.get("num_classes") or max([int(a.max()) + 1 for a in (labels, pred) if a.size] or [1]))
        dtype = _class_dtype(n)
        arrays.update(index=index.astype(_index_dtype(index)), label=labels.astype(dtype), pred=pred.astype(dtype))
        if "topk" in arrays:
            arrays["topk"] = arrays["topk"].astype(dtype)
        return cls(CLASSIFICATION, arrays, group, meta)

    @classmethod
    def intervals(cls, videos: Sequence[str], index: Any, detections: Mapping[str, Iterable[Sequence[float]]],
                  ground_truth: Mapping[str, Iterable[Sequence[float]]], *, num_classes: int, theta: float,
                  frame_pred: Sequence[Any] | None = None, group: str = "", dataset: Any = None,
                  **meta: Any) -> "Predictions":
        """Detection outputs: per video (``videos``, the scorer's names, in ``index`` order) the
        detections ``(label 1..C, start, end, score)`` and ground truths ``(label, start, end)``;
        ``frame_pred`` optionally each video's per-frame argmax (0 = background)."""
        meta = {**(_dataset_meta(dataset) if dataset is not None else {}), **meta,
                "num_classes": int(num_classes), "theta": float(theta), "videos": [str(v) for v in videos]}
        pos = {v: k for k, v in enumerate(videos)}
        dets = [(pos[v], *d[:4]) for v in videos for d in detections.get(v, ())]
        gts = [(pos[v], *g[:3]) for v in videos for g in ground_truth.get(v, ())]
        dtype = _class_dtype(num_classes + 1)
        index = _numpy(index).reshape(-1)
        arrays = {
            "index": index.astype(_index_dtype(index)),
            "det_video": np.array([d[0] for d in dets], dtype=np.int32),
            "det_label": np.array([d[1] for d in dets], dtype=dtype),
            "det_start": np.array([d[2] for d in dets], dtype=np.float64),
            "det_end": np.array([d[3] for d in dets], dtype=np.float64),
            "det_score": np.array([d[4] for d in dets], dtype=np.float64),  # exact: AP sorts by it
            "gt_video": np.array([g[0] for g in gts], dtype=np.int32),
            "gt_label": np.array([g[1] for g in gts], dtype=dtype),
            "gt_start": np.array([g[2] for g in gts], dtype=np.float64),
            "gt_end": np.array([g[3] for g in gts], dtype=np.float64),
        }
        if frame_pred is not None:
            parts = [_numpy(p).reshape(-1) for p in frame_pred]
            arrays["frame_pred"] = (np.concatenate(parts) if parts else np.zeros(0)).astype(dtype)
            arrays["frame_offsets"] = np.cumsum([0] + [len(p) for p in parts]).astype(np.int64)
        return cls(INTERVALS, arrays, group, meta)

    # --- reading (any later analysis) -------------------------------------------------------------
    def correct(self) -> np.ndarray:
        """Per sample: the top-1 prediction is the true class (classification)."""
        return self.arrays["pred"] == self.arrays["label"]

    def accuracy(self) -> float:
        """Top-1 accuracy as the protocols compute it (correct / samples)."""
        n = len(self.arrays["label"])
        return int(self.correct().sum()) / max(n, 1)

    def topk_accuracy(self, k: int) -> float:
        if "topk" not in self.arrays:
            raise KeyError(f"{self.path or 'these predictions'}: no topk array (top-{k} cannot be recomputed)")
        hit = (self.arrays["topk"][:, :k] == self.arrays["label"][:, None]).any(axis=1)
        return int(hit.sum()) / max(len(hit), 1)

    def detections(self) -> tuple[dict[str, list], dict[str, list]]:
        """(proposals, ground truths) per video as the PKU-MMD scorer takes them
        (:mod:`harness.evaluation.pku_scorer`: ``Det`` and ``GT`` lists keyed by video name)."""
        from ..evaluation.pku_types import GT, Det

        a, videos = self.arrays, list(self.meta["videos"])
        props: dict[str, list] = {v: [] for v in videos}
        gts: dict[str, list] = {v: [] for v in videos}
        for k, c, s, e, sc in zip(a["det_video"], a["det_label"], a["det_start"], a["det_end"], a["det_score"]):
            v = videos[int(k)]
            props[v].append(Det(int(c), float(s), float(e), float(sc), v))
        for k, c, s, e in zip(a["gt_video"], a["gt_label"], a["gt_start"], a["gt_end"]):
            v = videos[int(k)]
            gts[v].append(GT(int(c), float(s), float(e), v))
        return props, gts


# --- identity, checksums, key ----------------------------------------------------------------------
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
