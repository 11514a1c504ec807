"""``harness list``: every registered method, encoder, protocol and dataset, with variants."""

from __future__ import annotations

import argparse

from tabulate import tabulate

from ..registry import REGISTRIES
from .common import print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list methods, encoders, protocols and datasets")
    p.add_argument("kind", nargs="?", choices=sorted(REGISTRIES), help="only this kind")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    kinds = [args.kind] if args.kind else list(REGISTRIES)
    listing = {k: [e.as_dict() for e in REGISTRIES[k].entries()] for k in kinds}
    if args.json:
        print_json(listing)
        return 0
    for kind in kinds:
        rows = [(e["name"], ", ".join(e["variants"]) or "-", e["source"], e["description"]) for e in listing[kind]]
        print(f"{kind}:")
        print(tabulate(rows, headers=["name", "variants", "from", "description"], tablefmt="simple"))
        print()
    return 0
