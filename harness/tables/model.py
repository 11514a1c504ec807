"""What a table is made of: markers and marks, the measures, paper and measured columns, the selector
of store rows, and the row and table specifications (docs in :mod:`harness.tables`)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..contracts.protocol import Measure
from ..errors import HarnessError
from ..registry import DATASETS, PROTOCOLS

TABLES = (1, 2, 3, 4, 5, 6)  # the paper's Tables 1–5 and the harness's diagnostics table 6
PAPER_TABLES = (1, 2, 3, 4, 5)
MARKER = "<!-- harness tables: table={table} dataset={dataset} preset={preset} -->"
MARKER_RE = re.compile(r"<!-- harness tables: table=(\d+) dataset=(\S+) preset=(\S+) -->")

NOT_RUN = "not run"
PAPER_NA = "—"
NOT_APPLICABLE = "·"
WARN = "⚠"
FUSED = "‡"
OLD = "†"  # rows whose pretraining budget is not recorded (an older configuration of the harness)
# the paired test of a cell against its untrained floor (harness.tables.statistics): its verdict's mark
ABOVE_FLOOR, BELOW_FLOOR, TIE_FLOOR = "▲", "▼", "tie"
VERDICT_MARKS = {"above": f" {ABOVE_FLOOR}", "below": f" {BELOW_FLOOR}", "tie": f" {TIE_FLOOR}"}

FLOOR_HEADER = "untrained floor"  # the column beside every measured one: the same backbone before training


def pretty_dataset(kind: str) -> str:
    """The dataset kind's own ``label`` (``DatasetKind.label``), else its name."""
    label = getattr(DATASETS.get(kind), "label", "") if kind in DATASETS else ""
    return label or kind


# --- what is measured --------------------------------------------------------------------------
class _Measures(Mapping):
    """Every registered protocol's :class:`~harness.contracts.Measure`, by key (read from the
    registry, so a protocol a plugin registers is found; rebuilt only when the registered protocol
    classes change, since a table asks for a measure once per cell)."""

    def __init__(self) -> None:
        self._key: tuple = ()
        self._cache: dict[str, Measure] = {}

    def _all(self) -> dict[str, Measure]:
        key = tuple((e.name, id(e.obj)) for e in PROTOCOLS.entries())
        if key != self._key:
            self._cache, self._key = self._build(), key
        return self._cache

    def _build(self) -> dict[str, Measure]:
        out: dict[str, Measure] = {}
        for name in PROTOCOLS.names():
            for m in getattr(PROTOCOLS.get(name), "measures", ()):
                if m.key in out:
                    raise HarnessError(f"protocols {out[m.key].protocol!r} and {name!r} both declare the table "
                                       f"measure {m.key!r}")
                out[m.key] = dataclasses.replace(m, protocol=name)
        return out

    def __getitem__(self, key: str) -> Measure:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


MEASURES: Mapping[str, Measure] = _Measures()


@dataclass(frozen=True)
class PaperColumn:
    label: str
    measure: str
    dataset: str  # the paper's dataset kind
    split: str


@dataclass(frozen=True)
class MeasuredColumn:
    measure: str
    split: str
    sub: str = ""


# --- which store rows a table row reads ---------------------------------------------------------
@dataclass(frozen=True)
class Selector:
    method: str
    variant: str = "default"
    encoder: str | None = None  # None: any encoder
    modality: str | None = "joint"  # None: any modality
    fused: bool = False  # a 3-stream ensemble recorded by harness fuse (extra holds "weights")
    checkpoint: str = ""  # rows evaluated from this file (sha256; harness run --checkpoint); "" = pretrained here

    def describe(self) -> str:
        parts = [self.method if self.variant == "default" else f"{self.method} {self.variant}"]
        if self.encoder:
            parts.append(self.encoder)
        if self.fused:
            parts.append("J+M+B fused")
        elif self.modality not in (None, "joint"):
            parts.append(self.modality)
        if self.checkpoint:
            parts.append(f"--checkpoint sha256 {self.checkpoint[:12]}")
        return " · ".join(parts)


@dataclass
class RowSpec:
    label: str
    info: tuple[str, ...] = ()  # the leading descriptive cells (publisher, modality / row, what, encoder)
    paper: tuple[float | None, ...] | None = None  # None: not a paper row (extra harness row)
    selector: Selector | None = None  # None: a paper-only row
    group: str = ""  # a group header row above this one when the group changes
    expand_encoders: bool = False  # one row per encoder found in the store (extra rows)
    run_note: str = ""  # shown after the selector in the "harness run" column


@dataclass
class TableSpec:
    number: int
    title: str
    info_headers: tuple[str, ...]
    columns: tuple[PaperColumn, ...]
    rows: list[RowSpec]
    notes: tuple[str, ...] = ()
    extra_measures: tuple[str, ...] = ()  # measured beside the paper's, with no paper column (diagnostics)

    @property
    def measures(self) -> list[str]:
        """The paper columns' measures, the table's extra ones, then those protocols add to it."""
        out: list[str] = []
        added = [key for key, m in MEASURES.items() if self.number in m.tables]
        for key in [c.measure for c in self.columns] + list(self.extra_measures) + added:
            if key not in out:
                out.append(key)
        return out


EXTRA_GROUP = "Extra rows: harness runs, not in the paper"


