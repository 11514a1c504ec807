"""Markdown for a built table (tabulate), the legend and notes, and writing the table files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from tabulate import tabulate

from .. import atomic
from ..results import STORE_NAME
from .build import BuiltTable, build_table
from .differences import differences_markdown, interval_notes
from .model import (ABOVE_FLOOR, BELOW_FLOOR, FLOOR_HEADER, FUSED, OLD, MARKER, MARKER_RE, MEASURES, NOT_APPLICABLE,
                    NOT_RUN, PAPER_NA, TABLES, TIE_FLOOR, WARN, pretty_dataset)
from .specs import paper_datasets
from .store_frame import load_store

# --- markdown ----------------------------------------------------------------------------------------
def _protocol_seed_counts(t: BuiltTable) -> str:
    """How many protocol seeds each pretraining seed averages, per measure, so a reader sees when a cell
    rests on one subset or probe seed per pretraining seed."""
    counts: dict[str, set[int]] = {}
    for (_, col), cell in t.cells.items():
        counts.setdefault(MEASURES[col.measure].label, set()).update(cell.probe_seeds)
    spans = [f"{label} {min(ks)}" + (f"–{max(ks)}" if len(ks) > 1 else "") for label, ks in counts.items() if ks]
    return f"; protocol seeds per pretraining seed in this table: {', '.join(spans)}" if spans else ""


def _header_text(t: BuiltTable) -> list[str]:
    spec = t.spec
    ds = pretty_dataset(t.dataset)
    measured = [c for c in t.cells.values() if c.measured]
    shown = {c.measure for c in t.measured_columns}
    whats = [MEASURES[k].what for k in spec.measures if MEASURES[k].what and (k in shown or not MEASURES[k].optional)]
    lines = [
        MARKER.format(table=spec.number, dataset=t.dataset, preset=t.preset),
        f"# {spec.title}",
        "",
        f"- **Measured dataset: {ds}{' (' + '; '.join(t.subsets) + ')' if t.subsets else ''}** (split{'s' if len(t.splits) > 1 else ''} {', '.join(t.splits)}), "
        f"**preset: {t.preset}**. Every \"ours\" number comes from the results store (`{STORE_NAME}`), "
        f"as rendered by `harness tables`; {len(measured)} measured cell(s).",
        ("- Paper columns: the USDRL paper (AAAI 2025), transcribed in `harness/paper.py` "
         "(`docs/reference/paper-tables.md`)." if spec.columns else "- A harness table: the paper has no such table."),
        f"- Measured metric: {'; '.join(whats)}. Numbers in % unless a header says otherwise; **mean ± sample "
        "standard deviation over pretraining seeds (n = number of pretraining seeds) [95 % interval of the mean, "
        "counting the seed spread and, for accuracies, the test set's sampling]** (docs/statistics.md; the method "
        "of each column under \"Intervals\"); each pretraining seed's "
        "value is first averaged over the protocol's own seeds (probe, subset or detection-head seeds)"
        f"{_protocol_seed_counts(t)}.",
        f"- Every measured column has an **{FLOOR_HEADER}** column beside it: the same backbone (encoder and "
        "modality) of the row's method, untrained (method `random`), measured the same way. A method's cell is "
        f"marked `{ABOVE_FLOOR}` / `{BELOW_FLOOR}` only where a paired test over its pretraining seeds puts it above / "
        f"below its floor (the 95 % interval of the difference excludes 0), else **`{TIE_FLOOR}`**; the differences "
        "are listed under the table.",
    ]
    for subset in t.subsets:
        lines.append(f"- **Measured on part of {ds}: {subset}** (the prepared folder's `meta.json`), never the "
                     f"whole dataset. The paper's columns are whole-dataset numbers, beside ours for reading only; "
                     "the absolute values are not comparable.")
    if t.dataset not in paper_datasets() and spec.columns:
        paper_sets = list(dict.fromkeys(pretty_dataset(c.dataset) for c in spec.columns))
        lines.append(
            f"- **These measured numbers are {ds} numbers, not {' / '.join(paper_sets)} numbers.** Each \"ours\" "
            "column sits beside the paper column with the same split name for reading only; the absolute "
            "values are not comparable.")
    return lines


LEGEND = (
    "`m ± s (n=k) [lo, hi]`: mean ± sample std over k pretraining seeds, and the 95 % interval of the mean "
    "(seed spread and, for accuracies, test-set sampling; none for n=1: one seed has no spread)",
    f"`{ABOVE_FLOOR}` / `{BELOW_FLOOR}` above / below the untrained floor beside it: the 95 % interval of the paired "
    "difference (method − floor, paired by pretraining seed, and by test sample where both have per-sample "
    f"predictions; without them a paired t-test given this test set) excludes 0; `{TIE_FLOOR}` it covers 0, a "
    "**tie**: the measurements do not tell them apart (no mark: fewer than two seeds on a side)",
    f"`{WARN} collapsed k/n` the features of k of the cell's n pretraining seeds collapsed (the store's collapse "
    "diagnostics: top direction ≥ 90 % of the variance or effective rank < 2; Table 6)",
    f"`{PAPER_NA}` the paper prints \"-\" (no value)",
    f"`{NOT_RUN}` the harness implements this row, but the results store has no row for this cell "
    "(run `harness reproduce --table N`)",
    f"`{NOT_APPLICABLE}` not applicable: a paper-only method the harness does not implement, or the paper "
    "cell of an extra harness row",
    f"`{WARN}` at least one store row of this cell has a NaN or missing value (listed under \"Store problems\"; "
    "the mean is over the other seeds)",
    f"`{OLD}` the rows of this cell do not record their pretraining budget: measured by an older harness "
    "version (before step budgets), not yet re-run",
    f"`{FUSED}` 3-stream ensemble (J+M+B) fused by `harness fuse`: top-1 of the summed per-stream softmax "
    "scores of the final-epoch heads, not best-of",
    "*Extra rows* are harness runs the paper does not have (marked \"(harness)\" / \"(harness reference)\")",
    "\"harness run\": the method, variant, encoder (and modality) the measured cells read from the store",
)


def render_markdown(t: BuiltTable, store_problems: Iterable[dict[str, Any]] = ()) -> str:
    """The table's markdown; ``store_problems`` are lines of the store that are not complete rows
    (:func:`harness.tables.load_store`), listed under "Store problems" since no cell could use them."""
    store_problems = list(store_problems)
    parts = _header_text(t)
    parts += ["", tabulate(t.frame, headers="keys", tablefmt="github", showindex=False, disable_numparse=True), ""]
    parts.append("**Legend**")
    parts.append("")
    parts += [f"- {x}" for x in LEGEND]
    parts.append("")
    notes = list(t.spec.notes)
    notes.append("Where several configurations (config hashes) recorded the same cell, the latest one is shown "
                 "(its newest row decides); within it, the latest row per (pretraining seed, protocol seed)."
                 + (f" {t.superseded} older configuration(s) were superseded in this table." if t.superseded else ""))
    if any(c.no_preset for c in t.cells.values() if c.measured):
        notes.append("Some fused rows carry no preset (older `harness fuse --record`); they are shown under the "
                     "requested preset.")
    parts.append("**Notes**")
    parts.append("")
    parts += [f"- {n}" for n in notes]
    parts.append("")
    parts += interval_notes(t)
    parts += differences_markdown(t)
    if t.problems or store_problems:
        parts.append("**Store problems** (rows kept out of the means)")
        parts.append("")
        for p in store_problems:
            parts.append(f"- `{STORE_NAME}` line {p['line']}: not read, {p['what']} "
                         "(`harness results check --repair` moves it aside)")
        for p in sorted(t.problems, key=lambda p: p["line"]):
            parts.append(f"- `{STORE_NAME}` line {p['line']}: {p['method']} {p['variant']} {p['encoder']} "
                         f"{p['modality']} {p['protocol']} {p['metric']} split {p['split']} seed {p['seed']!s} "
                         f"(config {p['config_hash'] or '—'}): {p['what']} is "
                         f"{'missing' if not p['raw'] else repr(p['raw'])} — row \"{p['table_row']}\", "
                         f"column \"{p['column']}\"")
        parts.append("")
    return "\n".join(parts)


def table_path(out_dir: str | Path, number: int) -> Path:
    return Path(out_dir) / f"table{number}.md"


@dataclass
class WriteReport:
    paths: list[Path]  # the tables written
    problems: list[dict[str, Any]]
    tables: dict[int, BuiltTable]  # every table built, written or not
    store_problems: list[dict[str, Any]] = field(default_factory=list)  # lines that are not rows
    skipped: list[int] = field(default_factory=list)  # not written: no measured cell (``skip_unmeasured``)
    removed: list[Path] = field(default_factory=list)  # stale placeholders of skipped tables, deleted


def has_measurement(t: BuiltTable) -> bool:
    """Whether any method cell of the table holds a store row (the header's "measured cell(s)"); the
    untrained floors beside them do not count: a table of floors alone measures no method."""
    return any(c.measured for c in t.cells.values())


def write_tables(results_dir: str | Path, out_dir: str | Path, *, dataset: str, preset: str,
                 tables: Iterable[int] = TABLES, default_split: str = "xsub",
                 skip_unmeasured: bool = False) -> WriteReport:
    """Render the tables from ``results_dir/results.csv`` into ``out_dir/tableN.md`` (atomic writes).

    ``skip_unmeasured`` (``harness tables``, ``harness reproduce``): a table with no measured cell is
    not written (a page of "not run" is no result), and a placeholder an earlier render left at its
    path (a file with the same table, dataset and preset marker) is deleted."""
    df = load_store(results_dir)
    report = WriteReport([], [], {}, list(df.attrs.get("store_problems", ())))
    for n in tables:
        if n not in TABLES:
            raise ValueError(f"no table {n}: tables are {', '.join(map(str, TABLES))} (1-5 the paper's, 6 diagnostics)")
        t = build_table(n, df, dataset, preset, default_split)
        report.tables[n] = t
        path = table_path(out_dir, n)
        if skip_unmeasured and not has_measurement(t):
            report.skipped.append(n)
            if path.is_file() and read_marker(path) == (n, dataset, preset):
                path.unlink()
                report.removed.append(path)
            continue
        atomic.write_text(path, render_markdown(t, report.store_problems))
        report.paths.append(path)
        report.problems += [{**p, "table": n} for p in t.problems]
    return report


def read_marker(path: str | Path) -> tuple[int, str, str] | None:
    """(table, dataset, preset) from a rendered table's first line, or None."""
    try:
        first = Path(path).read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError):
        return None
    m = MARKER_RE.match(first.strip())
    return (int(m.group(1)), m.group(2), m.group(3)) if m else None
