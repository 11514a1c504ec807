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

**Verification** (:mod:`harness.results.prediction_files`: ``read_predictions``, ``load_predictions``): a torn or foreign file, a
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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

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
