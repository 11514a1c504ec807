"""What a method says about itself (harness.contracts): its card, and the table rows and figure roles on it.

:class:`MethodCard` is the self-description half of the method contract (the training half is
:class:`harness.contracts.Method`, which inherits it). It holds only class attributes, every one with
a default, read by the core without building the method: the configuration checks and option
resolution, ``harness list``, the tables, the figures, ``harness reproduce`` and ``harness tune``.

| group | attributes | read by |
|---|---|---|
| identity | ``name``, ``label``, ``paradigm`` | registry, tables, figures |
| settings | ``Options``, ``variants``, ``preset_defaults``, ``moved_options`` | config resolution, ``--set`` checks |
| backbone | ``encoders``, ``default_encoder``, ``modalities``, ``default_modality`` | config checks, floors |
| reporting | ``table_rows``, ``figure_roles``, ``table_order``, ``is_floor`` | tables, figures, reproduce |
| recipe | ``train_defaults``, ``tunable`` | config resolution, ``harness tune`` |

A new method sets ``name``, ``label`` and ``paradigm`` (tests/test_contracts.py checks them) and
whatever else differs from the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..config import DEFAULT_ENCODER, RunConfig, plugin_options
from ..errors import HarnessError, UnknownNameError
from ..registry import ENCODERS
from ..transforms.modality import MODALITIES

__all__ = ["MethodCard", "TableRow", "FigureRole", "figure_roles"]


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
    encoder: str = DEFAULT_ENCODER
    panel: str = ""  # Figure 5: "(a) negative-based contrastive"
    sweep: str = ""  # Figure 4: "encoder.options.alpha"


def figure_roles(figure: int) -> list[tuple[str, FigureRole]]:
    """``(method name, role)`` of every registered method with a part in ``figure``, by panel title."""
    from ..registry import METHODS

    found = [(name, role) for name in METHODS.names() for role in getattr(METHODS.get(name), "figure_roles", ())
             if role.figure == figure]
    return sorted(found, key=lambda nr: (nr[1].panel, nr[0]))


class MethodCard:
    """The self-description of a method: class attributes with defaults, grouped below (the module
    docstring says who reads each group), and what the core derives from them."""

    # --- identity: how the registry, tables and figures name it ----------------------------------
    name: ClassVar[str] = ""  # the registered name (``--method NAME``)
    label: ClassVar[str] = ""  # how tables name it ("VICReg"); "" = name
    paradigm: ClassVar[str] = ""  # its family ("feature decorrelation")

    # --- settings: method.options -----------------------------------------------------------------
    Options: ClassVar[type | None] = None  # a dataclass read from ``method.options``; None = takes none
    variants: ClassVar[dict[str, dict[str, Any]]] = {"default": {}}  # named option sets (``--variant``)
    preset_defaults: ClassVar[dict[str, dict[str, Any]]] = {}  # preset → option defaults
    moved_options: ClassVar[dict[str, str]] = {}  # old option name → the key that replaces it

    # --- backbone: what it may train ----------------------------------------------------------------
    encoders: ClassVar[tuple[str, ...] | None] = None  # None: any registered encoder; else the ones it trains
    default_encoder: ClassVar[str] = DEFAULT_ENCODER
    modalities: ClassVar[tuple[str, ...]] = MODALITIES
    default_modality: ClassVar[str] = "joint"

    # --- reporting: tables, figures, reproduce --------------------------------------------------------
    table_rows: ClassVar[tuple[TableRow, ...]] = ()  # () = one extra row per table, every encoder found
    figure_roles: ClassVar[tuple[FigureRole, ...]] = ()  # its parts in the paper's figures
    table_order: ClassVar[float] = 60  # extra rows are listed by it (references last)
    is_floor: ClassVar[bool] = False  # True for the method whose rows are every backbone's floor

    # --- recipe: training defaults and tunable weights --------------------------------------------------
    train_defaults: ClassVar[dict[str, dict[str, Any]]] = {}  # preset ("*" = every one) → train.* values
    tunable: ClassVar[dict[str, str]] = {}  # alias → Options float field ``harness tune`` may search

    # --- what the core derives from the card ---------------------------------------------------------
    @classmethod
    def display_label(cls) -> str:
        """How tables and figures name the method: ``label``, else ``name``."""
        return cls.label or cls.name

    @classmethod
    def rows(cls) -> tuple[TableRow, ...]:
        """``table_rows``, else one extra row in every table."""
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
        """Refuse an encoder or modality the method cannot train before anything is built."""
        cls.encoder_name(cfg)
        cls.modality_name(cfg)

    @classmethod
    def resolve_options(cls, cfg: RunConfig) -> Any:
        """The run's ``Options``: dataclass defaults < ``preset_defaults`` < the variant < ``method.options``."""
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
