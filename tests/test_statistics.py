"""harness.tables.statistics and what the tables show of it: 95 % intervals (closed forms, the
bootstrap on per-sample predictions), the paired test against the untrained floor and its tie mark,
collapse marks, the final-epoch column, and superseded rows moved out of the store."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from harness import tables
from harness.cli import main
from harness.results import Predictions, ResultRow, append_rows, read_store, record_rows
from harness.tables import statistics as S
from harness.tables.supersede import LISTING_NAME, OLDER, REMEASURED, SIDE_FOLDER, SIDE_NAME, superseded

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_thread")]

REPO = Path(__file__).resolve().parents[1]
OURS = "ours Recog. (synthetic xsub, cpu)"
FLOOR = "untrained floor Recog. (xsub)"


def row(method="usdrl", metric="top1_best", value=0.5, *, protocol="linear", encoder="dste", seed=0, pseed=0,
        config_hash="h1", date="2026-01-01T00:00:00Z", steps=320, **kw):
    return ResultRow(method, "synthetic", protocol, metric, value, encoder=encoder, split="xsub", seed=seed,
                     preset="cpu", config_hash=config_hash, date=date, steps=steps if method != "random" else 0,
                     pretrain_seed=pseed, **kw)


def cell(text: str, first: str, column: str) -> str:
    lines = [l for l in text.splitlines() if l.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    for l in lines[2:]:
        cells = [c.strip() for c in l.strip("|").split("|")]
        if cells[0] == first:
            return cells[head.index(column)]
    raise AssertionError(f"no row {first!r}")


def render(store, tmp_path, numbers=(1,)):
    out = tmp_path / "tables"
    report = tables.write_tables(store, out, dataset="synthetic", preset="cpu", tables=numbers)
    return report, {n: (out / f"table{n}.md").read_text() for n in numbers}


# --- closed forms -------------------------------------------------------------------------------
def test_seed_interval_is_the_t_interval_over_seeds():
    v = [0.1, 0.2, 0.3]
    got = S.seed_interval(v)
    lo, hi = stats.t.interval(0.95, 2, loc=0.2, scale=0.1 / math.sqrt(3))
    assert got.method == "t" and got.n == 3 and got.df == pytest.approx(2)
    assert (got.lo, got.hi) == pytest.approx((lo, hi))
    assert S.seed_interval([0.4]) is None  # one seed: no spread, no interval


def test_the_binomial_term_is_the_test_sets_variance():
    # no seed spread: the interval is the binomial one, p(1 − p)/n with n − 1 degrees of freedom
    got = S.seed_interval([0.5, 0.5, 0.5], n_test=100, proportion=True)
    half = stats.t.ppf(0.975, 99) * 0.05
    assert got.method == "t+binomial" and got.n_test == 100
    assert got.df == pytest.approx(99) and (got.lo, got.hi) == pytest.approx((0.5 - half, 0.5 + half))
    # both parts: SE² = s²/k + p(1 − p)/n, Welch–Satterthwaite degrees of freedom
    v = np.array([0.6, 0.62, 0.64])
    got = S.seed_interval(v, n_test=273, proportion=True)
    a, b = v.var(ddof=1) / 3, 0.62 * 0.38 / 273
    df = (a + b) ** 2 / (a * a / 2 + b * b / 272)
    assert got.se == pytest.approx(math.sqrt(a + b)) and got.df == pytest.approx(df)
    assert got.hi - got.estimate == pytest.approx(stats.t.ppf(0.975, df) * math.sqrt(a + b))
    # a measure that is not a proportion takes no binomial term, even with a test-set size
    assert S.seed_interval(v, n_test=273).method == "t"


def test_paired_and_welch_differences_are_scipys_tests():
    a, b = [0.70, 0.72, 0.75, 0.71], [0.60, 0.63, 0.61, 0.62]
    got = S.paired_difference(a, b)
    ref = stats.ttest_rel(a, b)
    ci = ref.confidence_interval(0.95)
    assert got.p == pytest.approx(ref.pvalue) and (got.lo, got.hi) == pytest.approx((ci.low, ci.high))
    assert got.paired and got.verdict == S.ABOVE
    welch = S.welch_difference(a, b[:3])
    assert welch.p == pytest.approx(stats.ttest_ind(a, b[:3], equal_var=False).pvalue) and not welch.paired
    tie = S.paired_difference([0.60, 0.70], [0.64, 0.63])
    assert tie.lo < 0 < tie.hi and tie.verdict == S.TIE
    assert S.paired_difference([0.5], [0.4]) is None


def test_the_hierarchical_bootstrap_of_per_sample_scores():
    rng = np.random.default_rng(1)
    n = 400
    row = (np.arange(n) % 2).astype(float)  # accuracy 0.5 on every seed: only the test samples vary
    got = S.matrix_interval(np.tile(row, (6, 1)))
    assert got.method == "bootstrap" and got.n == 6 and got.n_test == n
    se = math.sqrt(0.25 / n)  # the binomial standard error the bootstrap estimates
    assert got.lo == pytest.approx(0.5 - 1.96 * se, abs=0.006) and got.hi == pytest.approx(0.5 + 1.96 * se, abs=0.006)
    assert S.matrix_interval(np.tile(row, (6, 1))) == got  # fixed RNG seed: the same interval every time
    few = S.matrix_interval(np.tile(row, (3, 1)))  # too few seeds for a bootstrap over seeds
    assert few.method == "t+bootstrap" and few.se == pytest.approx(se, rel=0.1)
    # seeds that differ widen it: the seed part counts
    spread = np.vstack([rng.random(n) < p for p in (0.3, 0.5, 0.7)]).astype(float)
    assert S.matrix_interval(spread).hi - S.matrix_interval(spread).lo > few.hi - few.lo


# --- the tables ---------------------------------------------------------------------------------
def floor_rows(method_values, floor_values):
    rows = []
    for s, (m, f) in enumerate(zip(method_values, floor_values)):
        rows += [row(value=m, pseed=s), row("random", value=f, pseed=s, config_hash="r1")]
    return rows


def test_a_difference_whose_interval_covers_zero_is_a_tie(tmp_path):
    store = tmp_path / "res"
    append_rows(store, floor_rows([0.70, 0.72, 0.74], [0.60, 0.615, 0.63]))  # +11 points on every seed
    append_rows(store, [row(value=v, encoder="sttr", pseed=s, config_hash="h2") for s, v in enumerate([0.60, 0.70, 0.65])]
                + [row("random", value=v, encoder="sttr", pseed=s, config_hash="r2")
                   for s, v in enumerate([0.66, 0.62, 0.64])])  # −1 ± 7: a tie
    _, md = render(store, tmp_path)
    dste, sttr = cell(md[1], "USDRL (DSTE)", OURS), cell(md[1], "USDRL (STTR)", OURS)
    assert re.fullmatch(r"72\.0 ± 2\.0 \(n=3\) \[\d+\.\d, \d+\.\d\] ▲", dste)
    assert sttr.endswith(f" {tables.TIE_FLOOR}")
    assert not cell(md[1], "USDRL (DSTE)", FLOOR).endswith(("▲", "▼", "tie"))  # the floor is not tested against itself
    assert "**Differences from the untrained floor**" in md[1] and "| USDRL (STTR)" in md[1]
    assert "a **tie**" in md[1]  # the legend says what the mark means
    # the table's difference is the paired test over pretraining seeds
    t = tables.build_table(1, tables.load_store(store), "synthetic", "cpu")
    v = t.cell("USDRL (DSTE)", "recog").versus
    assert v.p == pytest.approx(stats.ttest_rel([0.70, 0.72, 0.74], [0.60, 0.615, 0.63]).pvalue)


def test_the_test_set_size_comes_from_the_stores_test_part_counts(tmp_path):
    store = tmp_path / "res"
    append_rows(store, floor_rows([0.70, 0.72, 0.74], [0.60, 0.615, 0.63]) + [
        row(protocol="features", metric="eff_rank", value=5.0, pseed=s, config_hash="f1",
            extra=json.dumps({"collapsed": False, "part": "test", "samples": 50})) for s in range(3)])
    _, md = render(store, tmp_path)
    c = tables.build_table(1, tables.load_store(store), "synthetic", "cpu").cell("USDRL (DSTE)", "recog")
    assert c.interval.method == "t+binomial" and c.interval.n_test == 50
    v = 0.72 * 0.28 / 50 + np.var([0.70, 0.72, 0.74], ddof=1) / 3  # the cell's variance: test set and seeds
    assert c.interval.se == pytest.approx(math.sqrt(v))
    # the difference from the floor stays the paired t-test over seeds (no per-sample pairing recorded)
    assert c.versus.method == "t" and c.versus.p == pytest.approx(
        stats.ttest_rel([0.70, 0.72, 0.74], [0.60, 0.615, 0.63]).pvalue)
    assert "n_test = 50" in md[1]


def test_collapsed_seeds_mark_every_cell_of_their_backbone(tmp_path):
    store = tmp_path / "res"
    features = [row(protocol="features", metric="eff_rank", value=v, pseed=s, config_hash="f1",
                    extra=json.dumps({"collapsed": s == 0, "part": "test", "samples": 100}))
                for s, v in enumerate([1.2, 6.0])]
    append_rows(store, [row(value=0.5, pseed=0), row(value=0.6, pseed=1), *features])
    _, md = render(store, tmp_path, numbers=(1, 6))
    mark = f"{tables.WARN} collapsed 1/2"
    assert cell(md[1], "USDRL (DSTE)", OURS).endswith(mark)
    assert cell(md[1], "USDRL (DSTE)", "ours eff. rank (synthetic xsub, cpu)").endswith(mark)
    assert cell(md[6], "USDRL (DSTE) (harness)", "ours eff. rank (synthetic xsub, cpu)").endswith(mark)
    assert "collapsed" not in cell(md[1], "USDRL (STTR)", OURS)
    assert f"`{tables.WARN} collapsed k/n`" in md[1]  # explained in the legend


def test_the_final_epoch_accuracy_is_its_own_column_beside_best_of(tmp_path):
    store = tmp_path / "res"
    append_rows(store, [row(value=0.62), row(metric="top1", value=0.55), row("random", value=0.4, config_hash="r"),
                        row("random", metric="top1", value=0.35, config_hash="r")])
    _, md = render(store, tmp_path, numbers=(1, 5))
    head = [c.strip() for c in next(l for l in md[1].splitlines() if l.startswith("|")).strip("|").split("|")]
    final, floor_final = "ours Recog. final (synthetic xsub, cpu)", "untrained floor Recog. final (xsub)"
    assert head.index(final) == head.index(FLOOR) + 1 and head.index(floor_final) == head.index(final) + 1
    assert cell(md[1], "USDRL (DSTE)", final) == "55.0 (n=1)" and cell(md[1], "USDRL (DSTE)", OURS) == "62.0 (n=1)"
    assert cell(md[1], "USDRL (DSTE)", floor_final) == "35.0 (n=1)"
    assert "**final-epoch** top-1" in md[1]
    assert cell(md[5], "7", final) == "55.0 (n=1)"  # Table 5's Recog. has it too


def test_per_sample_predictions_give_a_bootstrap_interval(tmp_path):
    store = tmp_path / "res"
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    rows = []
    for s in range(5):
        for method, hit, h in (("usdrl", 0.8, "h1"), ("random", 0.5, "r1")):
            pred = np.where(rng.random(200) < hit, labels, (labels + 1) % 4)
            p = Predictions.classification(np.arange(200), labels, pred=pred, group="best", num_classes=4)
            rows.append(row(method, value=float((pred == labels).mean()), pseed=s, config_hash=h, predictions=p))
    record_rows(store, rows)
    _, md = render(store, tmp_path)
    t = tables.build_table(1, tables.load_store(store), "synthetic", "cpu")
    c = t.cell("USDRL (DSTE)", "recog")
    assert c.interval.method == "bootstrap" and c.interval.n_test == 200
    assert c.versus.method == "bootstrap" and c.versus.verdict == S.ABOVE
    assert "hierarchical bootstrap over pretraining seeds and test samples" in md[1]
    again = tables.build_table(1, tables.load_store(store), "synthetic", "cpu").cell("USDRL (DSTE)", "recog")
    assert again.interval == c.interval  # re-renders identically


# --- superseded rows ------------------------------------------------------------------------------
def test_superseded_rows_move_to_a_side_store_and_the_tables_do_not_change(tmp_path, capsys):
    store = tmp_path / "res"
    old = [row(value=0.055, pseed=s, seed=k, config_hash="old", date="2025-11-23T00:00:00Z", steps=0)
           for s in range(2) for k in range(2)]
    new = [row(value=0.5 + 0.1 * s + 0.01 * k, pseed=s, seed=k, config_hash="new") for s in range(2) for k in range(2)]
    again = [row(value=0.9, pseed=0, seed=0, config_hash="new", date="2025-12-01T00:00:00Z")]  # earlier, re-measured
    sweep = [row(value=0.3, config_hash="sw", extra=json.dumps({"overrides": {"encoder.options.alpha": 0.1}}))]
    append_rows(store, old + again + new + sweep)
    _, before = render(store, tmp_path / "before")
    assert main(["results", "supersede", "--results", str(store), "--dry-run"]) == 0
    assert "5 row(s) would move" in capsys.readouterr().out
    assert len(read_store(store).rows) == 10  # a dry run moves nothing
    assert main(["results", "supersede", "--results", str(store)]) == 0
    assert "moved 5 row(s)" in capsys.readouterr().out
    kept = read_store(store).rows
    assert len(kept) == 5 and {x.values["config_hash"] for x in kept} == {"new", "sw"}  # sweep rows stay
    text = (store / SIDE_FOLDER / SIDE_NAME).read_text()
    assert text.count("\n") == 6 and text.count(",old,") == 4 and ",0.9," in text  # header + the 5 rows, unchanged
    listing = (store / SIDE_FOLDER / LISTING_NAME).read_text()
    assert OLDER in listing and REMEASURED in listing and "new (2026-01-01)" in listing
    _, after = render(store, tmp_path / "after")
    strip = lambda md: re.sub(r" \d+ older configuration\(s\) were superseded in this table\.", "", md)  # noqa: E731
    assert strip(before[1]) == strip(after[1])
    # a plain average of the store (per pretraining seed, then over them) is the table's cell
    df = tables.load_store(store)
    plain = df[(df["method"] == "usdrl") & ~df["_sweep"]].groupby("_pseed")["_value"].mean().mean()
    assert cell(after[1], "USDRL (DSTE)", OURS).startswith(f"{100 * plain:.1f} ± ")
    assert superseded(df) == {}
    assert main(["results", "supersede", "--results", str(store)]) == 0
    assert "nothing to move" in capsys.readouterr().out


def _committed_stores() -> list[Path]:
    root = REPO / "results"
    return [root] + sorted(p.parent for p in root.glob("*/results.csv"))


def test_the_committed_stores_hold_only_rows_the_tables_read():
    """So a plain average of a committed results.csv is what its tables show (`harness results supersede`)."""
    for store in _committed_stores():
        if (store / "results.csv").is_file():
            lines = superseded(tables.load_store(store))
            assert not lines, (f"{store.relative_to(REPO)}: {len(lines)} superseded row(s), e.g. line {min(lines)}: "
                               f"run `harness results supersede --results {store.relative_to(REPO)}`")
