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
from .registry import METHODS

T = TypeVar("T")


# The defaults of a run: the only place the core names plugins (a fitness test holds it to that).
DEFAULT_DATASET = "synthetic"
DEFAULT_METHOD = "usdrl"
DEFAULT_ENCODER = "dste"  # what a method that trains any encoder trains when none is named
DEFAULT_PROTOCOL = "linear"


@dataclass
class DataConfig:
    dataset: str = DEFAULT_DATASET  # a registered dataset name or a path to a prepared folder
    split: str = "xsub"  # a named split of the prepared dataset
    frames: int = 64  # clip length after temporal resampling (T)
    num_samples: int = 0  # synthetic only: clips to generate (0 = the preset's default)
    max_train_samples: int = 0  # 0 = all; a cap for quick runs
    seed: int = 0  # generator seed for synthetic data
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class EncoderConfig:
    name: str = ""  # a registered encoder; "" = the method's default (DSTE for USDRL; MAMP's own ViT)
    options: dict[str, Any] = field(default_factory=dict)  # checked against the encoder's Options


@dataclass
class MethodConfig:
    name: str = DEFAULT_METHOD
    variant: str = "default"  # a named set of option values (e.g. USDRL's Table 5 rows)
    modality: str = ""  # joint | bone | motion | jbm; "" = the method's default (joint; jbm for UmURL)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    """Pretraining. The budget is ``steps`` optimizer steps, or ``epochs`` passes over the training
    split when ``steps`` is 0; schedule times (``milestones``, ``warmup``) are fractions of it."""

    steps: int = 0  # optimizer steps in all; 0 = the budget is ``epochs``
    epochs: int = 451
    batch_size: int = 356
    optimizer: str = "adam"  # adam (coupled L2, the reference) | adamw | sgd
    lr: float = 5e-4
    weight_decay: float = 1e-5
    decay_norm_and_bias: bool = True  # False: no weight decay on biases, norms and embeddings (MAE lineage)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adam / adamw
    momentum: float = 0.9  # sgd
    schedule: str = "step"  # step (lr × gamma at each milestone) | cosine (down to min_lr)
    milestones: list[float] = field(default_factory=lambda: [351 / 451])  # fractions of the budget
    gamma: float = 0.1
    warmup: float = 0.0  # fraction of the budget with a linear warm-up from 0
    min_lr: float = 0.0  # cosine: the final learning rate
    amp: str = "auto"  # auto | off | bf16 | fp16 (fp16 needs CUDA; auto = bf16 on CUDA, off on CPU)
    compile: bool = False
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    checkpoint_every: int = 50  # epochs
    seed: int = 0
    num_threads: int = 0  # 0 = torch default
    max_steps_per_epoch: int = 0  # 0 = all; a cap for smoke runs
    log_every: int = 10


@dataclass
class ProtocolConfig:
    name: str = DEFAULT_PROTOCOL
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
    # the results store: by default the user's own, <workdir>/results (_layered follows the workdir);
    # `harness reproduce` writes the committed campaign store results/ (harness.results.CAMPAIGN_STORE)
    results: str = ".harness/results"

    # A RunConfig holds what the user asked for; harness.resolve turns it into a ResolvedConfig
    # (every plugin option filled in and checked), which owns the hashes.
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __eq__(self, other: object) -> bool:  # a ResolvedConfig equals a RunConfig with the same values
        return isinstance(other, RunConfig) and self.to_dict() == other.to_dict()


AMP_MODES = ("auto", "off", "bf16", "fp16")  # train.amp (harness.engine.amp)

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
    # cpu: 2,000 synthetic clips, narrow encoders (their own preset_defaults), 320 optimizer steps
    # whatever the dataset's size: minutes per pretraining on one CPU thread
    "cpu": {
        "data.num_samples": 2000, "data.frames": 32,
        "train.steps": 320, "train.epochs": 0, "train.batch_size": 64, "train.lr": 1e-3,
        "train.milestones": [0.8], "train.checkpoint_every": 5, "train.amp": "off",
    },
    "smoke": {
        "data.num_samples": 240, "data.frames": 16,
        "train.steps": 6, "train.epochs": 0, "train.batch_size": 32, "train.lr": 1e-3, "train.milestones": [0.5],
        "train.checkpoint_every": 1, "train.amp": "off", "train.max_steps_per_epoch": 3,
        "train.log_every": 1,
    },
}

# keys that moved; setting the old one is an error that names the new one
MOVED_KEYS: dict[str, str] = {
    **{f"encoder.{k}": f"encoder.options.{k}" for k in
       ("hidden", "heads", "layers", "mlp_hidden", "ffn", "alpha", "gap", "kernel", "drop_path")},
}


def load_config(preset: str = "cpu", yaml_file: str | Path | None = None,
                overrides: list[str] | dict[str, Any] | None = None) -> RunConfig:
    """Build a RunConfig: the preset, then the method's own training defaults for that preset
    (``Method.train_defaults``, e.g. MAMP's AdamW), then a YAML file, then ``a.b=c`` overrides.
    Plugin options are the user's only: :func:`harness.resolve.resolve_config` also resolves them."""
    if preset not in PRESETS:
        raise UnknownNameError("preset", preset, list(PRESETS))
    layers = [load_yaml(yaml_file) if yaml_file is not None else {}, parse_set(overrides)
              if isinstance(overrides, list) else dict(overrides or {})]
    cfg = _layered(preset, [PRESETS[preset], *layers])
    defaults = method_train_defaults(cfg.method.name, preset)
    if defaults:  # the method is known only once the user's layers are read: build again with them
        cfg = _layered(preset, [PRESETS[preset], {f"train.{k}": v for k, v in defaults.items()}, *layers])
    return cfg


def _layered(preset: str, layers: list[dict[str, Any]]) -> RunConfig:
    cfg = RunConfig(preset=preset)
    for layer in layers:
        apply_overrides(cfg, layer)
    if not any("results" in layer for layer in layers):  # the user's own store follows the workdir
        cfg.results = str(Path(cfg.workdir) / "results")
    return cfg


def method_train_defaults(method: str, preset: str) -> dict[str, Any]:
    """``train.*`` defaults the method declares for ``preset`` ("*" entries apply to every preset)."""
    if method not in METHODS:
        return {}  # an unknown method fails later, with suggestions, where it is built
    table = getattr(METHODS.get(method), "train_defaults", {}) or {}
    return {**table.get("*", {}), **table.get(preset, {})}


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
    if full in MOVED_KEYS and len(parts) == 1:
        raise HarnessError(f"config key {full!r} moved: set {MOVED_KEYS[full]!r} instead")
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
