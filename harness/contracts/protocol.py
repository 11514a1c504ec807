"""The protocol and dataset-kind seams (harness.contracts)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch

from ..config import DataConfig, RunConfig, plugin_options, stable_hash
from ..errors import HarnessError
from ..results import ResultRow

@dataclass
class ProtocolContext:
    cfg: RunConfig
    dataset: Any  # the evaluation PreparedDataset (for detection: an untrimmed one), opened once
    make_backbone: Callable[[], Any]  # a fresh Backbone with the pretrained weights loaded
    device: torch.device
    run_dir: Path  # where the protocol may keep files (per-sample scores, subsets)
    base_row: dict[str, Any] = field(default_factory=dict)  # method, variant, encoder, ... for rows

    @property
    def split(self) -> str:
        return self.cfg.protocol.split or self.cfg.data.split

    def row(self, metric: str, value: float, **fields: Any):
        """A result row with this run's identity (method, dataset, preset, hashes...) filled in."""
        merged = {**self.base_row, "split": self.split, **fields}
        return ResultRow(metric=metric, value=float(value), **merged)


@dataclass(frozen=True)
class Measure:
    """A column a protocol's rows fill in the tables: which ``metric`` of the protocol's rows, its
    short header ``label`` and one sentence ``what`` for the table's header. The paper's tables name
    the measures they read (``harness.tables.specs``); ``tables`` adds this one as an extra column
    to those tables, so a new protocol reaches a table through its own file."""

    key: str
    metric: str
    label: str  # short name for a column header ("Recog.")
    what: str = ""  # one sentence for the table header
    fused_metric: str | None = None  # the metric of fused 3-stream rows (harness fuse), if they count
    sub_key: str | None = None  # an ``extra`` key that splits measured columns (detection variant)
    sub_default: str = ""  # the sub column shown when the store has none
    extra_equals: tuple[tuple[str, Any], ...] = ()  # ``extra`` values a row must have when present
    scale: float = 100.0  # display factor: fractions in %, 1 for counts such as the effective rank
    optional: bool = False  # an extra measure shown only where the store has rows of it
    tables: tuple[int, ...] = ()  # tables that show it as an extra column
    # the value is the share of the split's test samples a prediction got right (an accuracy): its
    # interval adds the test set's sampling variance (harness.tables.statistics); False: seeds only
    proportion: bool = False
    beside: str = ""  # another measure's key: the columns are laid out right after that measure's
    protocol: str = ""  # the declaring protocol's name (filled in by the tables' lookup)


@dataclass(frozen=True)
class ReproduceFlag:
    """A ``harness reproduce`` option a protocol adds for its own runs: ``--flag VALUE`` sets
    ``protocol.options.<option>`` of every planned run of the protocol (``default`` when not given)."""

    flag: str  # "--detection-variant"
    option: str  # "variant"
    choices: tuple[str, ...]
    default: str
    help: str = ""


class Protocol:
    name: ClassVar[str] = ""
    measures: ClassVar[tuple[Measure, ...]] = ()  # what the tables read from its rows
    # --- what `harness reproduce` reads ---
    plan_seeds: ClassVar[tuple[int, ...]] = (0,)  # protocol seeds a reproduced table runs by default
    seeded: ClassVar[bool] = True  # False: one deterministic evaluation, protocol.seeds unused (kNN)
    fuses_streams: ClassVar[bool] = False  # True: 3-stream rows fuse its per-seed score files
    reproduce_flags: ClassVar[tuple[ReproduceFlag, ...]] = ()
    Options: ClassVar[type | None] = None
    variants: ClassVar[tuple[str, ...]] = ()
    untrimmed: ClassVar[bool] = False  # True: evaluates on untrimmed videos (detection)
    preset_defaults: ClassVar[dict[str, dict[str, Any]]] = {}  # preset → option defaults
    moved_options: ClassVar[dict[str, str]] = {}

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.options = self.resolve_options(cfg)

    @classmethod
    def resolve_options(cls, cfg: RunConfig) -> Any:
        for old, new in cls.moved_options.items():
            if old in cfg.protocol.options:
                raise HarnessError(f"protocol.options.{old} ({cls.name}) moved: set {new} instead")
        if cls.Options is None:
            return None
        return plugin_options(cls.Options, cfg.preset, cls.preset_defaults, cfg.protocol.options,
                              where=f"protocol.options ({cls.name})")

    def eval_data(self, data: DataConfig) -> DataConfig:
        """The data config the evaluation dataset is resolved from (e.g. detection asks a generated
        untrimmed set for more videos); the default is ``data`` itself."""
        return data

    def run(self, ctx: ProtocolContext) -> list:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe_seeds(self) -> str:
        """How a reproduce plan lists this run's seeds."""
        return ",".join(map(str, self.cfg.protocol.seeds)) if self.seeded else "—"

    @staticmethod
    def score_file(run_dir: Path, dataset: str, split: str, seed: int) -> Path:
        """Where a protocol with ``fuses_streams`` keeps one seed's per-sample scores (``run_dir``:
        its evaluation folder)."""
        raise NotImplementedError


# --- dataset kinds -------------------------------------------------------------------------------
class DatasetKind:
    """``harness data prepare KIND``: ``add_arguments`` + ``prepare(args)``; kinds that can build
    themselves without user files (synthetic; real sets found in the real-data folder) also
    implement :meth:`auto_prepare`, which ``--dataset NAME`` uses (cached under
    ``<workdir>/datasets``)."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""  # how tables and figures name its measurements ("" = the name)
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

    @classmethod
    def cache_name(cls, data: DataConfig, untrimmed: bool) -> str:
        return f"{cls.name}{'-untrimmed' if untrimmed else ''}-{stable_hash(cls.cache_key(data, untrimmed))}"
