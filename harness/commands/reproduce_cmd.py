"""``harness reproduce``: run everything one paper table or figure needs, then render it.

    harness reproduce --table N [--preset P] [--dataset D] [--methods a,b] [--dry-run]
    harness reproduce --figure 4|5 [...]

Each planned configuration goes through ``harness run``'s evaluate: pretraining is reused by
``pretrain_hash`` (an unfinished run resumes), and a configuration whose rows are already in the
results store (same ``config_hash``) is skipped, so a killed reproduce continues where it stopped.
The store is the committed campaign store ``results/results.csv`` unless ``--results DIR`` names
another (``harness run`` writes the user's own, ``<workdir>/results``).
Methods that are not installed are reported and skipped; a run that fails is reported and the others
go on (exit status 1 at the end). Then the table is written to ``<results>/tables/tableN.md`` (or the
figure to ``<results>/figures``). ``--dry-run`` prints the plan with each run's status and runs nothing.

``--set KEY=VALUE`` applies to every run (e.g. ``--set train.steps=640``); the plan's own settings
(method, variant, encoder, modality, protocol, seeds) win over it. Table 4 fine-tunes the whole model
for detection on the untrimmed version of ``--dataset`` (synthetic by default); ``--eval-dataset`` points
the protocols at another prepared folder (e.g. PKU-MMD Phase I, untrimmed).

``--executor local|slurm|debug`` runs the plan as jobs, one per planned pretraining with the protocol
runs that reuse it (``--jobs N`` at once; SLURM job arrays with ``--slurm-*``, ``--gpus-per-job``); the
jobs' rows are folded into the store when they are done. ``--status`` lists every planned run's state
(done, running, queued, failed with its log, to run) from the store and the run and campaign folders.
See docs/campaigns.md.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from tabulate import tabulate

from ..config import PRESETS
from ..errors import HarnessError
from ..figures import default_alpha
from ..registry import PROTOCOLS
from .common import parse_ints
from .executor_args import add_executor_arguments, executor_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="run what a paper table/figure needs, then render it",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--table", type=int, choices=[1, 2, 3, 4, 5, 6], help="a paper table (1-5) or the diagnostics table 6")
    what.add_argument("--figure", type=int, choices=[4, 5])
    p.add_argument("--preset", default="cpu", help=f"one of {', '.join(PRESETS)} (default: cpu)")
    p.add_argument("--config", metavar="YAML", help="a YAML file of config values for every run")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value in every run, e.g. --set train.steps=640")
    p.add_argument("--dataset", help="pretraining/evaluation dataset (name or prepared folder; default: preset's)")
    p.add_argument("--eval-dataset", help="evaluate on this dataset instead (e.g. an untrimmed PKU-MMD folder)")
    p.add_argument("--methods", help="comma-separated methods to include (default: all the table has)")
    p.add_argument("--seeds", help="comma-separated protocol seeds (default: each protocol's own, e.g. 0,1,2 for "
                                   "linear probes, 0 for detection)")
    p.add_argument("--pretrain-seeds", default="0,1,2",
                   help="comma-separated pretraining seeds (train.seed); every run is trained once per seed and the "
                        "tables show mean ± std over them (default 0,1,2)")
    p.add_argument("--no-floors", action="store_true", help="do not plan the untrained floor of every run")
    for name in PROTOCOLS.names():  # each protocol's own options for its planned runs
        for flag in PROTOCOLS.get(name).reproduce_flags:
            p.add_argument(flag.flag, choices=list(flag.choices), default=flag.default, dest=_flag_dest(flag.flag),
                           help=f"{flag.help} (default {flag.default})")
    p.add_argument("--workdir", help="datasets, checkpoints and logs (default .harness)")
    p.add_argument("--results", help="the results store folder (default results: the committed campaign store)")
    p.add_argument("--out", help="where the table goes (default <results>/tables/<dataset>-<preset>)")
    p.add_argument("--figures-out", help="where figures go (default <results>/figures/<dataset>-<preset>)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and each run's status; run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--status", action="store_true", help="list every planned run's state (done, running, queued, "
                                                         "failed, to run) from the files; run nothing")
    add_executor_arguments(p)
    p.set_defaults(func=run)


def _flag_dest(flag: str) -> str:
    return "protocol_flag_" + flag.lstrip("-").replace("-", "_")


def _flag_values(args: argparse.Namespace) -> dict[str, str]:
    return {flag.flag: getattr(args, _flag_dest(flag.flag)) for name in PROTOCOLS.names()
            for flag in PROTOCOLS.get(name).reproduce_flags}


def _measured_kind(outcomes, store, fallback: str) -> str:
    """The dataset kind the plan's rows were recorded under (the store's ``dataset`` column)."""
    hashes = {o.config_hash for o in outcomes if o.config_hash}
    if store.empty or not hashes:
        return fallback
    kinds = Counter(store[store["config_hash"].astype(str).isin(hashes)]["dataset"].astype(str))
    return kinds.most_common(1)[0][0] if kinds else fallback


def _fallback_kind(name: str) -> str:
    from ..figures import _dataset_kind

    return _dataset_kind(name)


def run(args: argparse.Namespace) -> int:
    from .. import reproduce as R
    from ..results import load_results
    from .tables_cmd import default_tables_dir, draw_figures, refresh_index, render

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    settings = R.Settings(preset=args.preset, dataset=args.dataset, workdir=args.workdir, results=args.results,
                          config_file=args.config, overrides=list(args.overrides), eval_dataset=args.eval_dataset)
    base = settings.base()  # checks the preset, YAML and --set values before anything runs
    items = R.plan(table=args.table, figure=args.figure, methods=methods, seeds=parse_ints(args.seeds, "--seeds") if args.seeds else None,
                   pretrain_seeds=parse_ints(args.pretrain_seeds, "--pretrain-seeds"),
                   default_alpha=default_alpha(args.preset), floors=not args.no_floors,
                   flags=_flag_values(args))
    target = f"Table {args.table}" if args.table else f"Figure {args.figure}"
    name = f"table{args.table}" if args.table else f"figure{args.figure}"  # the campaign folder's name
    if not items:
        raise HarnessError(f"nothing to run for {target} with --methods {args.methods}")
    opts = executor_options(args)
    print(f"{target}: {len(items)} planned run(s), preset {args.preset}, dataset {base.data.dataset}"
          + (f", evaluated on {args.eval_dataset}" if args.eval_dataset else ""))
    if args.status:
        return _print_status(items, settings, name)
    if args.dry_run:
        print(tabulate(R.plan_table(items, settings), headers=R.PLAN_HEADERS, tablefmt="simple"))
        if opts.kind == "slurm":
            _write_sbatch(items, settings, opts, name)
        return 0
    if opts.kind == "inprocess":
        from ..results.pending import fold_pending

        fold_pending(base.results)  # rows an interrupted campaign's jobs left pending: the tables read results.csv
        outcomes = R.execute(items, settings, progress=not args.no_progress)
    else:
        from ..reproduce.campaign import run_campaign

        outcomes = run_campaign(items, settings, opts, name)
    counts = Counter(o.status for o in outcomes)
    print(f"{target}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for o in outcomes:
        if o.status == "not installed":
            print(f"  skipped {o.item.target}: {o.message}")
        elif o.status == "failed":
            print(f"  FAILED {o.item.target}: {o.message}", file=sys.stderr)
    results = Path(base.results)
    print(f"{target}: rows in {results / 'results.csv'}")
    if counts.get("queued"):
        print(f"{target}: {counts['queued']} run(s) still queued or running: not rendered yet "
              f"(`--status` shows them; the same command renders once they are done)")
        return 1 if counts.get("failed") else 0
    fallback = _fallback_kind(args.eval_dataset or base.data.dataset)
    kind = _measured_kind(outcomes, load_results(results), fallback)
    if args.table:
        render(results, Path(args.out) if args.out else default_tables_dir(results, kind, args.preset),
               dataset=kind, preset=args.preset,
               tables=[args.table], split=base.protocol.split or base.data.split)
    else:
        fig_out = Path(args.figures_out) if args.figures_out else results / "figures" / f"{kind}-{args.preset}"
        run_dirs, missing = None, None
        if args.figure == 5:
            run_dirs = {(o.item.method, o.item.variant): (Path(o.run_dir) if o.run_dir else None) for o in outcomes}
            missing = {(o.item.method, o.item.variant): f"{o.status}: {o.message}" for o in outcomes
                       if not o.run_dir}
        draw_figures(results, fig_out, dataset=kind, preset=args.preset, workdir=base.workdir,
                     run_dirs=run_dirs, missing=missing, which=(args.figure,))
    refresh_index(results)  # the folder's generated README.md, if it has one, lists what was just written
    return 1 if counts.get("failed") else 0


def _print_status(items, settings, name: str) -> int:
    from ..reproduce.status import STATUS_HEADERS, status_counts, status_rows

    rows = status_rows(items, settings, name)
    print(tabulate(rows, headers=STATUS_HEADERS, tablefmt="simple", maxcolwidths=[None, 60, 60, None, None, None, 100]))
    print("status: " + ", ".join(f"{n} {s}" for s, n in status_counts(rows).items()))
    return 0


def _write_sbatch(items, settings, opts, name: str) -> None:
    """The SLURM array files the campaign would submit (the jobs still to run), for inspection."""
    from .. import atomic
    from ..reproduce.executors import sbatch_script, slurm_parameters, submitit_folder
    from ..reproduce.jobs import campaign_dir, group_jobs, job_done
    from ..results.pending import load_with_pending

    store = load_with_pending(settings.base().results)
    jobs = [j for j in group_jobs(items, settings).jobs if not job_done(j, settings, store)]
    campaign = campaign_dir(settings, name)
    for pretrains, label in ((True, "pretraining"), (False, "floors")):
        group = [j for j in jobs if j.pretrains == pretrains]
        if not group:
            continue
        path = campaign / f"slurm-{label}.sbatch"
        params = slurm_parameters(opts, name=f"harness-{name}", pretrains=pretrains)
        atomic.write_text(path, sbatch_script(submitit_folder(campaign), params, len(group)))
        print(f"{label}: an array of {len(group)} job(s): {path}")
