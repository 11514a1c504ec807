"""What a table or figure needs: the planned runs (``harness reproduce --dry-run`` lists them).

A table's runs come from the registry: every registered method's :class:`~harness.contracts.TableRow`
that the table shows becomes a run of each protocol the table's measures read (Table 1: ``linear``
and ``features``; 2: ``semi``; 3: ``knn``; 4: ``detection``, fine-tuned as in the paper; 5: ``linear``
and ``knn``; 6: ``features``), at the row's variant, encoder and modality. A row with fused streams
(3s-USDRL) becomes a :class:`PlannedFuse` of its stream runs. Every run's **untrained floor** (method
``random`` with the run's encoder and modality) is planned too, so a new method's floor comes for
free. Every run is planned once per pretraining seed (``train.seed``).

Figure 4 sweeps the key of the method whose ``figure_roles`` has a Figure 4 part (USDRL (DSTE)'s
``encoder.options.alpha``); Figure 5 pretrains every method's Figure 5 panels (four DSTE backbones).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from .. import paper
from ..config import RunConfig, load_config
from ..resolve import ResolvedConfig, resolve_config
from ..contracts import FUSED_MODALITY, figure_roles
from ..errors import HarnessError
from ..registry import ENCODERS, METHODS, PROTOCOLS
from ..results.read import CAMPAIGN_STORE
from ..tables import MEASURES, table_specs
from ..floors import floor_backbone
from ..tables.specs import method_rows

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFAULT_PRETRAIN_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class PlannedRun:
    target: str  # what it is for: "Table 5 row 2", "Figure 4 α=0.25"
    method: str
    protocol: str  # "" = pretraining only (Figure 5)
    variant: str = "default"
    encoder: str | None = None  # None: the method's default encoder
    modality: str = ""  # "": the method's default modality
    seeds: tuple[int, ...] = (0,)  # protocol seeds
    pretrain_seed: int = 0
    protocol_options: tuple[tuple[str, Any], ...] = ()
    sweep: tuple[tuple[str, Any], ...] = ()  # settings a figure sweeps; recorded in extra.overrides

    def overrides(self) -> list[str]:
        out = [f"method.name={self.method}", f"method.variant={self.variant}", f"train.seed={self.pretrain_seed}"]
        if self.modality:
            out.append(f"method.modality={self.modality}")
        if self.encoder:
            out.append(f"encoder.name={self.encoder}")
        if self.protocol:
            out += [f"protocol.name={self.protocol}", f"protocol.seeds={list(self.seeds)}"]
            out += [f"protocol.options.{k}={json.dumps(v)}" for k, v in self.protocol_options]
        out += [f"{k}={json.dumps(v)}" for k, v in self.sweep]
        return out

    def describe_settings(self) -> str:
        parts = [f"{k}={v}" for k, v in self.protocol_options] + [f"{k}={v}" for k, v in self.sweep]
        return ", ".join(parts)


@dataclass(frozen=True)
class PlannedFuse:
    """Fuse the per-seed scores of stream runs (J, B, M) into 3-stream rows (modality jbm), for the
    protocol of the streams (one whose ``fuses_streams`` is set)."""

    target: str
    streams: tuple[PlannedRun, ...]

    @property
    def protocol(self) -> str:
        return self.streams[0].protocol

    @property
    def method(self) -> str:
        return self.streams[0].method

    @property
    def pretrain_seed(self) -> int:
        return self.streams[0].pretrain_seed


PlanItem = PlannedRun | PlannedFuse


@dataclass
class Settings:
    preset: str = "cpu"
    dataset: str | None = None  # None: the preset's data.dataset
    workdir: str | None = None
    results: str | None = None  # None: the committed campaign store results/ (never <workdir>/results)
    config_file: str | None = None
    overrides: list[str] = field(default_factory=list)  # the user's --set values
    eval_dataset: str | None = None  # protocol.dataset for every protocol run (e.g. a PKU-MMD folder)

    def base(self) -> RunConfig:
        return load_config(self.preset, self.config_file, [*self.overrides, *self._locations()])

    def _locations(self) -> list[str]:
        return [f"{key}={value}" for value, key in ((self.dataset, "data.dataset"), (self.workdir, "workdir"),
                                                    (self.results or CAMPAIGN_STORE, "results"))
                if value is not None]

    def config(self, run: PlannedRun) -> ResolvedConfig:
        """preset → YAML → the user's --set → the run's own settings → dataset and folders, resolved."""
        extra = [f"protocol.dataset={self.eval_dataset}"] if self.eval_dataset and run.protocol else []
        return resolve_config(self.preset, self.config_file,
                              [*self.overrides, *run.overrides(), *extra, *self._locations()])


# --- plans ------------------------------------------------------------------------------------------
def table_protocols(table: int) -> list[str]:
    """The protocols a table's measures read, in the table's order."""
    out: list[str] = []
    for key in table_specs()[table].measures:
        if MEASURES[key].protocol not in out:
            out.append(MEASURES[key].protocol)
    return out


def _floor_of(run: PlannedRun) -> PlannedRun | None:
    """The untrained floor of a run: ``random`` with the backbone the run's method trains."""
    backbone = floor_backbone(run.method, run.encoder, None)
    if backbone is None:
        return None
    floor, encoder, default_modality = backbone
    fused = getattr(ENCODERS.get(encoder), "input_modality", None) if encoder in ENCODERS else None
    modality = run.modality or fused or default_modality
    return replace(run, target=f"floor of {run.target}", method=floor, variant="default", encoder=encoder,
                   modality="" if modality == "joint" or modality == FUSED_MODALITY else modality,
                   sweep=())


