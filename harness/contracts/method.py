"""The method contract (harness.contracts): a small training core on top of the method's card.

A method is two parts:

- **the card** (:class:`MethodCard`, ``method_card.py``): class attributes that describe it — name,
  label, options and variants, the encoders and modalities it trains, its table rows and figure
  roles, its training recipe and tunable weights. Every one has a default.
- **the training core** (:class:`Method`, here): what the trainer calls. Required: :meth:`make_views`,
  :meth:`forward` and :meth:`backbone`. Optional, with defaults: :meth:`after_step`,
  :meth:`derived_settings`, :meth:`param_groups` and the flags ``num_views``, ``needs_labels``,
  ``pretrains``.

``TableRow``, ``FigureRole`` and ``figure_roles`` are re-exported from here for older imports.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..config import RunConfig
from ..resolve import resolved
from ..registry import METHODS
from .data import DataInfo
from .encoder import Backbone
from .method_card import FigureRole, MethodCard, TableRow, figure_roles

__all__ = ["Method", "MethodCard", "TableRow", "FigureRole", "figure_roles", "build_method"]


class Method(MethodCard, nn.Module):
    """Base class of registered methods: the training core (this class) on the method's card
    (:class:`MethodCard`: label, options, encoders, table rows, … read by the core without building it).

    The trainer builds ``Method(resolved_cfg, DataInfo)`` and, per batch, calls ``make_views`` on the
    training device, ``forward`` under autocast, ``backward``, the optimiser step and ``after_step``;
    it exports ``backbone()``. Its untrained floor is the ``random`` method with the same encoder
    and modality: nothing to write.
    """

    # --- training flags the trainer reads -----------------------------------------------------------
    num_views: ClassVar[int] = 2  # views per clip make_views returns (benchmarks and tests read it)
    needs_labels: ClassVar[bool] = False  # True: forward gets batch.labels (the supervised baseline)
    pretrains: ClassVar[bool] = True  # False: nothing is trained, the untrained backbone is exported

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__()
        self.cfg, self.info = cfg, info
        self.check_config(cfg)
        self.options = self.resolve_options(cfg)

    # --- required ----------------------------------------------------------------------------------
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

    # --- optional ----------------------------------------------------------------------------------
    def derived_settings(self) -> dict[str, Any]:
        """Settings the method derived from the data and the budget by its stated rules (saved in
        run.json, shown by ``harness config show``); {} when it derives none."""
        return {}

    def after_step(self) -> None:
        """Called after each optimiser step (momentum encoders, queues)."""

    def param_groups(self) -> list[dict[str, Any]] | None:
        """Optimizer parameter groups, or None for one group of every trainable parameter."""
        return None


def build_method(cfg: RunConfig, info: DataInfo) -> Method:
    """The run's method, built from the resolved configuration (every option and default filled in)."""
    return METHODS.get(cfg.method.name)(resolved(cfg), info)


