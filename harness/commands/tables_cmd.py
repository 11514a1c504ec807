"""``harness tables``: the paper's Tables 1–5 (and Figures 4–5) from the results store.

    harness tables [--preset P] [--dataset D] [--results DIR] [--out DIR] [--table N ...] [--figures]
    harness tables --index [--results DIR]
    harness tables --budget-curves [--results DIR]

Writes ``<out>/table1.md … table5.md`` (default ``<results>/tables``): the paper's rows and columns with
the measured numbers of ``--dataset`` at ``--preset`` beside them (mean ± std over seeds), marks for
cells the paper leaves empty ("—"), cells not measured ("not run") and rows that do not apply ("·"),
and a legend. Only ``<results>/results.csv`` is read; rows with a NaN or missing value are listed. A
table without one measured cell is not written (and a placeholder an earlier render left is deleted):
``<results>/README.md`` lists it as not run. ``--results`` defaults to the committed campaign store
``results/``; ``harness run`` writes your own, ``.harness/results`` (``--results .harness/results``).
``--index`` writes only ``<results>/README.md``: every table and figure under the folder with its
dataset, preset, n, code version and date, and what has not been run (:mod:`harness.tables.index`).
``<out>/table7.md`` is the pretraining cost of every method (:mod:`harness.tables.cost_table`: parameters, training
FLOPs per clip, steps, wall-clock, device-hours, peak memory, clips/s, hardware) from the rows' ``extra.cost``;
it reads every row of the dataset and preset, so every render refreshes it (``--table 7``: only it), and it is
not written while no row records a cost.
``<out>/per_class.md`` (per-class accuracy or AP, with confusion-matrix PNGs) comes from the rows'
per-sample predictions (``<results>/predictions/``, :mod:`harness.tables.per_class`) when they recorded any.
``--figures`` also draws Figure 4 (linear accuracy vs encoder.options.alpha, from the store) and Figure 5
(t-SNE of the four pretrained backbones found under ``--workdir``) into ``<results>/figures/<dataset>-<preset>``.
``--budget-curves`` draws only the budget curves (:mod:`harness.figures_budget`): probe accuracy against
pretraining steps of every method measured at two budgets or more in ``<results>/results.csv`` and the stores
one level down (``results/budget-*/``), with each store's untrained floor as a band, into
``<results>/figures/budget-<dataset>-<preset>.png`` with the points as ``.csv`` and ``.md`` beside it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import PRESETS, RunConfig
from ..errors import UnknownNameError
from ..results.read import CAMPAIGN_STORE


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tables", help="render the paper's Tables 1-5 (and figures) from the results store",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = RunConfig()
    p.add_argument("--preset", default="cpu", help=f"whose measurements to show: {', '.join(PRESETS)} (default cpu)")
    p.add_argument("--dataset", default=d.data.dataset,
                   help=f"measured dataset kind (synthetic, msr-action3d, ntu60, ...; default {d.data.dataset})")
    p.add_argument("--split", default=d.data.split, help="split shown when a table has no measurement (default xsub)")
    p.add_argument("--results", default=CAMPAIGN_STORE,
                   help="the results store folder (default results, the committed campaign store; `harness run` "
                        "writes .harness/results)")
    p.add_argument("--out", help="where the tables go (default <results>/tables/<dataset>-<preset>)")
    p.add_argument("--table", type=int, action="append", choices=[1, 2, 3, 4, 5, 6, 7],
                   help="only this table (repeatable; 6 = collapse diagnostics, 7 = pretraining cost)")
    p.add_argument("--figures", action="store_true", help="also draw Figures 4 and 5 as PNG")
    p.add_argument("--figures-out", help="where the figures go (default <results>/figures/<dataset>-<preset>)")
    p.add_argument("--workdir", default=d.workdir, help="where the pretrained runs are, for Figure 5 (default .harness)")
    p.add_argument("--tsne-seed", type=int, default=0, help="seed of Figure 5's class and sample choice")
    p.add_argument("--index", action="store_true",
                   help="only write <results>/README.md: every table and figure under --results with its dataset, "
                        "preset, n, code version and date, and what has not been run")
    p.add_argument("--budget-curves", action="store_true",
                   help="only draw <results>/figures/budget-<dataset>-<preset>.png (+ .csv, .md): probe accuracy "
                        "against pretraining steps from <results> and the stores one level down, with the floors")
    p.set_defaults(func=run)


def default_tables_dir(results: str | Path, dataset: str, preset: str) -> Path:
    """``<results>/tables/<dataset>-<preset>/``: tables of several datasets and presets live side by side."""
    return Path(results) / "tables" / f"{dataset}-{preset}"


def render(results: str | Path, out: str | Path, *, dataset: str, preset: str, tables=None,
           split: str = "xsub", echo=print) -> int:
    """Write the tables; print where they went and what is measured. Returns the number of store problems."""
    from .. import tables as T
    from ..tables.cost_table import COST_TABLE, write_cost_table

    if preset not in PRESETS:
        raise UnknownNameError("preset", preset, list(PRESETS))
    report = T.write_tables(results, out, dataset=dataset, preset=preset, default_split=split, skip_unmeasured=True,
                            tables=[n for n in tables or T.TABLES if n != COST_TABLE])
    for n, path in zip((n for n in report.tables if n not in report.skipped), report.paths):
        t = report.tables[n]
        measured = sum(c.measured for c in t.cells.values())
        echo(f"table {n}: {path} ({measured} of {len(t.cells)} harness cells measured on {dataset}/{preset})")
    for n in report.skipped:
        echo(f"table {n}: not written: no measured cell on {dataset}/{preset}")
    for path in report.removed:
        echo(f"removed {path}: a placeholder without one measured cell")
    cost = write_cost_table(results, out, dataset=dataset, preset=preset)  # Table 7: every row's cost
    if cost.path is not None:
        echo(f"table {COST_TABLE}: {cost.path} (pretraining cost recorded for {cost.table.recorded} of "
             f"{len(cost.table.rows)} rows on {dataset}/{preset})")
    else:
        echo(f"table {COST_TABLE}: not written: no row of {dataset}/{preset} records its pretraining cost"
             + (f" (removed the placeholder {cost.removed})" if cost.removed else ""))
    if report.tables and not any(c.measured for t in report.tables.values() for c in t.cells.values()):
        from ..results import load_results

        store = load_results(results)
        if len(store):
            have = store.groupby(["dataset", "preset"]).size()
            listing = ", ".join(f"--dataset {d} --preset {p or '(none)'} ({n} rows)" for (d, p), n in have.items())
            echo(f"no measurement for {dataset}/{preset}; the store has: {listing}")
    for p in report.store_problems:
        print(f"harness tables: warning: results.csv line {p['line']} is not read: {p['what']} "
              "(see `harness results check`)", file=sys.stderr)
    for p in report.problems:
        print(f"harness tables: warning: results.csv line {p['line']}: {p['method']} {p['variant']} {p['encoder']} "
              f"{p['protocol']} {p['metric']} seed {p['seed']}: {p['what']} is "
              f"{'missing' if not p['raw'] else repr(p['raw'])} (table {p['table']}, kept out of the mean)",
              file=sys.stderr)
    return len(report.problems) + len(report.store_problems)


def draw_figures(results: str | Path, out: str | Path, *, dataset: str, preset: str, workdir: str | Path,
                 tsne_seed: int = 0, run_dirs=None, missing=None, which=(4, 5), echo=print) -> None:
    from .. import figures as FG
    from ..tables import load_store

    if 4 in which:
        path, points = FG.figure4(load_store(results), out, dataset=dataset, preset=preset,
                                  default_alpha=FG.default_alpha(preset))
        if path is None:
            echo(f"figure 4: skipped: the store has no USDRL (DSTE) linear rows for {dataset}/{preset} "
                 "(run `harness reproduce --figure 4`)")
        else:
            echo(f"figure 4: {path} (α = {', '.join(f'{p.alpha:g}' for p in points)})")
    if 5 in which:
        panels = FG.figure5_panels(workdir, dataset=dataset, preset=preset, run_dirs=run_dirs, missing=missing)
        res = FG.figure5(panels, out, workdir=workdir, preset=preset, seed=tsne_seed)
        if res is None:
            echo(f"figure 5: skipped: no pretrained backbone of the four variants for {dataset}/{preset} under "
                 f"{workdir} (run `harness reproduce --figure 5`)")
        else:
            lacking = [p.method + " " + p.variant for p in panels if p.run_dir is None]
            echo(f"figure 5: {res.path} ({res.num_samples} clips of classes {res.classes}"
                 + (f"; not pretrained: {', '.join(lacking)}" if lacking else "") + ")")


def per_class(results: str | Path, out: str | Path, *, dataset: str, preset: str, echo=print) -> None:
    """``<out>/per_class.md`` and confusion matrices from the rows' stored predictions (or why not)."""
    from ..tables.per_class import write_per_class

    report = write_per_class(results, out, dataset=dataset, preset=preset)
    if report.path is None:
        echo(f"per-class: skipped: {report.note}")
        return
    shown = ", ".join(f"{s.protocol} {s.metric}" for s in report.sections)
    echo(f"per-class: {report.path} ({shown or 'nothing readable'}"
         + (f"; confusion matrices: {', '.join(p.name for p in report.figures)}" if report.figures else "") + ")")
    for p in report.problems:
        print(f"harness tables: warning: per-class: {p}", file=sys.stderr)


