"""A run configuration with every plugin setting filled in, and checked: :class:`ResolvedConfig`.

:func:`resolved` returns a new :class:`ResolvedConfig` (a :class:`~harness.config.RunConfig`) in which

- ``encoder.name`` is the encoder the method trains (its default when unset; an error when the
  method trains its own backbone and another is named),
- ``method.modality`` is the method's modality (its default when unset),
- ``method.options``, ``encoder.options`` and ``protocol.options`` hold *every* option of those
  plugins, from their dataclass defaults, the preset's defaults, the method's variant and the
  user's values,

and checks the training section (a positive, finite learning rate, a budget for a method that
pretrains, schedule fractions in range). It never mutates its input, and resolving a resolved
configuration changes nothing (it returns the same object). Only a ResolvedConfig has hashes
(``pretrain_hash``, ``config_hash``); checkpoints, exported backbones and ``harness config show`` use
it. Entry points resolve once (:func:`resolve_config` loads and resolves) and hand the
ResolvedConfig down. A ResolvedConfig changed after resolution (a field set, ``dataclasses.replace``)
is no longer known to be resolved: :func:`resolved` and its hashes resolve it again, so a stale
hash cannot be read.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import AMP_MODES, EXECUTION_ONLY_TRAIN_KEYS, RunConfig, load_config, stable_hash
from .errors import HarnessError, UnknownNameError
from .registry import ENCODERS, METHODS, PROTOCOLS

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("step", "cosine")


def _as_dict(options: Any) -> dict[str, Any]:
    return {} if options is None else copy.deepcopy(dataclasses.asdict(options))


@dataclass(eq=False)  # RunConfig's __eq__: the values, whatever the class
class ResolvedConfig(RunConfig):
    """A RunConfig whose plugin names and options are filled in and checked (made by :func:`resolved`)."""

    def is_current(self) -> bool:
        """True while it holds what was resolved (nothing was changed since)."""
        return getattr(self, "_resolved_form", None) == stable_hash(self.to_dict(), 64)

    def pretrain_dict(self) -> dict[str, Any]:
        """What determines the pretrained weights (execution-only settings are left out)."""
        d = resolved(self).to_dict()
        out = {k: d[k] for k in ("data", "encoder", "method", "train")}
        for key in EXECUTION_ONLY_TRAIN_KEYS:
            out["train"].pop(key)
        return out

    @property
    def pretrain_hash(self) -> str:
        return stable_hash(self.pretrain_dict())

    @property
    def config_hash(self) -> str:
        """The whole run except the pretraining seed: rows of one configuration trained with several
        seeds share it and carry the seed in their ``pretrain_seed`` column."""
        d = resolved(self).to_dict()
        d.pop("workdir"), d.pop("results")
        for key in EXECUTION_ONLY_TRAIN_KEYS + ("seed",):
            d["train"].pop(key)
        return stable_hash(d)


def resolve_config(preset: str = "cpu", yaml_file: str | Path | None = None,
                   overrides: list[str] | dict[str, Any] | None = None) -> ResolvedConfig:
    """:func:`~harness.config.load_config` (preset → method defaults → YAML → ``--set``), resolved."""
    return resolved(load_config(preset, yaml_file, overrides))


def resolved(cfg: RunConfig) -> ResolvedConfig:
    if isinstance(cfg, ResolvedConfig) and cfg.is_current():
        return cfg
    fields = {f.name: copy.deepcopy(getattr(cfg, f.name)) for f in dataclasses.fields(RunConfig)}
    out = ResolvedConfig(**fields)
    method = METHODS.get(cfg.method.name)
    out.encoder.name = method.encoder_name(cfg)
    out.method.modality = method.modality_name(cfg)
    out.method.options = _as_dict(method.resolve_options(out))
    out.encoder.options = _as_dict(ENCODERS.get(out.encoder.name).resolve_options(out))
    if out.protocol.name in PROTOCOLS:  # an unknown protocol fails where it is used, with suggestions
        out.protocol.options = _as_dict(PROTOCOLS.get(out.protocol.name).resolve_options(out))
    check_train(out, pretrains=getattr(method, "pretrains", True))
    out._resolved_form = stable_hash(out.to_dict(), 64)  # not a field: replace() and YAML leave it out
    return out


def _finite(name: str, value: float, *, low: float, strict: bool) -> None:
    ok = math.isfinite(value) and (value > low if strict else value >= low)
    if not ok:
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise HarnessError(f"config key 'train.{name}' must be a finite number {bound}, got {value!r}")


def check_train(cfg: RunConfig, *, pretrains: bool = True) -> None:
    """Clear errors for training settings that cannot work (named by their config key)."""
    t = cfg.train
    if t.optimizer not in OPTIMIZERS:
        raise UnknownNameError("optimizer (train.optimizer)", t.optimizer, list(OPTIMIZERS))
    if t.schedule not in SCHEDULES:
        raise UnknownNameError("schedule (train.schedule)", t.schedule, list(SCHEDULES))
    if t.amp not in AMP_MODES:
        raise UnknownNameError("AMP mode (train.amp)", t.amp, list(AMP_MODES))
    _finite("lr", t.lr, low=0.0, strict=True)
    _finite("weight_decay", t.weight_decay, low=0.0, strict=False)
    _finite("gamma", t.gamma, low=0.0, strict=True)
    _finite("min_lr", t.min_lr, low=0.0, strict=False)
    _finite("momentum", t.momentum, low=0.0, strict=False)
    if len(t.betas) != 2 or not all(math.isfinite(b) and 0.0 <= b < 1.0 for b in t.betas):
        raise HarnessError(f"config key 'train.betas' must be two numbers in [0, 1), got {t.betas}")
    if not (math.isfinite(t.warmup) and 0.0 <= t.warmup < 1.0):
        raise HarnessError(f"config key 'train.warmup' is a fraction of the budget in [0, 1), got {t.warmup}")
    bad = [m for m in t.milestones if not (math.isfinite(m) and 0.0 < m <= 1.0)]
    if bad:
        raise HarnessError(f"config key 'train.milestones' holds fractions of the training budget in (0, 1] "
                           f"(e.g. [0.8]: lr × gamma after 80 % of the steps), got {t.milestones}")
    if list(t.milestones) != sorted(t.milestones):
        raise HarnessError(f"config key 'train.milestones' must be increasing, got {t.milestones}")
    for name in ("steps", "epochs", "checkpoint_every", "num_threads", "max_steps_per_epoch", "log_every"):
        if getattr(t, name) < 0:
            raise HarnessError(f"config key 'train.{name}' must be >= 0, got {getattr(t, name)}")
    if t.batch_size < 1:
        raise HarnessError(f"config key 'train.batch_size' must be >= 1, got {t.batch_size}")
    if pretrains and t.steps == 0 and t.epochs == 0:
        raise HarnessError(f"train.steps=0 and train.epochs=0 give method {cfg.method.name!r} no training at all; "
                           f"set a budget (e.g. --set train.steps=320), or use --method random for an untrained "
                           f"backbone")
