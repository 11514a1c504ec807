#!/usr/bin/env python
"""The CPU training-step efficiency before and after a change, side by side (issue 14, part A).

    python scripts/cpu_bench.py --before REV [--rounds 3] [--compile] [--out results/bench/cpu-train.json]

Runs ``harness bench encoder --config cpu --threads 1 --clock process --json`` (DSTE; ``--encoders``)
alternately on the code of git revision ``--before`` (exported with ``git archive`` into a temporary
folder and imported from there) and on this working tree, ``--rounds`` times, plus, with
``--compile``, this tree's ``--compile`` step (torch.compile as ``train.compile=true``; its compile
time is reported apart and is not in the timing). Every run's efficiency is already a ratio to the
fp32 matmul rate measured in that same process, and the alternation spreads a shared machine's load
over both sides; the JSON keeps every run and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KEYS = ("train_efficiency", "train_samples_per_s", "infer_efficiency", "infer_samples_per_s",
        "matmul_gflops_per_s", "train_gflops_per_s", "compile_s")


def export_revision(rev: str, into: Path) -> Path:
    """``git archive REV`` extracted into ``into``, importable as ``harness`` (the plugin folders
    methods/ and protocols/ are linked where setup.py maps them: harness/methods, harness/protocols)."""
    archive = into / "tree.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "-C", str(REPO), "archive", rev], stdout=f, check=True)
    root = into / "tree"
    with tarfile.open(archive) as t:
        t.extractall(root, filter="data")
    for name in ("methods", "protocols"):
        link = root / "harness" / name
        if not link.exists():
            link.symlink_to(Path("..") / name)
    return root


def bench(pythonpath: Path | None, encoders: str, extra: list[str]) -> list[dict]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    cmd = [sys.executable, "-m", "harness.cli", "bench", "encoder", "--config", "cpu", "--threads", "1",
           "--clock", "process", "--json", "--encoders", encoders, *extra]
    out = subprocess.run(cmd, env=env, cwd=str(pythonpath or REPO), capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout)


def _rev(rev: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", rev], capture_output=True, text=True,
                          check=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--before", required=True, help="git revision of the 'before' code")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--compile", action="store_true", help="also time this tree's --compile step")
    p.add_argument("--encoders", default="dste")
    p.add_argument("--out", type=Path, default=REPO / "results" / "bench" / "cpu-train.json")
    args = p.parse_args(argv)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip() != ""
    sides = {"before": [], "after": []} | ({"after_compile": []} if args.compile else {})
    with tempfile.TemporaryDirectory() as tmp:
        before_tree = export_revision(args.before, Path(tmp))
        for _ in range(args.rounds):
            sides["before"] += bench(before_tree, args.encoders, [])
            sides["after"] += bench(None, args.encoders, [])
            if args.compile:
                sides["after_compile"] += bench(None, args.encoders, ["--compile"])
    median = {side: {enc: {k: statistics.median(r[k] for r in runs if r["encoder"] == enc)
                           for k in KEYS if all(r.get(k) is not None for r in runs if r["encoder"] == enc)}
                     for enc in args.encoders.split(",")} for side, runs in sides.items()}
    result = {
        "command": "harness bench encoder --config cpu --threads 1 --clock process --json",
        "before_rev": _rev(args.before), "after_rev": _rev("HEAD") + ("+working-tree" if dirty else ""),
        "rounds": args.rounds, "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "median": median, "runs": sides,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO))
    from harness import atomic

    atomic.write_text(args.out, json.dumps(result, indent=2) + "\n")
    for side, encs in median.items():
        for enc, m in encs.items():
            print(f"{side:14} {enc}: train efficiency {m['train_efficiency']:.1%}, "
                  f"{m['train_samples_per_s']:.1f} clips/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
