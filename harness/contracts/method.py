"""The method seam and the table rows a method describes itself with (harness.contracts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..config import RunConfig, plugin_options
from ..transforms.modality import MODALITIES
from ..errors import HarnessError, UnknownNameError
from ..registry import ENCODERS, METHODS
from .data import DataInfo
from .encoder import Backbone

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


@dataclass(frozen=True)
class FigureRole:
    """A part a method plays in one of the paper's figures: a panel of Figure 5 (the t-SNE of a
    pretrained backbone, ``panel`` its title; panels are ordered by title) or the method of Figure 4,
    whose ``sweep`` is the config key the figure varies."""

    figure: int
    variant: str = "default"
    encoder: str = "dste"
    panel: str = ""  # Figure 5: "(a) negative-based contrastive"
    sweep: str = ""  # Figure 4: "encoder.options.alpha"


def figure_roles(figure: int) -> list[tuple[str, FigureRole]]:
    """``(method name, role)`` of every registered method with a part in ``figure``, by panel title."""
    from ..registry import METHODS

    found = [(name, role) for name in METHODS.names() for role in getattr(METHODS.get(name), "figure_roles", ())
             if role.figure == figure]
    return sorted(found, key=lambda nr: (nr[1].panel, nr[0]))


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
    figure_roles: ClassVar[tuple[FigureRole, ...]] = ()  # its parts in the paper's figures
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


