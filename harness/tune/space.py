"""The search space of ``harness tune``: ``--params`` names → the method's ``Options`` fields, the
starting weights and their log-uniform ranges.

The aliases a method offers are its own declaration (:attr:`harness.contracts.Method.tunable`,
alias → ``Options`` field); any float field of the method's ``Options`` works by its own name too.
"""

from __future__ import annotations

import dataclasses
import math
import typing

from ..config import RunConfig
from ..errors import HarnessError, UnknownNameError

DEFAULT_PARAMS = "sim,vac,xc"
DEFAULT_SPREAD = 10.0


def float_fields(method_cls: type) -> list[str]:
    """The ``Options`` fields of ``method_cls`` typed ``float`` (the weights a study may search)."""
    opts = getattr(method_cls, "Options", None)
    if opts is None or not dataclasses.is_dataclass(opts):
        raise HarnessError(f"method {getattr(method_cls, 'name', method_cls)!r} has no Options to tune")
    hints = typing.get_type_hints(opts)  # resolves the strings that ``from __future__ import annotations`` leaves
    return [f.name for f in dataclasses.fields(opts) if hints.get(f.name) is float]


def aliases(method_cls: type) -> dict[str, str]:
    """The method's declared aliases (``Method.tunable``), checked against its float fields."""
    floats = set(float_fields(method_cls))
    table = dict(getattr(method_cls, "tunable", {}) or {})
    bad = sorted(f"{a!r} → {f!r}" for a, f in table.items() if f not in floats)
    if bad:  # a plugin bug: say which declaration is wrong rather than hide the alias
        raise HarnessError(f"method {getattr(method_cls, 'name', '?')!r} declares tunable aliases that are not float "
                           f"fields of its Options: {', '.join(bad)}")
    return table


def resolve_params(method_cls: type, names: str | list[str]) -> list[str]:
    """``"sim,vac,xcorr"`` → Options field names, in order, without repeats; an unknown name raises
    UnknownNameError listing the method's aliases and float fields (with close-match suggestions)."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",")]
    names = [n for n in names if n]
    if not names:
        raise HarnessError(f"--params needs at least one name, e.g. --params {DEFAULT_PARAMS}")
    floats = float_fields(method_cls)
    table = aliases(method_cls)
    known = sorted(set(floats) | set(table))
    out: list[str] = []
    for name in names:
        fname = table.get(name, name)
        if fname not in floats:
            raise UnknownNameError(f"tuning parameter of {getattr(method_cls, 'name', '?')}", name, known)
        if fname not in out:
            out.append(fname)
    return out


def paper_weights(method_cls: type, cfg: RunConfig, params: list[str]) -> dict[str, float]:
    """The starting weights: the method's resolved options (the paper's unless --set changes them)."""
    opts = method_cls.resolve_options(cfg)
    out = {p: float(getattr(opts, p)) for p in params}
    for p, v in out.items():
        if not (v > 0 and math.isfinite(v)):
            raise HarnessError(f"{p} is {v} in this configuration: a log-uniform range needs a positive "
                               f"starting value (set one with --set method.options.{p}=VALUE)")
    return out


def search_space(paper: dict[str, float], spread: float) -> dict[str, tuple[float, float]]:
    """Field → (v / spread, v · spread) around each starting value v."""
    if not (spread > 1 and math.isfinite(spread)):
        raise HarnessError(f"--spread must be a finite number > 1, got {spread}")
    return {p: (v / spread, v * spread) for p, v in paper.items()}
