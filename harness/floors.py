"""The untrained floor rule, shared by the tables (which floor a row sits beside) and by ``reproduce``
(which floor runs a plan adds): a method's floor is the registered floor method (``random``) with the
backbone the method trains — its encoder (or its declared default) and modality (or its default)."""

from __future__ import annotations

from .registry import METHODS


def floor_method() -> str | None:
    """The registered method whose rows are every backbone's untrained floor (``random``)."""
    return next((e.name for e in METHODS.entries() if getattr(e.obj, "is_floor", False)), None)


def floor_backbone(method: str, encoder: str | None, modality: str | None) -> tuple[str, str, str | None] | None:
    """``(floor method, encoder, modality)`` of the untrained backbone ``method`` trains; None for the floor
    method itself, for methods that are not installed and when no floor method is registered."""
    floor = floor_method()
    if floor is None or method == floor or method not in METHODS:
        return None
    cls = METHODS.get(method)
    return floor, encoder or cls.default_encoder, modality or cls.default_modality
