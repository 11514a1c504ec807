"""Arguments shared by the commands that take a run configuration."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..config import PRESETS, RunConfig, load_config
from ..errors import HarnessError


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="cpu", help=f"one of {', '.join(PRESETS)} (default: cpu)")
    p.add_argument("--config", metavar="YAML", help="a YAML file of config values")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=5 --set encoder=sttr")
    p.add_argument("--method", help="shorthand for --set method.name=...")
    p.add_argument("--dataset", help="a dataset name or a prepared folder (--set data.dataset=...)")
    p.add_argument("--variant", help="shorthand for --set method.variant=...")
    p.add_argument("--workdir", help="where datasets, checkpoints and logs go (default .harness)")
    p.add_argument("--results", help="the results store folder (default <workdir>/results, your own store; "
                                     "the committed campaign store results/ is `harness reproduce`'s)")


def parse_ints(text: str, what: str) -> list[int]:
    """``"0,1,2"`` → [0, 1, 2]; a clear error naming the option otherwise."""
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise HarnessError(f"{what} expects comma-separated integers, got {text!r}") from None
    if not out:
        raise HarnessError(f"{what} expects at least one integer, got {text!r}")
    return out


def config_from_args(args: argparse.Namespace, extra: list[str] | None = None) -> RunConfig:
    overrides: list[str] = []
    for attr, key in (("method", "method.name"), ("dataset", "data.dataset"),
                      ("variant", "method.variant"), ("protocol", "protocol.name"),
                      ("workdir", "workdir"), ("results", "results")):
        value = getattr(args, attr, None)
        if value is not None:
            overrides.append(f"{key}={value}")
    return load_config(args.preset, args.config, overrides + list(args.overrides) + list(extra or []))


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")
