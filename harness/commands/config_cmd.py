"""``harness config``: see a run's configuration before it runs.

    harness config show [--preset P] [--method M] [--dataset D] [--set K=V ...] [--config YAML] [--markdown]
    harness config paper-docs [--out docs/paper-configs.md] [--check]

``show`` prints the fully resolved configuration (every plugin's options filled in: the method's,
the encoder's, the protocol's; :func:`harness.resolve.resolved`) as YAML that ``--config``
reads back, with its ``pretrain_hash`` and ``config_hash`` as comments. Read it back with the same
``--preset`` (the preset is chosen on the command line). With ``--dataset`` the dataset is opened
(auto-prepared if it is a built-in one) and the settings the method derives from the data and the
budget (a queue length, an EMA momentum, a decoder depth) are shown too, as comments.

``paper-docs`` writes the ``paper`` configuration of every built-in method as one markdown page
(docs/paper-configs.md; ``--check`` fails when the committed page is not what the code gives).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from .. import atomic
from ..config import RunConfig, load_config
from ..resolve import resolved
from ..errors import HarnessError
from ..registry import METHODS
from .common import add_config_arguments, config_from_args

PAPER_DOCS = Path("docs/paper-configs.md")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="show a resolved configuration (and the paper configurations page)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    csub.required = True
    show = csub.add_parser("show", help="print the resolved configuration as YAML, with its hashes")
    add_config_arguments(show)
    show.add_argument("--protocol", help="the protocol whose options to show (--set protocol.name=...)")
    show.add_argument("--markdown", action="store_true", help="a markdown section instead of plain YAML")
    show.set_defaults(func=_show)
    docs = csub.add_parser("paper-docs", help="write the paper configuration of every built-in method (markdown)")
    docs.add_argument("--out", default=str(PAPER_DOCS), help=f"where to write it (default {PAPER_DOCS})")
    docs.add_argument("--check", action="store_true", help="only compare with the file; exit 1 when it differs")
    docs.set_defaults(func=_paper_docs)


# --- the text ----------------------------------------------------------------------------------------
def config_yaml(resolved: RunConfig) -> str:
    """The resolved configuration as YAML (tuples as lists, key order as the dataclasses)."""
    return yaml.safe_dump(json.loads(json.dumps(resolved.to_dict())), sort_keys=False, allow_unicode=True)


def derived_settings(cfg: RunConfig) -> tuple[dict[str, Any], str]:
    """The method's derived settings on ``cfg``'s dataset and budget, and what they were derived from
    (the training clips, steps per epoch and optimizer steps, as :class:`harness.engine.trainer.Trainer`
    counts them on one process)."""
    import torch

    from ..contracts import DataInfo, build_method
    from ..data.prepared.kinds import resolve_dataset
    from ..engine.distributed import ShardedBatches
    from ..engine.loop import train_indices
    from ..engine.schedule import train_budget

    res = resolved(cfg)
    ds = resolve_dataset(cfg.data, cfg.workdir)
    idx = train_indices(ds, cfg)
    t = res.train
    per_epoch, total, _ = train_budget(t, len(ShardedBatches(ds, idx, t.batch_size)))
    info = DataInfo(topology=ds.topology, num_classes=ds.num_classes, frames=res.data.frames,
                    persons=ds.num_persons, train_samples=int(len(idx)), batch_size=t.batch_size, total_steps=total)
    with torch.random.fork_rng(devices=[]):
        derived = build_method(cfg, info).derived_settings()
    return derived, (f"dataset {ds.kind} ({ds.root}): {len(idx):,} training clips, {per_epoch:,} steps per epoch, "
                     f"{total:,} optimizer steps")


def milestones_text(resolved: RunConfig) -> str:
    """``train.milestones`` (fractions of the budget) in epochs or steps, which read better."""
    t = resolved.train
    if not t.milestones or t.schedule != "step":
        return ""
    unit, n = ("steps", t.steps) if t.steps > 0 else ("epochs", t.epochs)
    at = [int(round(m * n)) for m in t.milestones]
    return f"train.milestones are fractions of the budget of {n} {unit}: lr × {t.gamma:g} after {unit} {at}"


def show_text(cfg: RunConfig, command: str, *, with_derived: bool = False) -> str:
    res = resolved(cfg)
    lines = [f"# {command}",
             "# the res configuration (every plugin option filled in); read it back with",
             f"#   --preset {res.preset} --config FILE",
             f"# pretrain_hash: {res.pretrain_hash}",
             f"# config_hash: {res.config_hash}"]
    if milestones_text(res):
        lines.append(f"# {milestones_text(res)}")
    if with_derived:
        derived, source = derived_settings(cfg)
        if derived:
            lines.append(f"# derived by method {res.method.name} from {source}:")
            lines += [f"#   {k}: {v}" for k, v in derived.items()]
        else:
            lines.append(f"# method {res.method.name} derives no settings from the data ({source})")
    return "\n".join(lines) + "\n" + config_yaml(res)


def markdown_section(cfg: RunConfig, command: str) -> str:
    res = resolved(cfg)
    cls = METHODS.get(res.method.name)
    title = f"`{res.method.name}`: {cls.display_label()}" + (f" ({cls.paradigm})" if cls.paradigm else "")
    return "\n".join([f"## {title}", "", f"`{command}`", "",
                      f"pretrain_hash `{res.pretrain_hash}`, config_hash `{res.config_hash}`"
                      + (f"; {milestones_text(res)}" if milestones_text(res) else ""), "",
                      "```yaml", config_yaml(res).rstrip("\n"), "```", ""])


def builtin_methods() -> list[str]:
    """The methods shipped with the harness (third-party plugins, and classes a test registers, are
    left off the committed page): those defined in the ``harness.methods`` package."""
    return [e.name for e in METHODS.entries() if e.source == "builtin"
            and getattr(e.obj, "__module__", "").startswith("harness.methods.")]


def paper_page() -> str:
    parts = ["# The `paper` configuration of every method", "",
             "Generated by `harness config paper-docs` from the code (`harness config show --preset paper",
             "--method NAME` prints one of them); do not edit by hand: `tests/test_config_show.py` fails when",
             "this page is not what the code gives. Each block is the fully resolved configuration: the",
             "preset, the method's own training defaults, and every option of the method, its encoder and",
             "the default protocol (`linear`). Settings a method derives from the dataset and the budget",
             "(queue lengths, EMA momenta) are not part of it: `harness config show --preset paper --method",
             "NAME --dataset D` shows them.", ""]
    for name in builtin_methods():
        cfg = load_config("paper", overrides={"method.name": name})
        parts.append(markdown_section(cfg, f"harness config show --preset paper --method {name}"))
    return "\n".join(parts)


# --- the commands ------------------------------------------------------------------------------------
def _command_line(args: argparse.Namespace) -> str:
    words = ["harness config show", f"--preset {args.preset}"]
    for flag in ("method", "dataset", "variant", "protocol", "config"):
        if getattr(args, flag, None):
            words.append(f"--{flag} {getattr(args, flag)}")
    words += [f"--set {o}" for o in args.overrides]
    return " ".join(words)


def _show(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    command = _command_line(args)
    if args.markdown:
        sys.stdout.write(markdown_section(cfg, command))
    else:
        sys.stdout.write(show_text(cfg, command, with_derived=args.dataset is not None))
    return 0


def _paper_docs(args: argparse.Namespace) -> int:
    text = paper_page()
    out = Path(args.out)
    if args.check:
        current = out.read_text(encoding="utf-8") if out.is_file() else None
        if current != text:
            print(f"{out} is not current: run `harness config paper-docs --out {out}`", file=sys.stderr)
            return 1
        print(f"{out} is current")
        return 0
    if not out.parent.is_dir():
        raise HarnessError(f"{out.parent}: no such folder")
    atomic.write_text(out, text)
    print(f"wrote {out} ({len(builtin_methods())} methods)")
    return 0
