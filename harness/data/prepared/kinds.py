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
from typing import ClassVar

from ...config import DataConfig
from ...contracts import DatasetKind
from ...errors import HarnessError
from .format import PreparedDataset, open_prepared

__all__ = ["DatasetKind", "RealSetKind", "real_data_dir", "resolve_dataset"]


def real_data_dir() -> Path:
    """The folder of real test data: $HARNESS_REAL_DATA, else ../shared/data/real from the repo root."""
    env = os.environ.get("HARNESS_REAL_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[4] / "shared" / "data" / "real"


class RealSetKind(DatasetKind):
    """A trimmed real set converted from a folder of its own files, found in the real-data folder when
    no ``--raw`` is given (``msr-action3d``, ``nw-ucla``). Subclasses name the folder (``folder``,
    under :func:`real_data_dir`), the set (``title``), the ``--raw`` help (``raw_help``) and the
    converter (``convert(raw, out, overwrite=, normalize=)``)."""

    folder: ClassVar[str] = ""
    title: ClassVar[str] = ""
    raw_help: ClassVar[str] = ""

    @classmethod
    def convert(cls, raw: Path, out: str | Path, *, overwrite: bool, normalize: bool) -> Path:
        raise NotImplementedError

    @classmethod
    def default_raw(cls) -> Path:
        folder = real_data_dir() / cls.folder
        if not folder.is_dir():
            raise HarnessError(f"{cls.title} not found at {folder}: set HARNESS_REAL_DATA, pass --raw "
                               "FOLDER, or set data.options.raw=FOLDER")
        return folder

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.description = cls.raw_help
        parser.add_argument("--raw-coordinates", action="store_true",
                            help="keep raw camera coordinates (default: hip-centred, shoulders on +x)")

    @classmethod
    def prepare(cls, args: argparse.Namespace) -> list[Path]:
        raw = Path(args.raw) if args.raw else cls.default_raw()
        return [cls.convert(raw, args.out, overwrite=args.overwrite, normalize=not args.raw_coordinates)]

    @classmethod
    def auto_prepare(cls, data: DataConfig, out: Path, *, untrimmed: bool = False) -> None:
        if untrimmed:
            raise HarnessError(f"{cls.name} has trimmed clips only: it cannot serve an untrimmed "
                               "(detection) protocol")
        raw = Path(data.options["raw"]) if data.options.get("raw") else cls.default_raw()
        cls.convert(raw, out, overwrite=True, normalize=not data.options.get("raw_coordinates", False))


def resolve_dataset(data: DataConfig, workdir: str | Path, *, untrimmed: bool = False) -> PreparedDataset:
    """Open ``data.dataset``: a prepared folder, or a registered name built (once) into the cache."""
    from ...registry import DATASETS

    target = data.dataset
    if os.sep in target or Path(target).exists():
        return open_prepared(target)
    kind: type[DatasetKind] = DATASETS.get(target)
    out = Path(workdir) / "datasets" / kind.cache_name(data, untrimmed)
    if not (out / "meta.json").exists():
        kind.auto_prepare(data, out, untrimmed=untrimmed)
    return open_prepared(out)
