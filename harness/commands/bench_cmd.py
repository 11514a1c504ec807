"""``harness bench augment|encoder``: throughput benchmarks (one process, ratios measured in one run)."""

from __future__ import annotations

import argparse
import importlib

# subcommand → module with add_arguments(parser) and run(args) -> int
BENCHMARKS = {
    "augment": "harness.benchmarks.augment",
    "encoder": "harness.benchmarks.encoder_bench",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="throughput benchmarks (augmentation, encoders)")
    bsub = p.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    bsub.required = True
    for name, modname in BENCHMARKS.items():
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name != modname:
                raise
            continue
        bp = bsub.add_parser(name, help=(mod.__doc__ or "").strip().splitlines()[0])
        mod.add_arguments(bp)
        bp.set_defaults(func=mod.run)
