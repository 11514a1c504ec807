"""``harness run``: pretrain (or reuse the checkpoint with the same config hash), then evaluate.

    harness run --method usdrl --protocol linear|knn|semi|detection [--dataset D] [--preset P]
    harness run --protocol linear --checkpoint FILE [--set encoder.options.hidden=64 --set data.frames=64]

The pretrained run is found by its ``pretrain_hash`` under ``<workdir>/runs``; an unfinished one is
resumed. The protocol evaluates on ``protocol.dataset`` (default: the pretraining dataset; another
one gives a transfer evaluation, e.g. NTU-60 → PKU-MMD I). Result rows are appended to your own
results store, ``<workdir>/results/results.csv`` (``.harness/results`` by default; ``--results DIR``
chooses another), never to the committed campaign store ``results/`` that ``harness reproduce`` fills,
and printed as a table (``--json``: a JSON list of rows). ``harness tables --results .harness/results``
renders your store.

``--checkpoint FILE`` evaluates the backbone in FILE without pretraining: a harness ``backbone.pt`` or
training checkpoint, or a published reference checkpoint (USDRL ``checkpoint_NNNN.pth.tar``, UmURL's,
MAMP ``checkpoint-N.pth``; docs/reference/checkpoints.md). Files are read weights-only; the method
and encoder come from the file, the shapes from the configuration (``--set`` values), and every
tensor must fit. Rows carry the file's sha256 (``extra.checkpoint_sha256``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tabulate import tabulate

from ..checkpoints import read_checkpoint
from ..config import RunConfig
from ..resolve import resolved
from ..errors import HarnessError
from ..pipeline import evaluate
from ..results.read import CAMPAIGN_STORE
from .common import add_config_arguments, config_from_args, parse_ints, print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="pretrain (or reuse) and evaluate with a protocol",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(p)
    p.add_argument("--protocol", help="linear, knn, semi, detection (--set protocol.name=...)")
    p.add_argument("--eval-dataset", help="evaluate on another dataset (transfer; --set protocol.dataset=...)")
    p.add_argument("--pretrain-seeds", metavar="S,S,...",
                   help="pretrain and evaluate once per seed (train.seed), e.g. 0,1,2; rows carry pretrain_seed")
    p.add_argument("--checkpoint", metavar="FILE",
                   help="evaluate the backbone in FILE without pretraining (harness backbone.pt / last.pt, or a "
                        "USDRL, UmURL or MAMP reference checkpoint); shapes come from --set values")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-record", action="store_true", help="do not append rows to the results store")
    p.add_argument("--json", action="store_true", help="print the result rows as a JSON list")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.eval_dataset:
        args.overrides.append(f"protocol.dataset={args.eval_dataset}")
    if args.checkpoint:
        cfg, rows = _run_checkpoint(args)
    else:
        seeds = parse_ints(args.pretrain_seeds, "--pretrain-seeds") if args.pretrain_seeds else [None]
        cfgs = [config_from_args(args, extra=[] if s is None else [f"train.seed={s}"]) for s in seeds]
        for c in cfgs:
            resolved(c)  # every seed's configuration is checked before the first one trains
        rows = []
        for cfg in cfgs:
            rows += evaluate(cfg, progress=not args.no_progress, record=not args.no_record)
    if args.json:
        print_json([r.as_dict() for r in rows])
        if not args.no_record:  # stdout is the JSON alone
            print(_where(rows, cfg), file=sys.stderr)
        return 0
    table = [(r.method, r.variant, r.encoder, r.dataset, r.split, r.protocol, r.metric, r.pretrain_seed, r.seed,
              f"{r.value:.4f}") for r in rows]
    print(tabulate(table, headers=["method", "variant", "encoder", "dataset", "split", "protocol", "metric",
                                   "pretrain seed", "seed", "value"]))
    if not args.no_record:
        print("\n" + _where(rows, cfg))
    return 0


def _where(rows: list, cfg: RunConfig) -> str:
    """Where the rows went, said on every run: your own store unless ``--results`` chose the campaign's."""
    store = Path(cfg.results)
    if store.resolve() == Path(CAMPAIGN_STORE).resolve():
        return f"appended {len(rows)} row(s) to {store / 'results.csv'} (the campaign store, chosen by --results)"
    return (f"appended {len(rows)} row(s) to {store / 'results.csv'} (your own store: `harness tables --results "
            f"{store}` renders it; the committed tables under results/ are `harness reproduce`'s)")


def _run_checkpoint(args: argparse.Namespace) -> tuple[RunConfig, list]:
    """``--checkpoint FILE``: read the file once, check it against ``--method``, evaluate it."""
    if args.pretrain_seeds:
        raise HarnessError("--pretrain-seeds and --checkpoint exclude each other: a checkpoint is one "
                           "pretrained backbone")
    ckpt = read_checkpoint(args.checkpoint)
    if args.method and args.method != ckpt.method:
        raise HarnessError(f"{ckpt.path}: the file is a {ckpt.describe()} (method {ckpt.method}), "
                           f"not method {args.method!r}; leave --method out")
    cfg = config_from_args(args, extra=[] if args.method else [f"method.name={ckpt.method}"])
    return cfg, evaluate(cfg, progress=not args.no_progress, record=not args.no_record, checkpoint=ckpt)
