"""The contracts between the core and its plugins: every seam a method, encoder, protocol or dataset
kind implements, in one place.

The core (``harness``: engine, CLI, tables, tuning) uses only these classes; the plugins (the
packages ``harness.methods`` and ``harness.protocols``, and third-party distributions) subclass them
and are reached only through the registry (:mod:`harness.registry`). docs/extending.md walks through
writing each kind.

- :class:`DataInfo`: what a method learns about the data it trains on (topology, sizes, budget).
- :class:`Encoder`: ``(N, C, T, V, M) → EncoderOutput`` with its own ``Options``.
- :class:`Backbone` / :class:`ModalityBackbone`: what protocols evaluate (joint clip → features).
- :class:`Method`: views + loss terms + the backbone it trains (the training core), on its
  :class:`MethodCard`: a description of itself (label, paradigm, encoders, table rows, tunable
  weights, training defaults) that tables, ``reproduce`` and ``tune`` read.
- :class:`Protocol` / :class:`ProtocolContext`: a backbone + a prepared dataset → result rows.
- :class:`DatasetKind`: ``harness data prepare KIND`` and ``--dataset NAME``.
"""

from __future__ import annotations

from .data import FUSED_MODALITY, DataInfo
from .encoder import Backbone, Encoder, EncoderOutput, ModalityBackbone, build_encoder
from .method import Method, build_method
from .method_card import FigureRole, MethodCard, TableRow, figure_roles
from .protocol import DatasetKind, Measure, Protocol, ProtocolContext, ReproduceFlag

__all__ = ["FUSED_MODALITY", "DataInfo", "Backbone", "Encoder", "EncoderOutput", "ModalityBackbone", "build_encoder",
           "FigureRole", "Method", "MethodCard", "TableRow", "build_method", "figure_roles", "DatasetKind", "Measure", "Protocol", "ProtocolContext",
           "ReproduceFlag"]