def refresh_index(results: str | Path, *, force: bool = False, echo=print) -> Path | None:
    """Rewrite the generated index that lists ``results`` (``<results>/README.md``, or its parent's when
    ``results`` is a store one level down); with ``force``, write ``<results>/README.md`` anyway."""
    from ..tables.index import index_root_for, write_index

    root = Path(results) if force else index_root_for(results)
    if root is None:
        return None
    path = write_index(root)
    echo(f"index: {path}")
    return path


def budget_curves(results: str | Path, echo=print) -> list:
    """Draw the budget curves of every dataset and preset of ``results`` and its stores one level down."""
    from ..figures_budget import write_budget_curves

    figures = write_budget_curves(results)
    for f in figures:
        drawn = sorted({p.key.label for p in f.points if p.drawn})
        steps = sorted({p.steps for p in f.points if p.drawn})
        echo(f"budget curves: {f.png} ({', '.join(drawn)} at {', '.join(f'{s:,}' for s in steps)} steps; "
             f"points: {f.csv.name}, {f.md.name})")
    if not figures:
        echo(f"budget curves: skipped: no method is measured at two budgets (steps) in {results} and the stores "
             "one level down")
    return figures


def run(args: argparse.Namespace) -> int:
    if args.index:
        refresh_index(args.results, force=True)
        return 0
    if args.budget_curves:
        budget_curves(args.results)
        from ..tables.index import INDEX_NAME, index_root_for

        root = index_root_for(args.results)
        if root is not None:
            print(f"refresh {root / INDEX_NAME} with `harness tables --index --results {root}`")
        return 0
    out = Path(args.out) if args.out else default_tables_dir(args.results, args.dataset, args.preset)
    if not (Path(args.results) / "results.csv").is_file():
        print(f"harness tables: note: {Path(args.results) / 'results.csv'} does not exist; every measured cell "
              "is \"not run\"", file=sys.stderr)
    render(args.results, out, dataset=args.dataset, preset=args.preset, tables=args.table, split=args.split)
    per_class(args.results, out, dataset=args.dataset, preset=args.preset)
    if args.figures:
        fig_out = (Path(args.figures_out) if args.figures_out
                   else Path(args.results) / "figures" / f"{args.dataset}-{args.preset}")
        draw_figures(args.results, fig_out, dataset=args.dataset, preset=args.preset, workdir=args.workdir,
                     tsne_seed=args.tsne_seed)
    from ..tables.index import INDEX_NAME, index_root_for

    root = index_root_for(args.results)
    if root is not None:  # rebuilding every table of every store takes a while: only on request
        print(f"{root / INDEX_NAME} lists the tables and figures of {args.results}: refresh it with "
              f"`harness tables --index --results {root}`")
    return 0
