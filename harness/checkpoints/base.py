"""What every checkpoint format defines, and the strict check that every tensor is accounted for.

A :class:`CheckpointFormat` recognises its files (:meth:`~CheckpointFormat.detect`), names the method
and encoder they hold (:meth:`~CheckpointFormat.configure`) and maps the file's tensors onto the
harness backbone's parameter names (:meth:`~CheckpointFormat.backbone_state`). Tensors a format
expects and does not need (projectors, a decoder, momentum encoders) are listed by key prefix in its
definition and dropped; any other tensor the mapping cannot place is *unexpected*.
:func:`check_tensors` then compares the mapped tensors with the backbone built from the
configuration: a missing key, an unexpected key or a wrong shape is an error that lists them all,
under the file's own key names, with the ``--set`` values the file's shapes suggest.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..config import RunConfig
from ..contracts import DataInfo
from ..errors import HarnessError

LIST_AT_MOST = 12  # keys shown per kind of problem in an error message


@dataclass
class Checkpoint:
    """A loaded checkpoint file and the format it was recognised as."""

    path: Path
    sha256: str
    obj: dict[str, Any]
    format: "CheckpointFormat"
    encoder: str = ""  # the registered encoder the file's backbone is (set by the format)

    @property
    def method(self) -> str:
        return self.format.method_name(self)

    def describe(self) -> str:
        enc = f" holding a {self.encoder} backbone" if self.encoder else ""
        return f"{self.format.label}{enc}"


@dataclass
class Mapped:
    """A file's tensors under the harness backbone's keys."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # backbone key → tensor
    names: dict[str, str] = field(default_factory=dict)  # backbone key → the file's key
    unexpected: list[str] = field(default_factory=list)  # file keys the format cannot place
    ignored: int = 0  # tensors the format expects and drops (projectors, decoder, ...)


def strip_prefix(state: dict[str, Any], prefix: str = "module.") -> tuple[dict[str, Any], str]:
    """``state`` without a prefix every key carries (DataParallel's ``module.``), and that prefix."""
    if state and all(isinstance(k, str) and k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}, prefix
    return state, ""


def map_by_prefix(state: dict[str, Any], renames: tuple[tuple[str, str], ...], ignored: tuple[str, ...],
                  file_prefix: str = "") -> Mapped:
    """Rename file keys by the first matching ``(file prefix, backbone prefix)``; keys starting with
    an ``ignored`` prefix are dropped; every other key is unexpected."""
    out = Mapped()
    for key, value in state.items():
        if any(key.startswith(p) for p in ignored):
            out.ignored += 1
            continue
        target = next((new + key[len(old):] for old, new in renames if key.startswith(old)), None)
        if target is None or not torch.is_tensor(value):
            out.unexpected.append(file_prefix + key)
            continue
        out.tensors[target] = value
        out.names[target] = file_prefix + key
    return out


def file_key(key: str, renames: tuple[tuple[str, str], ...], file_prefix: str = "") -> str:
    """The file's name for backbone key ``key`` (the renames read backwards), for messages."""
    for old, new in renames:
        if key.startswith(new):
            return file_prefix + old + key[len(new):]
    return file_prefix + key


def _listing(title: str, items: list[str]) -> str:
    shown = items[:LIST_AT_MOST]
    more = f", … and {len(items) - len(shown)} more" if len(items) > len(shown) else ""
    return f"\n  {title} ({len(items)}): {', '.join(shown)}{more}"


def check_tensors(ckpt: Checkpoint, mapped: Mapped, backbone: torch.nn.Module, *, file_name: Any,
                  built_as: str, hint: str = "") -> None:
    """Every backbone tensor present with its shape, nothing left over; else one error listing all."""
    expected = {k: tuple(v.shape) for k, v in backbone.state_dict().items()}
    missing = [mapped.names.get(k) or file_name(k) for k in expected if k not in mapped.tensors]
    unexpected = list(mapped.unexpected) + [mapped.names[k] for k in mapped.tensors if k not in expected]
    wrong = [f"{mapped.names[k]} file {tuple(v.shape)} ≠ model {expected[k]}" for k, v in mapped.tensors.items()
             if k in expected and tuple(v.shape) != expected[k]]
    if not (missing or unexpected or wrong):
        check_aliases(ckpt, mapped, backbone)
        return
    msg = f"{ckpt.path}: this {ckpt.describe()} does not fit {built_as}:"
    for title, items in (("missing from the file", missing), ("unexpected in the file", unexpected),
                         ("wrong shape", wrong)):
        if items:
            msg += _listing(title, items)
    if hint:
        msg += f"\n{hint}"
    raise HarnessError(msg)


def check_aliases(ckpt: Checkpoint, mapped: Mapped, backbone: torch.nn.Module) -> None:
    """Keys that name one shared tensor in the backbone (DSTE's attention, shared by CA and DSA)
    must hold equal values in the file: the model cannot keep two different ones."""
    groups: dict[int, list[str]] = {}
    for k, t in backbone.state_dict(keep_vars=True).items():
        groups.setdefault(id(t), []).append(k)
    for keys in groups.values():
        first = mapped.tensors[keys[0]]
        for k in keys[1:]:
            if not torch.equal(first, mapped.tensors[k]):
                raise HarnessError(f"{ckpt.path}: {mapped.names[keys[0]]} and {mapped.names[k]} are one shared "
                                   f"tensor in the model but hold different values in the file")