def flag_options(protocol: str, flags: dict[str, str] | None) -> tuple[tuple[str, Any], ...]:
    """The protocol's ``reproduce_flags`` as protocol options: the user's value (by flag) or the default."""
    chosen = flags or {}
    return tuple((f.option, chosen.get(f.flag, f.default)) for f in PROTOCOLS.get(protocol).reproduce_flags)


def default_seeds(protocol: str) -> tuple[int, ...]:
    return tuple(PROTOCOLS.get(protocol).plan_seeds)


def _table_runs(table: int, wanted: set[str], seeds: Sequence[int] | None,
                flags: dict[str, str] | None = None) -> list[PlanItem]:
    protocols = table_protocols(table)
    items: list[PlanItem] = []
    for cls, row in method_rows():
        if table not in row.tables or cls.name not in wanted:
            continue
        label = f"Table {table}: {row.paper_label(table) or row.label}"
        for protocol in protocols:
            if row.fuse and not PROTOCOLS.get(protocol).fuses_streams:
                continue
            opts = flag_options(protocol, flags)
            s = tuple(seeds) if seeds else default_seeds(protocol)
            base = PlannedRun(label, cls.name, protocol, variant=row.variant, encoder=row.encoder, seeds=s,
                              protocol_options=opts)
            if row.fuse:
                streams = tuple(replace(base, target=f"{label} {m} stream", modality="" if m == "joint" else m)
                                for m in row.fuse)
                items += [*streams, PlannedFuse(label, streams)]
            else:
                items.append(replace(base, modality=row.modality or ""))
    return items


def with_floors(items: list[PlanItem]) -> list[PlanItem]:
    """The plan plus the untrained floor of every run, once each, after the runs."""
    out, floors, keys = list(items), [], set()
    for item in items:
        for run in (item.streams if isinstance(item, PlannedFuse) else (item,)):
            floor = _floor_of(run)
            if floor is None:
                continue
            key = (floor.encoder, floor.modality, floor.protocol, floor.protocol_options, floor.seeds)
            if key not in keys:
                keys.add(key)
                floors.append(replace(floor, target=f"untrained floor ({floor.encoder}"
                                                   f"{', ' + floor.modality if floor.modality else ''}), "
                                                   f"{floor.protocol}"))
    return out + floors


def per_pretrain_seed(items: list[PlanItem], pretrain_seeds: Sequence[int]) -> list[PlanItem]:
    """Every run once per pretraining seed (fused items fuse the streams of their own seed)."""
    out: list[PlanItem] = []
    for s in pretrain_seeds:
        for item in items:
            if isinstance(item, PlannedFuse):
                out.append(PlannedFuse(f"{item.target} [pretrain seed {s}]",
                                       tuple(replace(r, pretrain_seed=s) for r in item.streams)))
            else:
                out.append(replace(item, target=f"{item.target} [pretrain seed {s}]", pretrain_seed=s))
    return out


def plan(*, table: int | None = None, figure: int | None = None, methods: Sequence[str] | None = None,
         seeds: Sequence[int] | None = None, pretrain_seeds: Sequence[int] = DEFAULT_PRETRAIN_SEEDS,
         alphas: Sequence[float] = ALPHAS, default_alpha: float = 0.5, floors: bool = True,
         flags: dict[str, str] | None = None) -> list[PlanItem]:
    """The runs one table or figure needs, in order, restricted to ``methods`` when given; ``flags``
    holds the values of the protocols' own ``reproduce_flags`` (e.g. ``{"--detection-variant": "linear"}``)."""
    if (table is None) == (figure is None):
        raise HarnessError("choose one of --table N or --figure N")
    wanted = set(methods) if methods else set(METHODS.names())
    unknown = wanted - set(METHODS.names())
    missing: list[PlanItem] = [PlannedRun(f"{m} (not installed)", m, "") for m in sorted(unknown)]
    items: list[PlanItem] = []
    wanted -= unknown
    if table is not None:
        if table not in table_specs():
            raise HarnessError(f"no table {table}: Tables 1-5 are the paper's, 6 the collapse diagnostics")
        items += _table_runs(table, wanted, seeds, flags)
    elif figure == 4:
        floors = False  # the figure compares α settings of one method (the one whose figure_roles say so)
        for method, role in figure_roles(4):
            if method not in wanted:
                continue
            s = tuple(seeds) if seeds else default_seeds(paper.FIGURE4_PROTOCOL)
            for a in alphas:
                sweep = () if float(a) == float(default_alpha) else ((role.sweep, float(a)),)
                items.append(PlannedRun(f"Figure 4 α={a:g}", method, paper.FIGURE4_PROTOCOL, variant=role.variant,
                                        encoder=role.encoder, seeds=s, sweep=sweep))
    elif figure == 5:
        floors = False
        for method, role in figure_roles(5):
            if method in wanted:
                items.append(PlannedRun(f"Figure 5 {method} {role.variant}", method, "", variant=role.variant,
                                        encoder=role.encoder))
    else:
        raise HarnessError(f"no figure {figure} to reproduce: Figure 4 (α sweep) and Figure 5 (t-SNE) have runs")
    if floors:
        items = with_floors(items)
    return missing + per_pretrain_seed(items, pretrain_seeds)  # a missing method is reported once, not per seed
