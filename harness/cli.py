"""The ``harness`` command line. Each subcommand lives in its own module with ``add_parser``."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from .errors import HarnessError

# subcommand modules, in the order `harness --help` lists them; each defines add_parser(subparsers)
COMMAND_MODULES = (
    "harness.commands.list_cmd",
    "harness.commands.config_cmd",
    "harness.commands.data_cmd",
    "harness.commands.pretrain_cmd",
    "harness.commands.run_cmd",
    "harness.commands.eval_detection_cmd",
    "harness.commands.fuse_cmd",
    "harness.commands.bench_cmd",
    "harness.commands.tables_cmd",
    "harness.commands.results_cmd",
    "harness.commands.reproduce_cmd",
    "harness.commands.tune_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0] if __doc__ else None)
    from . import __version__

    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in COMMAND_MODULES:
        if importlib.util.find_spec(mod) is not None:
            importlib.import_module(mod).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HarnessError as exc:
        print(f"harness {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
