"""Typed run configuration: dataclasses, presets, YAML files and ``--set a.b=c`` overrides.

A run's configuration is resolved in this order: the preset (``smoke``, ``cpu`` default, ``paper``),
then a YAML file, then ``--set`` overrides. The resolved config is saved with every run together with
two hashes: ``pretrain_hash`` covers everything that changes the pretrained weights (data, encoder,
method, training, seed) and keys checkpoint reuse; ``config_hash`` covers the whole run.

Method- and protocol-specific settings live in the free-form ``options`` dicts; each plugin checks
them against its own dataclass (see :func:`parse_options`), so a typo still fails with a suggestion.
Setting a section to a plain string sets its name: ``--set encoder=sttr`` is ``encoder.name=sttr``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import yaml

from .errors import HarnessError, UnknownNameError

T = TypeVar("T")


@dataclass
class DataConfig:
    dataset: str = "synthetic"  # a registered dataset name or a path to a prepared folder
    split: str = "xsub"  # a named split of the prepared dataset
    frames: int = 64  # clip length after temporal resampling (T)
    num_samples: int = 0  # synthetic only: clips to generate (0 = the preset's default)
    max_train_samples: int = 0  # 0 = all; a cap for quick runs
    seed: int = 0  # generator seed for synthetic data
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class EncoderConfig:
    name: str = "dste"
    hidden: int = 1024  # token width d (C_e = C_r)
    heads: int = 1
    layers: int = 2
    mlp_hidden: int = 2048  # DST MLP width (STTR's feed-forward width is `ffn`)
    ffn: int = 1024
    alpha: float = 0.5  # CA weight; DSA weight is 1 - alpha
    gap: int = 4  # DenseShift stride
    kernel: int = 1  # CA Conv1d kernel
    drop_path: float = 0.1
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodConfig:
    name: str = "usdrl"
    variant: str = "default"  # a named set of option values (e.g. USDRL's Table 5 rows)
    modality: str = "joint"  # joint | bone | motion (methods may accept more, e.g. "jbm")
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    epochs: int = 451
    batch_size: int = 356
    optimizer: str = "adam"
    lr: float = 5e-4
    weight_decay: float = 1e-5
    milestones: list[int] = field(default_factory=lambda: [351])
    gamma: float = 0.1
    amp: str = "auto"  # auto | off | bf16 | fp16 (fp16 needs CUDA; auto = bf16 on CUDA, off on CPU)
    compile: bool = False
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    checkpoint_every: int = 50
    seed: int = 0
    num_threads: int = 0  # 0 = torch default
    max_steps_per_epoch: int = 0  # 0 = all; a cap for smoke runs
    log_every: int = 10


@dataclass
class ProtocolConfig:
    name: str = "linear"
    dataset: str = ""  # evaluation dataset (name or prepared folder); "" = data.dataset (transfer otherwise)
    split: str = ""  # evaluation split; "" = data.split
    seeds: list[int] = field(default_factory=lambda: [0])
    batch_size: int = 256  # feature-extraction batch
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunConfig:
    preset: str = "cpu"
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    workdir: str = ".harness"  # datasets cache, runs (checkpoints, logs), studies
    results: str = "results"  # the results store

    # --- hashing -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def pretrain_dict(self) -> dict[str, Any]:
        """What determines the pretrained weights (execution-only settings are left out)."""
        d = self.to_dict()
        out = {k: d[k] for k in ("data", "encoder", "method", "train")}
        for key in EXECUTION_ONLY_TRAIN_KEYS:
            out["train"].pop(key)
        return out

    @property
    def pretrain_hash(self) -> str:
        return stable_hash(self.pretrain_dict())

    @property
    def config_hash(self) -> str:
        d = self.to_dict()
        d.pop("workdir"), d.pop("results")
        for key in EXECUTION_ONLY_TRAIN_KEYS:
            d["train"].pop(key)
        return stable_hash(d)


# train settings that change how fast a run goes or how it logs, never what it learns
EXECUTION_ONLY_TRAIN_KEYS = ("num_threads", "log_every")


def stable_hash(obj: Any, length: int = 12) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# --- presets ---------------------------------------------------------------------------------
# Each preset is a set of overrides on the dataclass defaults (which are the paper's values).
# Plugins keep their own per-preset defaults (``preset_defaults`` on a Method or Protocol class),
# merged under the user's options by :func:`plugin_options`.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    # cpu: a narrow encoder on 2,000 synthetic clips, minutes per pretraining on a 2-core CPU
    "cpu": {
        "data.num_samples": 2000, "data.frames": 32,
        "encoder.hidden": 64, "encoder.mlp_hidden": 128, "encoder.ffn": 64,
        "train.epochs": 20, "train.batch_size": 64, "train.lr": 1e-3, "train.milestones": [16],
        "train.checkpoint_every": 5, "train.amp": "off",
    },
    "smoke": {
        "data.num_samples": 240, "data.frames": 16,
        "encoder.hidden": 32, "encoder.mlp_hidden": 64, "encoder.ffn": 32,
        "train.epochs": 2, "train.batch_size": 32, "train.lr": 1e-3, "train.milestones": [1],
        "train.checkpoint_every": 1, "train.amp": "off", "train.max_steps_per_epoch": 3,
        "train.log_every": 1,
    },
}


def resolve(preset: str = "cpu", yaml_file: str | Path | None = None,
            overrides: list[str] | dict[str, Any] | None = None) -> RunConfig:
    """Build a RunConfig from a preset, an optional YAML file and ``a.b=c`` overrides."""
    if preset not in PRESETS:
        raise UnknownNameError("preset", preset, list(PRESETS))
    cfg = RunConfig(preset=preset)
    apply_overrides(cfg, PRESETS[preset])
    if yaml_file is not None:
        apply_overrides(cfg, load_yaml(yaml_file))
    if overrides:
        apply_overrides(cfg, overrides)
    return cfg


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise HarnessError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise HarnessError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: a config file must hold a mapping at the top level")
    data.pop("preset", None)  # the preset is chosen on the command line
    return _flatten(data)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and not key.endswith("options"):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def parse_set(items: list[str]) -> dict[str, Any]:
    """``["a.b=3", "c=[1,2]"]`` → ``{"a.b": 3, "c": [1, 2]}``; values are parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise HarnessError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
    return out


