"""Budget curves (harness.figures_budget, harness.tables.budget): points from several stores, floors
matched by encoder and modality per store, the test against the floor, the files, the index, and the
committed figures."""

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from harness import figures_budget as FB
from harness.cli import main
from harness.results import ResultRow, append_rows
from harness.tables import budget as B
from harness.tables import index as index_page

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def rows(method, encoder, values, *, steps, dataset="synthetic", metric="top1_best", protocol="linear",
         probe_offsets=(0.0,), config_hash="h", seeds=None):
    """One row per (pretraining seed, probe seed): value + offset, so the probe mean is value + mean(offsets)."""
    seeds = range(len(values)) if seeds is None else seeds
    return [ResultRow(method, dataset, protocol, metric, v + off, encoder=encoder, split="xsub", seed=k,
                      pretrain_seed=s, preset="cpu", config_hash=f"{config_hash}-{method}-{encoder}", steps=steps,
                      date="2026-01-01T00:00:00Z")
            for s, v in zip(seeds, values) for k, off in enumerate(probe_offsets)]


def build_folder(tmp_path):
    """results/ at 320 steps and results/budget-640/: MAMP (its ViT) learns, SCD-Net (DSTE) stays at its floor;
    the two floors differ per encoder, and the 640 store measured its floors a little differently."""
    root = tmp_path / "results"
    append_rows(root, rows("mamp", "mamp-vit", [0.40, 0.42, 0.44], steps=320, probe_offsets=(-0.01, 0.01))
                + rows("scdnet", "dste", [0.60, 0.62, 0.61], steps=320)
                + rows("random", "mamp-vit", [0.30, 0.31, 0.32], steps=0)
                + rows("random", "dste", [0.61, 0.60, 0.62], steps=0)
                + rows("mamp", "mamp-vit", [0.20, 0.21, 0.22], steps=320, metric="knn1", protocol="knn")
                + rows("random", "mamp-vit", [0.20, 0.22, 0.21], steps=0, metric="knn1", protocol="knn")
                + rows("vicreg", "dste", [0.70, 0.71, 0.72], steps=320))  # one budget only: listed, not drawn
    append_rows(root / "budget-640", rows("mamp", "mamp-vit", [0.50, 0.52, 0.54], steps=640)
                + rows("scdnet", "dste", [0.61, 0.60, 0.63], steps=640)
                + rows("random", "mamp-vit", [0.33, 0.34, 0.35], steps=0)
                + rows("random", "dste", [0.60, 0.61, 0.62], steps=0)
                + rows("mamp", "mamp-vit", [0.30, 0.31, 0.33], steps=640, metric="knn1", protocol="knn")
                + rows("random", "mamp-vit", [0.20, 0.22, 0.21], steps=0, metric="knn1", protocol="knn"))
    return root


def by(points, method, steps, measure="recog"):
    (p,) = [p for p in points if p.key.method == method and p.steps == steps and p.measure == measure]
    return p


def test_points_are_the_seed_means_with_each_stores_floor(tmp_path):
    root = build_folder(tmp_path)
    points = B.budget_points(B.folder_stores(root))
    mamp320, mamp640 = by(points, "mamp", 320), by(points, "mamp", 640)
    assert mamp320.store == "results.csv" and mamp640.store == "budget-640/results.csv"
    assert mamp320.values == pytest.approx([40.0, 42.0, 44.0])  # probe seeds averaged within each seed
    assert mamp320.mean == pytest.approx(42.0) and mamp320.std == pytest.approx(2.0) and mamp320.n == 3
    assert mamp640.mean == pytest.approx(52.0)
    # the floor is random with the same encoder and modality, measured in the point's own store
    assert mamp320.floor_key == B.MethodKey("random", "default", "mamp-vit", "joint")
    assert mamp320.floor_mean == pytest.approx(31.0) and mamp640.floor_mean == pytest.approx(34.0)
    assert by(points, "scdnet", 320).floor_key.encoder == "dste"
    assert by(points, "scdnet", 320).floor_mean == pytest.approx(61.0)
    assert by(points, "mamp", 640, "retrieval").floor_mean == pytest.approx(21.0)
    # drawn: two budgets or more; a method at one budget is a point, not a curve
    assert mamp320.drawn and by(points, "scdnet", 640).drawn and not by(points, "vicreg", 320).drawn
    assert {p.key.method for p in points} == {"mamp", "scdnet", "vicreg"}  # the floor is no point of its own


def test_the_test_against_the_floor():
    a, f = [50.0, 52.0, 55.0], [40.0, 41.0, 43.0]
    c = B.compare(a, [0, 1, 2], f, [0, 1, 2])  # the same seeds: paired t on the differences
    assert c.test == "paired t" and c.verdict == B.ABOVE
    assert c.p == pytest.approx(stats.ttest_rel(a, f).pvalue)
    d = np.subtract(a, f)
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    assert (c.low, c.high) == pytest.approx((d.mean() - half, d.mean() + half))
    tie = B.compare([61.0, 59.0, 62.0], [0, 1, 2], [60.0, 61.0, 60.5], [0, 1, 2])
    assert tie.verdict == B.TIE and tie.p >= 0.05 and tie.low < 0 < tie.high
    below = B.compare([30.0, 31.0, 32.0], [0, 1, 2], [40.0, 41.5, 42.0], [0, 1, 2])
    assert below.verdict == B.BELOW and below.high < 0
    welch = B.compare(a, [0, 1, 2], f, [3, 4, 5])  # other seeds: Welch's t
    assert welch.test == "Welch t" and welch.p == pytest.approx(stats.ttest_ind(a, f, equal_var=False).pvalue)
    assert B.compare([50.0], [0], f, [0, 1, 2]).verdict == B.UNTESTED
    assert B.compare(a, [0, 1, 2], [], []).verdict == B.NO_FLOOR
    same = B.compare([50.0, 51.0], [0, 1], [40.0, 41.0], [0, 1])  # every seed 10 points above: no spread
    assert same.verdict == B.ABOVE and same.low == same.high == pytest.approx(10.0)


