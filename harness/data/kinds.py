"""The dataset-kind seam: how ``harness data prepare KIND`` and ``--dataset NAME`` find a reader.

A dataset kind is a class registered with ``@DATASETS.register("name")``. It adds its own options
to the ``prepare`` parser and writes prepared folders with :class:`~harness.data.prepared.PreparedWriter`.
Kinds that can build themselves without user files (``synthetic``; ``msr-action3d`` from the real
data folder) also implement :meth:`auto_prepare`, which ``--dataset NAME`` uses through
:func:`resolve_dataset` (results are cached under ``<workdir>/datasets``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, ClassVar

from ..config import DataConfig, stable_hash
from ..errors import HarnessError
from .prepared import PreparedDataset, open_prepared


def real_data_dir() -> Path:
    """The folder of real test data: $HARNESS_REAL_DATA, else ../shared/data/real from the repo root."""
    env = os.environ.get("HARNESS_REAL_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"


class DatasetKind:
    name: ClassVar[str] = ""
    variants: ClassVar[tuple[str, ...]] = ()
    untrimmed_variant: ClassVar[str | None] = None  # the variant to use for detection, if any
    format_version: ClassVar[int] = 1  # bump when prepare's output changes, to refresh cached copies

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add KIND-specific options (``--raw``, ``--out`` and ``--overwrite`` are always there)."""

    @classmethod
    def prepare(cls, args: argparse.Namespace) -> list[Path]:  # pragma: no cover - abstract
        """Write prepared folder(s) under ``args.out``; return their paths."""
        raise NotImplementedError

    @classmethod
    def auto_prepare(cls, data: DataConfig, out: Path, *, untrimmed: bool = False) -> None:
        raise HarnessError(f"dataset {cls.name!r} needs your raw files: run `harness data prepare "
                           f"{cls.name} --raw SRC --out DIR` and pass --dataset DIR")

    @classmethod
    def cache_key(cls, data: DataConfig, untrimmed: bool) -> dict[str, Any]:
        key = {"kind": cls.name, "untrimmed": untrimmed, "num_samples": data.num_samples,
               "seed": data.seed, "options": data.options}
        if cls.format_version != 1:
            key["format_version"] = cls.format_version
        return key


def resolve_dataset(data: DataConfig, workdir: str | Path, *, untrimmed: bool = False) -> PreparedDataset:
    """Open ``data.dataset``: a prepared folder, or a registered name built (once) into the cache."""
    from ..registry import DATASETS

    target = data.dataset
    if os.sep in target or Path(target).exists():
        return open_prepared(target)
    kind: type[DatasetKind] = DATASETS.get(target)
    key = stable_hash(kind.cache_key(data, untrimmed))
    out = Path(workdir) / "datasets" / f"{target}{'-untrimmed' if untrimmed else ''}-{key}"
    if not (out / "meta.json").exists():
        kind.auto_prepare(data, out, untrimmed=untrimmed)
    return open_prepared(out)
