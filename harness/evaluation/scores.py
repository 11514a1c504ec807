"""Per-sample scores kept by protocols so that joint, bone and motion models can be fused later."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from harness import atomic
from harness.errors import DataError, HarnessError


def save_scores(path: str | Path, scores: torch.Tensor, labels: torch.Tensor, index: np.ndarray) -> Path:
    """Write (N, C) class scores, labels and dataset indices of the evaluated samples (atomically)."""
    path = Path(path)
    with atomic.atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, scores=scores.detach().float().cpu().numpy(), labels=labels.cpu().numpy(),
                     index=np.asarray(index, dtype=np.int64))
    return path


def load_scores(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    try:
        with np.load(path) as z:
            out = {k: z[k] for k in ("scores", "labels", "index")}
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(path, f"not a scores file (expected scores, labels, index): {exc}") from None
    if out["scores"].ndim != 2 or len(out["scores"]) != len(out["labels"]):
        raise DataError(path, f"scores shape {out['scores'].shape} does not match {len(out['labels'])} labels")
    return out


def fuse_scores(files: list[str], weights: list[float], softmax: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The weighted sum of several models' per-sample scores (each softmax-normalised first unless
    ``softmax`` is False) and the labels; the files must evaluate the same samples."""
    loaded = [load_scores(f) for f in files]
    ref = loaded[0]
    total = np.zeros_like(ref["scores"], dtype=np.float64)
    for f, s, w in zip(files, loaded, weights):
        if not np.array_equal(s["index"], ref["index"]) or not np.array_equal(s["labels"], ref["labels"]):
            raise HarnessError(f"{f}: evaluates other samples than {files[0]} (indices or labels differ)")
        if s["scores"].shape != ref["scores"].shape:
            raise HarnessError(f"{f}: score shape {s['scores'].shape} differs from {ref['scores'].shape}")
        x = s["scores"].astype(np.float64)
        if softmax:
            x = np.exp(x - x.max(axis=1, keepdims=True))
            x /= x.sum(axis=1, keepdims=True)
        total += w * x
    return total, ref["labels"]