def test_near_floor_notes_follow_the_test(tmp_path):
    root = build_folder(tmp_path)
    points = B.budget_points(B.folder_stores(root))
    assert by(points, "mamp", 320).cmp.verdict == by(points, "mamp", 640).cmp.verdict == B.ABOVE
    assert by(points, "scdnet", 320).near_floor and by(points, "scdnet", 640).near_floor
    assert by(points, "mamp", 320, "retrieval").near_floor  # 21 vs 21
    notes = {(r[0], r[3], r[4]): r[5] for r in B.near_floor_rows(points)}
    assert notes[("results.csv", 320, "Recog. (xsub)")].startswith("SCD-Net (DSTE) ≈ +0.0 (1 of 3 methods; 2 above)")
    assert notes[("budget-640/results.csv", 640, "Recog. (xsub)")].startswith("SCD-Net (DSTE) ≈")
    assert notes[("budget-640/results.csv", 640, "Retrieval (xsub)")].startswith("none (0 of 1")


def test_the_command_writes_the_figure_its_points_and_the_index_lists_them(tmp_path, capsys):
    root = build_folder(tmp_path)
    assert main(["tables", "--budget-curves", "--results", str(root)]) == 0
    out = capsys.readouterr().out
    assert "budget curves:" in out and "budget-synthetic-cpu.png" in out
    figs = root / "figures"
    assert sorted(p.name for p in figs.iterdir()) == [f"budget-synthetic-cpu.{e}" for e in ("csv", "md", "png")]
    assert (figs / "budget-synthetic-cpu.png").read_bytes()[:8] == PNG
    with open(figs / "budget-synthetic-cpu.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    points = B.budget_points(B.folder_stores(root))
    assert len(table) == len(points)
    for line, p in zip(table, points):  # the plotted numbers are the points' means, std and floors
        assert (line["method"], int(line["steps"]), line["store"]) == (p.key.method, p.steps, p.store)
        assert float(line["mean"]) == pytest.approx(p.mean, abs=1e-3)
        assert float(line["std"]) == pytest.approx(p.std, abs=1e-3)
        assert float(line["floor_mean"]) == pytest.approx(p.floor_mean, abs=1e-3)
        assert line["verdict"] == p.cmp.verdict and line["drawn"] == str(int(p.drawn))
    mamp = [r for r in table if r["method"] == "mamp" and r["measure"] == "recog"]
    assert [(r["steps"], r["mean"]) for r in mamp] == [("320", "42.000"), ("640", "52.000")]
    md = (figs / "budget-synthetic-cpu.md").read_text()
    assert "## Not above the floor, per budget" in md and "SCD-Net (DSTE) ≈" in md
    page = index_page.index_markdown(root)
    for ext in ("csv", "md", "png"):
        assert f"[`figures/budget-synthetic-cpu.{ext}`](figures/budget-synthetic-cpu.{ext})" in page
    section = page.split("## Near the untrained floor", 1)[1].split("## Not run", 1)[0]
    assert "`budget-640/results.csv` | synthetic" in section and "SCD-Net (DSTE) ≈" in section


def test_no_curve_without_two_budgets(tmp_path, capsys):
    root = tmp_path / "results"
    append_rows(root, rows("mamp", "mamp-vit", [0.4, 0.5], steps=320) + rows("random", "mamp-vit", [0.3, 0.3], steps=0))
    assert FB.write_budget_curves(root) == []
    assert main(["tables", "--budget-curves", "--results", str(root)]) == 0
    assert "budget curves: skipped" in capsys.readouterr().out
    assert not (root / "figures").exists()


def test_committed_budget_figures_match_the_committed_stores():
    """results/figures/budget-* are what `harness tables --budget-curves` draws from the committed stores: the
    points (CSV and markdown) equal, one PNG beside each, no figure missing or left over."""
    figs = REPO / "results" / "figures"
    committed = sorted(p.name for p in figs.glob(f"{FB.PREFIX}*"))
    if not committed:
        pytest.skip("no budget curves in results/figures yet")
    stores = B.folder_stores(REPO / "results")
    points = B.budget_points(stores)
    want = B.pairs(points)
    command = "re-draw with `harness tables --budget-curves` and refresh the index with `harness tables --index`"
    assert committed == sorted(f"{FB.figure_stem(d, p)}.{e}" for d, p in want for e in ("csv", "md", "png")), command
    for dataset, preset in want:
        stem = FB.figure_stem(dataset, preset)
        mine = [p for p in points if p.dataset == dataset and p.preset == preset]
        assert (figs / f"{stem}.csv").read_text(encoding="utf-8") == B.points_csv(mine), f"{stem}.csv is stale: {command}"
        assert (figs / f"{stem}.md").read_text(encoding="utf-8") == FB.points_markdown(points, dataset, preset), (
            f"{stem}.md is stale: {command}")
        assert (figs / f"{stem}.png").read_bytes()[:8] == PNG
