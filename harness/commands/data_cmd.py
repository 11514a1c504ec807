"""``harness data prepare|info|check``."""

from __future__ import annotations

import argparse

from tabulate import tabulate

from ..data.prepared.format import check_prepared, open_prepared
from ..registry import DATASETS
from .common import print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="prepare, describe and check datasets")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    dsub.required = True

    prep = dsub.add_parser("prepare", help="convert raw files into a prepared folder")
    ksub = prep.add_subparsers(dest="kind", metavar="KIND")
    ksub.required = True
    for entry in DATASETS.entries():
        kp = ksub.add_parser(entry.name, help=entry.description)
        kp.add_argument("--raw", help="the raw source (folder or file)")
        kp.add_argument("--out", required=True, help="the prepared folder to write")
        kp.add_argument("--overwrite", action="store_true", help="replace an existing --out")
        entry.obj.add_arguments(kp)
        kp.set_defaults(func=_prepare, kind_cls=entry.obj)

    info = dsub.add_parser("info", help="describe a prepared folder")
    info.add_argument("path")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=_info)

    check = dsub.add_parser("check", help="scan a prepared folder for NaNs, empty samples, bad labels")
    check.add_argument("path")
    check.set_defaults(func=_check)


def _prepare(args: argparse.Namespace) -> int:
    for path in args.kind_cls.prepare(args):
        ds = open_prepared(path)
        print(f"wrote {path}: {ds.num_samples} samples, {ds.num_classes} classes, splits "
              + ", ".join(f"{s} {c}" for s, c in ds.split_counts().items()))
    return 0


def _info(args: argparse.Namespace) -> int:
    ds = open_prepared(args.path)
    info = ds.info()
    if args.json:
        print_json(info)
        return 0
    rows = [(k, v) for k, v in info.items() if k not in ("splits", "source")]
    rows += [(f"split {s}", ", ".join(f"{p} {n}" for p, n in parts.items())) for s, parts in info["splits"].items()]
    print(tabulate(rows, tablefmt="plain"))
    return 0


def _check(args: argparse.Namespace) -> int:
    ds = open_prepared(args.path)
    problems = check_prepared(ds)
    for line in problems:
        print(line)
    print(f"{args.path}: {ds.num_samples} samples checked, {len(problems)} problem(s)")
    return 1 if problems else 0
