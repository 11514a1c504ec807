"""How ``--dataset NAME|PATH`` finds its prepared folder (:func:`resolve_dataset`), and where the real
test data lives (:func:`real_data_dir`).

A dataset kind is a :class:`harness.contracts.DatasetKind` registered with
``@DATASETS.register("name")`` (re-exported here for the readers that subclass it). Kinds that can
build themselves without user files (``synthetic``; ``msr-action3d`` and ``nw-ucla`` from the real
data folder) implement ``auto_prepare``, which ``--dataset NAME`` uses; the result is cached under
``<workdir>/datasets``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, ClassVar

from ..config import DataConfig
from ..contracts import DatasetKind
from .prepared import PreparedDataset, open_prepared

__all__ = ["DatasetKind", "real_data_dir", "resolve_dataset"]


def real_data_dir() -> Path:
    """The folder of real test data: $HARNESS_REAL_DATA, else ../shared/data/real from the repo root."""
    env = os.environ.get("HARNESS_REAL_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"


def resolve_dataset(data: DataConfig, workdir: str | Path, *, untrimmed: bool = False) -> PreparedDataset:
    """Open ``data.dataset``: a prepared folder, or a registered name built (once) into the cache."""
    from ..registry import DATASETS

    target = data.dataset
    if os.sep in target or Path(target).exists():
        return open_prepared(target)
    kind: type[DatasetKind] = DATASETS.get(target)
    out = Path(workdir) / "datasets" / kind.cache_name(data, untrimmed)
    if not (out / "meta.json").exists():
        kind.auto_prepare(data, out, untrimmed=untrimmed)
    return open_prepared(out)
