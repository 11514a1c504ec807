"""``harness fuse``: ensemble saved per-sample scores (e.g. joint + bone + motion models).

The papers' three-stream rows ("3s-…, J+M+B") sum the class scores of separately trained models.
Scores are softmax-normalised per model before the weighted sum, so models whose logits have
different scales (linear logits, kNN votes) can be mixed.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from ..config import RunConfig
from ..errors import HarnessError
from ..evaluation.scores import fuse_scores
from ..results import ResultRow, append_rows
from .common import print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fuse", help="ensemble per-sample scores of several models (J+M+B)")
    p.add_argument("scores", nargs="+", help="scores .npz files written by protocols (runs/*/scores/)")
    p.add_argument("--weights", help="comma-separated weights, one per file (default: all 1)")
    p.add_argument("--raw", action="store_true", help="sum raw scores instead of per-model softmax")
    p.add_argument("--record", nargs=3, metavar=("METHOD", "DATASET", "PROTOCOL"),
                   help="append the fused top-1/top-5 to the results store under these names")
    p.add_argument("--results", default=RunConfig().results,
                   help=f"results store folder (with --record; default {RunConfig().results}, your own store)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    weights = [1.0] * len(args.scores)
    if args.weights:
        try:
            weights = [float(w) for w in args.weights.split(",")]
        except ValueError:
            raise HarnessError(f"--weights must be numbers, got {args.weights!r}") from None
        if len(weights) != len(args.scores):
            raise HarnessError(f"{len(weights)} weights for {len(args.scores)} score files")
    fused, labels = fuse_scores(args.scores, weights, softmax=not args.raw)
    top = np.argsort(-fused, axis=1)[:, :5]
    top1 = float((top[:, 0] == labels).mean())
    top5 = float((top == labels[:, None]).any(axis=1).mean())
    result = {"files": args.scores, "weights": weights, "top1": top1, "top5": top5, "num_samples": int(len(labels))}
    if args.record:
        method, dataset, protocol = args.record
        extra = json.dumps({"files": args.scores, "weights": weights})
        store = append_rows(args.results, [ResultRow(method, dataset, protocol, m, result[m], modality="jbm",
                                                     extra=extra) for m in ("top1", "top5")])
    if args.json:
        print_json(result)
    else:
        print(f"fused {len(args.scores)} models on {len(labels)} samples: top-1 {100 * top1:.2f} %, "
              f"top-5 {100 * top5:.2f} %")
        if args.record:
            print(f"appended 2 row(s) to {store}")
    return 0
