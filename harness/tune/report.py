"""A study's outcome: :class:`TuneResult` (counts, best and paper trials), the best weights as a config
file for ``harness run --config`` (written atomically), and the paper-vs-best table."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState
from tabulate import tabulate

from .. import atomic
from ..config import RunConfig, load_config
from ..errors import HarnessError
from ..registry import METHODS
from .spec import TuneSpec
from .storage import PAPER_ATTR

# config keys the best file's "tuned with" comment leaves out: where things live, and the method
# (its section is the file's body) and protocol (not part of pretraining)
NOT_SHOWN = ("workdir", "results", "method.", "data.dataset", "protocol.")


@dataclass
class TuneResult:
    study: str
    storage: str
    params: list[str]
    paper: dict[str, float]
    space: dict[str, list[float]]
    complete: int
    pruned: int
    failed: int
    best_number: int
    best_value: float
    best_params: dict[str, float]
    paper_number: int | None
    paper_value: float | None  # None when the paper trial was pruned or has not finished
    paper_state: str
    out: str = ""
    ran_here: int = 0
    workers: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(study: optuna.Study, spec: TuneSpec, params: list[str]) -> TuneResult:
    trials = study.get_trials(deepcopy=False)
    counts = {s: sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise HarnessError(f"study {spec.study!r} has no complete trial yet ({counts[TrialState.PRUNED]} pruned, "
                           f"{counts[TrialState.FAIL]} failed)")
    best = max(complete, key=lambda t: (t.value, -t.number))
    # the paper weights' trial: a complete one first, then a pruned one (a retry repeats it)
    papers = sorted((t for t in trials if t.user_attrs.get(PAPER_ATTR)),
                    key=lambda t: (t.state != TrialState.COMPLETE, t.state != TrialState.PRUNED, t.number))
    paper = papers[0] if papers else None
    return TuneResult(
        study=spec.study, storage=spec.storage, params=params, paper=spec.paper, space=spec.space,
        complete=counts[TrialState.COMPLETE], pruned=counts[TrialState.PRUNED], failed=counts[TrialState.FAIL],
        best_number=best.number, best_value=float(best.value), best_params={p: float(best.params[p]) for p in params},
        paper_number=None if paper is None else paper.number,
        paper_value=float(paper.value) if paper is not None and paper.state == TrialState.COMPLETE else None,
        paper_state="absent" if paper is None else paper.state.name.lower())


def best_yaml(cfg: RunConfig, result: TuneResult, spec: TuneSpec) -> str:
    """The best weights as a config file for ``harness run --config``; everything else as comments."""
    options = dict(cfg.method.options)
    options.update(result.best_params)
    body = {"method": {"name": cfg.method.name, "variant": cfg.method.variant, "modality": cfg.method.modality,
                       "options": options}}
    method_cls = METHODS.get(cfg.method.name)
    paper = "pruned" if result.paper_value is None else f"{result.paper_value:.4f}"
    hold = spec.base["data"]["options"]["holdout"]
    lines = [
        f"# harness tune: the best loss weights of study {result.study!r} ({result.storage})",
        f"# method {cfg.method.name} (variant {cfg.method.variant}, modality {method_cls.modality_name(cfg)}, "
        f"encoder {method_cls.encoder_name(cfg)}), preset {cfg.preset}, dataset {cfg.data.dataset}, "
        f"split {cfg.data.split}",
        f"# objective: kNN-1 on a {hold['fraction']:.0%} class-stratified hold-out (seed {hold['seed']}) of "
        f"{cfg.data.split}/train, pretraining on the rest; the test split was not used",
        f"# best: trial {result.best_number}, val kNN-1 {result.best_value:.4f}; paper weights "
        f"(trial {result.paper_number}): {paper}; {result.complete} complete, {result.pruned} pruned trials",
        "# search: " + ", ".join(f"{k} log-uniform [{lo:.4g}, {hi:.4g}] (paper {result.paper[k]:.4g})"
                                 for k, (lo, hi) in result.space.items()),
    ]
    # compared with the preset as this method gets it (its train_defaults are not the user's changes)
    plain = load_config(cfg.preset, overrides={"method.name": cfg.method.name})
    changed = [(k, v) for k, v in changed_keys(plain.to_dict(), cfg.to_dict()) if not k.startswith(NOT_SHOWN)]
    if changed:
        lines.append("# tuned with: " + " ".join(f"--set {k}={v}" for k, v in changed))
    lines.append(f"# use: harness run --preset {cfg.preset} --config THIS_FILE --protocol linear")
    return "\n".join(lines) + "\n" + yaml.safe_dump(body, sort_keys=False)


def changed_keys(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Dotted keys whose value in ``b`` differs from ``a``'s, as ``--set`` would write them (plugin
    options one by one: ``encoder.options.hidden``)."""
    out = []
    for k in b:
        key = f"{prefix}{k}"
        if isinstance(b[k], dict) and isinstance(a.get(k, {}), dict):
            out += changed_keys(a.get(k, {}), b[k], key + ".")
        elif a.get(k) != b[k]:
            out.append((key, json.dumps(b[k]) if not isinstance(b[k], str) else b[k]))
    return out


def atomic_write_best(path: str | Path, cfg: RunConfig, result: TuneResult, spec: TuneSpec) -> None:
    atomic.write_text(path, best_yaml(cfg, result, spec))


def result_table(result: TuneResult) -> str:
    paper_col = f"paper (trial {result.paper_number})" if result.paper_number is not None else "paper"
    rows = [(p, f"{result.paper[p]:.6g}", f"{result.best_params[p]:.6g}") for p in result.params]
    paper_val = "pruned" if result.paper_value is None else f"{result.paper_value:.4f}"
    rows.append(("val kNN-1", paper_val, f"{result.best_value:.4f}"))
    return tabulate(rows, headers=["", paper_col, f"best (trial {result.best_number})"], disable_numparse=True)
