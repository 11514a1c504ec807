"""Table rows for backbones evaluated from a checkpoint file (``harness run --checkpoint``).

Such rows carry the file's sha256 in ``extra.checkpoint_sha256``; no regular cell reads them (their
weights were not pretrained by the harness). Each file found in the store for a table's protocols
gets a row of its own, labelled by the method, its encoder and what the file is: "USDRL (DSTE),
released weights" for a published reference checkpoint, "..., checkpoint file" for a harness file
evaluated by path (the short sha256 is added when two files would share a label).
"""

from __future__ import annotations

import pandas as pd

from ..checkpoints import format_named
from ..registry import METHODS
from .model import RowSpec, Selector, TableSpec
from .specs import MODALITY_LABELS

CHECKPOINT_GROUP = "Evaluated checkpoint files (harness run --checkpoint; not pretrained by the harness)"


def _label(method: str, encoder: str, modality: str, fmt: str) -> tuple[float, str]:
    cls = METHODS.get(method) if method in METHODS else None
    name = (cls.display_label() if cls else method)
    own = getattr(cls, "encoders", None)
    if encoder and not (own and len(own) == 1):  # a method with one backbone needs no encoder name
        name += f" ({encoder.upper()})"
    if cls is not None and modality and modality != cls.default_modality:
        name += f", {modality} stream"
    known = format_named(fmt)
    what = known.row_label if known is not None else "checkpoint file"
    return float(getattr(cls, "table_order", 60)), f"{name}, {what}"


def checkpoint_rows(spec: TableSpec, df: pd.DataFrame, protocols: set[str]) -> list[RowSpec]:
    """One extra row per evaluated file (and method, variant, encoder, modality) with rows for this
    table's protocols in ``df`` (already narrowed to the table's dataset and preset)."""
    rows = df[(df["_checkpoint"] != "") & df["protocol"].isin(protocols) & ~df["_sweep"].astype(bool)]
    if rows.empty:
        return []
    found: dict[tuple[str, ...], str] = {}
    for r in rows.to_dict("records"):
        key = (r["_checkpoint"], r["method"], r["variant"], r["encoder"], r["modality"])
        found.setdefault(key, str(r["_extra"].get("checkpoint_format", "")))
    labelled = []
    for (sha, method, variant, encoder, modality), fmt in found.items():
        order, label = _label(method, encoder, modality, fmt)
        labelled.append((order, label, sha, Selector(method, variant, encoder or None, modality or None,
                                                     checkpoint=sha)))
    labelled.sort(key=lambda t: t[:3])
    counts = pd.Series([t[1] for t in labelled]).value_counts()
    out = []
    for _, label, sha, sel in labelled:
        if counts[label] > 1:
            label += f" ({sha[:8]})"
        mod = MODALITY_LABELS.get(sel.modality or "", sel.modality or "")
        if spec.number == 1:  # Table 1: publisher, modality
            info: tuple[str, ...] = ("checkpoint file", mod)
        elif spec.number == 5:  # Table 5: what the row is, encoder
            info = ("evaluated checkpoint file", (sel.encoder or "").upper())
        else:
            info = ()
        out.append(RowSpec(label, info=info, selector=sel, group=CHECKPOINT_GROUP))
    return out