def apply_overrides(cfg: Any, overrides: list[str] | dict[str, Any]) -> Any:
    if isinstance(overrides, list):
        overrides = parse_set(overrides)
    for key, value in overrides.items():
        _set_path(cfg, key.split("."), value, key)
    return cfg


def _set_path(obj: Any, parts: list[str], value: Any, full: str) -> None:
    head, rest = parts[0], parts[1:]
    if isinstance(obj, dict):  # inside an options dict: free-form, checked by the plugin
        if rest:
            _set_path(obj.setdefault(head, {}), rest, value, full)
        elif isinstance(value, dict) and isinstance(obj.get(head), dict):
            obj[head].update(copy.deepcopy(value))
        else:
            obj[head] = copy.deepcopy(value)
        return
    names = [f.name for f in fields(obj)]
    if head not in names:
        prefix = full.split(".")[: len(full.split(".")) - len(parts)]
        base = ".".join(prefix) + "." if prefix else ""
        raise UnknownNameError("config key", full, _all_keys(type(obj), base))
    current = getattr(obj, head)
    if rest:
        _set_path(current, rest, value, full)
        return
    if is_dataclass(current):
        if isinstance(value, str) and "name" in [f.name for f in fields(current)]:
            current.name = value  # --set encoder=sttr
            return
        if isinstance(value, dict):
            for k, v in _flatten(value).items():
                _set_path(current, k.split("."), v, f"{full}.{k}")
            return
        raise HarnessError(f"config key {full!r} is a section; set one of its fields")
    if isinstance(current, dict):
        if not isinstance(value, dict):
            raise HarnessError(f"config key {full!r} expects a mapping")
        current.update(copy.deepcopy(value))
        return
    setattr(obj, head, _coerce(value, type(obj), head, full))


def _coerce(value: Any, owner: type, name: str, full: str) -> Any:
    hint = get_type_hints(owner)[name]
    origin = getattr(hint, "__origin__", None)
    try:
        if hint is bool:
            if isinstance(value, str):
                if value.lower() in {"true", "1", "yes", "on"}:
                    return True
                if value.lower() in {"false", "0", "no", "off"}:
                    return False
                raise ValueError(value)
            return bool(value)
        if hint is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if hint is float:
            return float(value)
        if hint is str:
            return str(value)
        if origin is list:
            (item_type,) = hint.__args__
            seq = value if isinstance(value, (list, tuple)) else [value]
            return [item_type(v) for v in seq]
    except (TypeError, ValueError):
        raise HarnessError(f"config key {full!r}: cannot use {value!r} as {getattr(hint, '__name__', hint)}") from None
    return value


def _all_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    hints = get_type_hints(cls)
    for f in fields(cls):
        t = hints[f.name]
        if is_dataclass(t):
            keys += _all_keys(t, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def parse_options(cls: type[T], options: dict[str, Any], where: str) -> T:
    """Check a plugin's ``options`` dict against its dataclass; unknown keys get suggestions."""
    known = {f.name for f in fields(cls)}
    for key in options:
        if key not in known:
            raise UnknownNameError(f"{where} option", key, sorted(known))
    obj = cls()
    for key, value in options.items():
        setattr(obj, key, _coerce(value, cls, key, f"{where}.{key}") if value is not None else None)
    return obj


def plugin_options(cls: type[T], preset: str, preset_defaults: dict[str, dict[str, Any]],
                   *layers: dict[str, Any], where: str) -> T:
    """Options = the plugin's defaults for this preset, then each layer (variant, user) on top."""
    merged: dict[str, Any] = dict(preset_defaults.get(preset, {}))
    for layer in layers:
        merged.update(layer)
    return parse_options(cls, merged, where)


def from_dict(d: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig saved with :meth:`RunConfig.to_dict` (e.g. from a checkpoint)."""
    cfg = RunConfig(preset=d.get("preset", "cpu"))
    flat = {k: v for k, v in _flatten({k: v for k, v in d.items() if k != "preset"}).items()}
    apply_overrides(cfg, flat)
    return cfg


def to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