def suggest_sets(wanted: dict[str, Any], resolved: RunConfig) -> str:
    """``--set`` arguments for the values in ``wanted`` (``encoder.options.hidden`` → 64, ``data.frames``
    → 64) that differ from the resolved configuration; "" when none differ."""
    current = {f"encoder.options.{k}": v for k, v in resolved.encoder.options.items()}
    current["data.frames"] = resolved.data.frames
    diff = [f"--set {k}={v:g}" if isinstance(v, float) else f"--set {k}={v}" for k, v in wanted.items()
            if v is not None and current.get(k) != v]
    return ("the file's shapes suggest: " + " ".join(diff)) if diff else ""


class CheckpointFormat:
    """One checkpoint layout (see the module docstring); subclasses register with
    ``@CHECKPOINT_FORMATS.register()`` (:mod:`harness.registry`) in their own module."""

    name: ClassVar[str] = ""
    order: ClassVar[int] = 100  # files are tried against formats by ascending order (then name)
    label: ClassVar[str] = ""  # "USDRL pretraining checkpoint (wengwanjiang/USDRL pretrain.py)"
    row_label: ClassVar[str] = "released weights"  # how the tables name its rows
    method: ClassVar[str] = ""  # the registered method the file's backbone belongs to
    top_keys: ClassVar[tuple[str, ...]] = ()  # the top-level keys the format defines
    ignored_prefixes: ClassVar[tuple[str, ...]] = ()  # state-dict keys expected and not needed
    namespace_keys: ClassVar[tuple[str, ...]] = ()  # top-level keys where an argparse.Namespace is admitted
    unsupported: ClassVar[str] = ""  # why a recognised format cannot be evaluated ("" = it can)

    def detect(self, obj: Any) -> str | None:
        """None when ``obj`` is this format, else why not (shown when no format matches)."""
        raise NotImplementedError

    def method_name(self, ckpt: Checkpoint) -> str:
        return self.method

    def encoder_of(self, obj: Any) -> str:
        """The registered encoder the file's backbone is ("" = the method's default)."""
        return ""

    def check_top_level(self, ckpt: Checkpoint) -> None:
        extra = sorted(str(k) for k in ckpt.obj if k not in self.top_keys)
        if extra:
            raise HarnessError(f"{ckpt.path}: unexpected top-level key(s) {', '.join(map(repr, extra))} in a "
                               f"{self.label}, which holds {', '.join(map(repr, self.top_keys))}")

    def configure(self, cfg: RunConfig, ckpt: Checkpoint) -> tuple[RunConfig, list[str]]:
        """The configuration the backbone is built from (method and encoder named by the file; the
        rest, shapes included, from ``cfg``) and notes for the user."""
        out = copy.deepcopy(cfg)
        out.method.name = self.method_name(ckpt)
        notes = []
        if cfg.method.name != out.method.name:
            notes.append(f"the file holds a {out.method.name} backbone: evaluating it as method {out.method.name}")
        if cfg.encoder.name and ckpt.encoder and cfg.encoder.name != ckpt.encoder:
            raise HarnessError(f"{ckpt.path}: the file holds a {ckpt.encoder} backbone but encoder.name is "
                               f"{cfg.encoder.name!r}; leave it unset or set encoder={ckpt.encoder}")
        out.encoder.name = ckpt.encoder or cfg.encoder.name
        return out, notes

    def data_info(self, ckpt: Checkpoint, ds: Any, frames: int) -> DataInfo:
        """What the backbone is built for: the evaluation dataset's skeleton, ``frames`` frames."""
        return DataInfo(topology=ds.topology, num_classes=ds.num_classes, frames=frames, persons=ds.num_persons)

    def backbone_state(self, ckpt: Checkpoint, method: torch.nn.Module) -> Mapped:
        """The file's backbone tensors under the keys of ``method.backbone().state_dict()``."""
        raise NotImplementedError

    def file_name(self, ckpt: Checkpoint, key: str) -> str:
        """The file's name of backbone key ``key`` (for messages)."""
        return key

    def shapes(self, ckpt: Checkpoint) -> dict[str, Any]:
        """Config values (``encoder.options.*``, ``data.frames``) the file's tensor shapes imply."""
        return {}

    def check_config(self, ckpt: Checkpoint, resolved: RunConfig) -> list[str]:
        """Settings the shapes cannot show (attention heads) checked against what the file records;
        returns notes for the user, raises on a contradiction."""
        return []

    def identity(self, ckpt: Checkpoint) -> dict[str, int]:
        """``epochs`` (completed), ``steps`` and ``pretrain_seed`` of the rows (0 when unknown)."""
        return {"epochs": 0, "steps": 0, "pretrain_seed": 0}
