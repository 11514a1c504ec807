"""``harness results``: check, repair and add to the results store.

    harness results check [--results DIR] [--repair]
    harness results add FILE [--results DIR]
    harness results supersede [--results DIR] [--dry-run]

``check`` reads ``<results>/results.csv`` line by line and lists every line that is not a complete
result row (torn or cut rows, rows glued together by a missing newline, unparsable numbers, dates or
``extra`` JSON, an unknown header), with its line number, and the temporary files of killed writes.
It exits 0 when the store is clean, 1 when it is not. ``--repair`` moves the bad lines, with their
line numbers and reasons, to ``results.csv.rejected`` (appended; nothing is deleted), rewrites the
store atomically without them and removes the temporary files.

``add`` appends the rows of a side file that ``harness run`` or ``harness reproduce`` saved when the
store could not be written; rows the store already holds are skipped. Both default to the committed
campaign store ``results/``; the error that names a side file also names its store (``--results``),
e.g. ``.harness/results`` for ``harness run``'s rows.

``supersede`` moves the rows no table reads because a later measurement of the same thing replaced
them (an older configuration, or an earlier row of the same configuration and seeds) to
``<results>/superseded/older-configurations.csv`` (unchanged; ``harness results add`` brings them
back) and lists them, with why and what replaced them, in ``older-configurations.md``; afterwards a
plain average of ``results.csv`` is what the tables show (:mod:`harness.tables.supersede`).
``--dry-run`` lists what would move.
"""

from __future__ import annotations

import argparse
import textwrap

from ..results.read import CAMPAIGN_STORE


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("results", help="check, repair and add to the results store",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    default = CAMPAIGN_STORE  # the committed campaign store; `harness run` writes <workdir>/results
    c = actions.add_parser("check", help="validate results.csv (and --repair it)")
    c.add_argument("--results", default=default, help=f"the results store folder (default {default})")
    c.add_argument("--repair", action="store_true",
                   help="move bad lines to results.csv.rejected and rewrite the store without them")
    c.set_defaults(func=_check)
    a = actions.add_parser("add", help="append the rows of a side file to the store")
    a.add_argument("file", help="a store-format CSV, e.g. the unrecorded-rows-*.csv a run saved")
    a.add_argument("--results", default=default, help=f"the results store folder (default {default})")
    a.set_defaults(func=_add)
    s = actions.add_parser("supersede", help="move rows a later measurement replaced to <results>/superseded/")
    s.add_argument("--results", default=default, help=f"the results store folder (default {default})")
    s.add_argument("--dry-run", action="store_true", help="only list what would move")
    s.set_defaults(func=_supersede)


def _show(text: str) -> str:
    return textwrap.shorten(text, 110, placeholder=" …") if text else ""


def _check(args: argparse.Namespace) -> int:
    from .. import results as R

    report = R.repair_store(args.results) if args.repair else R.check_store(args.results)
    read, path = report.read, report.path
    if not path.exists():
        print(f"{path}: no store yet (nothing to check)")
        return 0
    header = ("header: older column set (upgraded on the next write)" if read.upgradable
              else "header: ok" if read.header_error is None else "header: UNKNOWN")
    print(f"{path}: {len(read.rows)} row(s), {header}")
    for p in report.problems:
        print(f"  line {p.line}: {p.what}")
        if p.text:
            print(f"      {_show(p.text)}")
    if report.unread:
        print(f"  {report.unread} line(s) below the header not checked (their columns are unknown)")
    if not read.final_newline and not args.repair:
        print("  the file does not end with a newline (the next append adds one)")
    for tmp in report.leftovers:
        print(f"  leftover temporary file of a killed write: {tmp}")
    if args.repair:
        if report.moved:
            print(f"moved {len(report.moved)} line(s) to {report.rejected} (with their line numbers and reasons)")
        if report.rewritten:
            print(f"rewrote {path} ({len(read.rows)} row(s))")
        for tmp in report.removed:
            print(f"removed {tmp}")
        if not (report.moved or report.rewritten or report.removed):
            print("nothing to repair")
        return 0
    if report.clean:
        print("ok")
        return 0
    if report.problems and read.header_error is None:
        print(f"run `harness results check --results {args.results} --repair` to move the "
              f"{len(report.problems)} bad line(s) to {R.REJECTED_NAME}")
    return 1


def _add(args: argparse.Namespace) -> int:
    from ..results import add_rows_file

    added, present = add_rows_file(args.file, args.results)
    print(f"added {added} row(s) from {args.file} to {args.results}/results.csv"
          + (f" ({present} already there)" if present else ""))
    return 0


def _supersede(args: argparse.Namespace) -> int:
    from collections import Counter

    from ..tables.supersede import supersede_store

    report = supersede_store(args.results, dry_run=args.dry_run)
    if not report.path.exists():
        print(f"{report.path}: no store yet (nothing to move)")
        return 0
    if not report.moved:
        print(f"{report.path}: every row is one the tables read; nothing to move")
        return 0
    why = ", ".join(f"{n} {reason}" for reason, n in sorted(Counter(m.reason for m in report.moved).items()))
    if args.dry_run:
        print(f"{report.path}: {len(report.moved)} row(s) would move ({why}); run without --dry-run to move them")
        return 0
    print(f"moved {len(report.moved)} row(s) ({why}) from {report.path} to {report.side}"
          + (f" ({report.already} were there already)" if report.already else "") + f"; listed in {report.listing}")
    return 0
