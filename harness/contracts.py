"""The contracts between the core and its plugins: every seam a method, encoder, protocol or dataset
kind implements, in one place.

The core (``harness``: engine, CLI, tables, tuning) uses only these classes; the plugins (the
packages ``harness.methods`` and ``harness.protocols``, and third-party distributions) subclass them
and are reached only through the registry (:mod:`harness.registry`). docs/extending.md walks through
writing each kind.

- :class:`DataInfo`: what a method learns about the data it trains on (topology, sizes, budget).
- :class:`Encoder`: ``(N, C, T, V, M) → EncoderOutput`` with its own ``Options``.
- :class:`Backbone` / :class:`ModalityBackbone`: what protocols evaluate (joint clip → features).
- :class:`Method`: views + loss terms + the backbone it trains, and a description of itself (label,
  paradigm, encoders, table rows, tunable weights, training defaults) that tables, ``reproduce`` and
  ``tune`` read.
- :class:`Protocol` / :class:`ProtocolContext`: a backbone + a prepared dataset → result rows.
- :class:`DatasetKind`: ``harness data prepare KIND`` and ``--dataset NAME``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from .config import DataConfig, RunConfig, plugin_options, stable_hash
from .data.modality import MODALITIES, to_modality
from .data.topology import Topology
from .errors import HarnessError, UnknownNameError
from .registry import ENCODERS, METHODS

FUSED_MODALITY = "jbm"  # an encoder that fuses joint, bone and motion itself takes joint coordinates


@dataclass(frozen=True)
class DataInfo:
    """What a method needs to know about the data it trains on.

    ``train_samples``, ``batch_size`` (global) and ``total_steps`` (the optimizer steps of the whole
    run) let a method derive data- and budget-dependent settings from stated rules (a queue sized to
    the training set, an EMA momentum for the budget); 0 when unknown (e.g. a backbone rebuilt for
    evaluation, where those settings do not matter).
    """

    topology: Topology
    num_classes: int
    frames: int  # T after resampling
    persons: int  # M
    train_samples: int = 0
    batch_size: int = 0
    total_steps: int = 0

    @property
    def joints(self) -> int:
        return self.topology.num_joints

    def to_dict(self) -> dict[str, Any]:
        return {"topology": self.topology.to_dict(), "num_classes": self.num_classes, "frames": self.frames,
                "persons": self.persons, "train_samples": self.train_samples, "batch_size": self.batch_size,
                "total_steps": self.total_steps}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str | Path | None = None) -> "DataInfo":
        return cls(topology=Topology.from_dict(d["topology"], where), num_classes=int(d["num_classes"]),
                   frames=int(d["frames"]), persons=int(d["persons"]), train_samples=int(d.get("train_samples", 0)),
                   batch_size=int(d.get("batch_size", 0)), total_steps=int(d.get("total_steps", 0)))


# --- encoders ----------------------------------------------------------------------------------
@dataclass
class EncoderOutput:
    pooled: torch.Tensor  # (N, feature_dim): the instance representation used by linear/kNN
    temporal: torch.Tensor | None = None  # (N, T', D) temporal tokens
    spatial: torch.Tensor | None = None  # (N, S, D) spatial tokens (S = V·M for DSTE/STTR)


class Encoder(nn.Module):
    """Base class of registered encoders: ``Encoder(options, in_channels=, frames=, joints=, persons=,
    topology=)``. Nothing may assume 25 joints or 2 persons.

    ``Options`` is a dataclass of the encoder's own settings (``--set encoder.options.NAME=VALUE``,
    checked with suggestions), ``preset_defaults`` its per-preset sizes. Subclasses set
    ``feature_dim`` (pooled width) and ``frame_dim`` (width of :meth:`frame_features`, 0 if none) and
    implement :meth:`forward`; ``init_weights()``, when present, is the reference initialisation.
    ``dense`` says whether ``forward`` returns temporal and spatial tokens; ``input_modality`` is
    :data:`FUSED_MODALITY` for an encoder that derives bone and motion itself from joint coordinates.
    """

    name: ClassVar[str] = ""
    Options: ClassVar[type | None] = None
    preset_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    dense: ClassVar[bool] = True
    input_modality: ClassVar[str | None] = None
    feature_dim: int
    frame_dim: int

    def __init__(self, options: Any, *, in_channels: int = 3, frames: int = 64, joints: int = 25,
                 persons: int = 2, topology: Topology | None = None):
        super().__init__()
        self.options = options
        self.in_channels, self.frames, self.joints, self.persons = in_channels, frames, joints, persons
        self.topology = topology

    @classmethod
    def resolve_options(cls, cfg: RunConfig) -> Any:
        if cls.Options is None:
            if cfg.encoder.options:
                raise HarnessError(f"encoder {cls.name!r} takes no options, got encoder.options={cfg.encoder.options}")
            return None
        return plugin_options(cls.Options, cfg.preset, cls.preset_defaults, cfg.encoder.options,
                              where=f"encoder.options ({cls.name})")

    def forward(self, x: torch.Tensor) -> EncoderOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """Dense per-frame features (N, T, frame_dim) for frame-wise tasks such as detection."""
        raise NotImplementedError(f"{type(self).__name__} has no dense per-frame output")


def build_encoder(cfg: RunConfig, info: DataInfo, *, name: str | None = None, in_channels: int = 3,
                  reference_init: bool = False) -> Encoder:
    """The run's encoder (``name`` or ``cfg.encoder.name``) with its resolved options;
    ``reference_init`` applies its ``init_weights()`` if it has one."""
    name = name or cfg.encoder.name or METHODS.get(cfg.method.name).encoder_name(cfg)
    cls = ENCODERS.get(name)
    encoder = cls(cls.resolve_options(cfg), in_channels=in_channels, frames=info.frames, joints=info.joints,
                  persons=info.persons, topology=info.topology)
    if reference_init and callable(getattr(encoder, "init_weights", None)):
        encoder.init_weights()
    return encoder


# --- backbones -----------------------------------------------------------------------------------
class Backbone(nn.Module):
    """What protocols see: a joint-coordinate clip (N, 3, T, V, M) → EncoderOutput.

    It applies the method's own input transform (modality, fusion) before its encoder, so a protocol
    never needs to know which method produced it. ``feature_dim`` is the pooled width and
    ``frame_dim`` the width of ``frame_features`` (dense (N, T, frame_dim), used by detection).
    """

    feature_dim: int
    frame_dim: int

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class ModalityBackbone(Backbone):
    """Joint-coordinate clip → modality (joint | bone | motion) → encoder: the backbone of every
    method that trains a registered encoder on one modality."""

    def __init__(self, encoder: Encoder, modality: str, topology: Topology):
        super().__init__()
        fused = getattr(encoder, "input_modality", None)
        allowed = (fused,) if fused else MODALITIES
        if modality not in allowed:
            raise UnknownNameError(f"modality for encoder {type(encoder).__name__}", modality, list(allowed))
        self.encoder = encoder
        self.modality = modality
        self.topology = topology
        self.feature_dim = encoder.feature_dim
        self.frame_dim = getattr(encoder, "frame_dim", 0)  # 0: the encoder has no dense output

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.modality == FUSED_MODALITY else to_modality(x, self.modality, self.topology)

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        return self.encoder(self.prepare(x))

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.frame_features(self.prepare(x))


# --- methods -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TableRow:
    """A row a method fills in the paper tables, or adds to them as an extra harness row.

    ``paper`` pairs a table number with the paper's row label this row fills ((5, "7") is Table 5
    row 7), optionally with a note for that table's "harness run" column; in the other tables of
    ``tables`` it is an extra row. ``encoder`` None shows one row per
    encoder found in the store (``reproduce`` runs the default encoder). ``fuse`` makes it a
    3-stream ensemble of those modalities (``harness fuse``).
    """

    label: str
    encoder: str | None = None
    variant: str = "default"
    modality: str | None = "joint"  # None: rows of any modality
    fuse: tuple[str, ...] = ()
    tables: tuple[int, ...] = (1, 2, 3, 4, 5, 6)  # 6 is the harness's collapse-diagnostics table
    paper: tuple[tuple[Any, ...], ...] = ()  # (table, paper row label[, note shown in that table])
    note: str = ""  # shown in the "harness run" column of every table the row is in
    order: float | None = None  # where an extra row is listed (None: the method's ``table_order``)

    def paper_label(self, table: int) -> str | None:
        return next((p[1] for p in self.paper if p[0] == table), None)

    def note_for(self, table: int) -> str:
        return next((p[2] for p in self.paper if p[0] == table and len(p) > 2), self.note)


class Method(nn.Module):
    """Base class of registered methods.

    Subclasses define ``Options`` (a dataclass read from ``method.options``), ``variants`` (named
    option sets), ``num_views``, and implement :meth:`make_views`, :meth:`forward` and
    :meth:`backbone`. They describe themselves for the tables, ``reproduce`` and ``tune``:

    - ``label`` / ``paradigm``: how tables name the method and which family it belongs to;
    - ``encoders``: the registered encoders it can train (None: any), ``default_encoder``;
    - ``modalities`` / ``default_modality``;
    - ``table_rows``: the rows it fills (default: one extra row per table, every encoder found);
    - ``tunable``: alias → ``Options`` field of the weights ``harness tune`` may search;
    - ``train_defaults``: preset → ``train.*`` values of its reference recipe ("*" = every preset),
      applied after the preset and before the user's YAML and ``--set``.

    Its untrained floor is the ``random`` method with the same encoder and modality: nothing to write.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    paradigm: ClassVar[str] = ""
    Options: ClassVar[type | None] = None
    variants: ClassVar[dict[str, dict[str, Any]]] = {"default": {}}
    preset_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    moved_options: ClassVar[dict[str, str]] = {}  # old option name → the key that replaces it
    train_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    encoders: ClassVar[tuple[str, ...] | None] = None
    default_encoder: ClassVar[str] = "dste"
    modalities: ClassVar[tuple[str, ...]] = MODALITIES
    default_modality: ClassVar[str] = "joint"
    table_rows: ClassVar[tuple[TableRow, ...]] = ()
    table_order: ClassVar[float] = 60  # extra rows are listed by it (references last)
    tunable: ClassVar[dict[str, str]] = {}
    num_views: ClassVar[int] = 2
    needs_labels: ClassVar[bool] = False  # True for the supervised baseline
    pretrains: ClassVar[bool] = True  # False for the random-init floor: nothing to train
    is_floor: ClassVar[bool] = False  # True for the method whose rows are every backbone's floor

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__()
        self.cfg, self.info = cfg, info
        self.check_config(cfg)
        self.options = self.resolve_options(cfg)

    # --- description ---------------------------------------------------------------------------
    @classmethod
    def display_label(cls) -> str:
        return cls.label or cls.name

    @classmethod
    def rows(cls) -> tuple[TableRow, ...]:
        return cls.table_rows or (TableRow(f"{cls.display_label()} (harness)"),)

    @classmethod
    def encoder_name(cls, cfg: RunConfig) -> str:
        """The encoder this run trains: ``encoder.name``, else the method's default; checked."""
        name = cfg.encoder.name or cls.default_encoder
        if cls.encoders is not None and name not in cls.encoders:
            own = ", ".join(repr(e) for e in cls.encoders)
            raise HarnessError(f"method {cls.name!r} trains its own backbone ({own}); encoder={name!r} cannot be "
                               f"used with it: leave encoder unset" + (f" or use one of {own}" if len(cls.encoders) > 1
                                                                       else ""))
        if name not in ENCODERS:
            raise UnknownNameError("encoder", name, ENCODERS.names())
        return name

    @classmethod
    def modality_name(cls, cfg: RunConfig) -> str:
        """``method.modality``, else the modality the encoder needs (``jbm`` for a fusing encoder), else
        the method's default; checked."""
        fused = getattr(ENCODERS.get(cls.encoder_name(cfg)), "input_modality", None)
        modality = cfg.method.modality or fused or cls.default_modality
        if modality not in cls.modalities:
            raise UnknownNameError(f"{cls.name} modality", modality, list(cls.modalities))
        return modality

    @classmethod
    def check_config(cls, cfg: RunConfig) -> None:
        cls.encoder_name(cfg)
        cls.modality_name(cfg)

    @classmethod
    def resolve_options(cls, cfg: RunConfig) -> Any:
        if cls.Options is None:
            if cfg.method.options:
                raise HarnessError(f"method {cls.name!r} takes no options, got method.options={cfg.method.options}")
            return None
        variant = cfg.method.variant
        if variant not in cls.variants:
            raise UnknownNameError(f"{cls.name} variant", variant, list(cls.variants))
        for old, new in cls.moved_options.items():
            if old in cfg.method.options:
                raise HarnessError(f"method.options.{old} ({cls.name}) moved: set {new} instead")
        return plugin_options(cls.Options, cfg.preset, cls.preset_defaults, cls.variants[variant],
                              cfg.method.options, where=f"method.options ({cls.name})")

    def derived_settings(self) -> dict[str, Any]:
        """Settings the method derived from the data and the budget by its stated rules (saved in
        run.json, shown by ``harness config show``); {} when it derives none."""
        return {}

    # --- the training seam ---------------------------------------------------------------------
    def make_views(self, x: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None = None) -> Any:
        """Raw clips (B, 3, T_max, V, M) + valid lengths → the views ``forward`` takes.

        Runs on the training device, one call per batch (batched augmentation)."""
        raise NotImplementedError

    def forward(self, views: Any, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Return named loss terms; the total is under ``"loss"``."""
        raise NotImplementedError

    def backbone(self) -> Backbone:
        """The part kept after pretraining (shares weights with this module)."""
        raise NotImplementedError

    def after_step(self) -> None:
        """Called after each optimiser step (momentum encoders, queues)."""

    def param_groups(self) -> list[dict[str, Any]] | None:
        """Optimizer parameter groups, or None for one group of every trainable parameter."""
        return None


def build_method(cfg: RunConfig, info: DataInfo) -> Method:
    """The run's method, built from the resolved configuration (every option and default filled in)."""
    return METHODS.get(cfg.method.name)(cfg.resolved(), info)


# --- protocols -----------------------------------------------------------------------------------
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
        from .results import ResultRow

        merged = {**self.base_row, "split": self.split, **fields}
        return ResultRow(metric=metric, value=float(value), **merged)


class Protocol:
    name: ClassVar[str] = ""
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


# --- dataset kinds -------------------------------------------------------------------------------
class DatasetKind:
    """``harness data prepare KIND``: ``add_arguments`` + ``prepare(args)``; kinds that can build
    themselves without user files (synthetic; real sets found in the real-data folder) also
    implement :meth:`auto_prepare`, which ``--dataset NAME`` uses (cached under
    ``<workdir>/datasets``)."""

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

    @classmethod
    def cache_name(cls, data: DataConfig, untrimmed: bool) -> str:
        return f"{cls.name}{'-untrimmed' if untrimmed else ''}-{stable_hash(cls.cache_key(data, untrimmed))}"
