"""harness reproduce: the plans (from the registry's table rows, with untrained floors, per pretraining
seed), skipping, and Table 5 / Table 1 / Figure 5 end to end at smoke size.

The end-to-end tests train for real (smoke preset, two optimizer steps, two pretraining seeds) on the
built-in synthetic dataset (240 clips at the smoke preset, xsub split); nothing is mocked.
"""

import csv
import io
import re
from dataclasses import replace

import numpy as np
import pytest

from harness import reproduce as R
from harness import tables
from harness.cli import main
from harness.registry import METHODS
from harness.reproduce.plan import default_seeds
from harness.results import ResultRow, append_rows, load_results
from harness.floors import floor_method
from harness.tables.specs import method_rows
from harness.resolve import resolved

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_thread")]

# train.steps is the budget at smoke (train.epochs alone no longer is); encoder options go under encoder.options
FAST = ["--preset", "smoke", "--dataset", "synthetic", "--seeds", "0,1", "--pretrain-seeds", "0,1", "--no-progress",
        "--set", "train.steps=2", "--set", "train.batch_size=16", "--set", "encoder.options.layers=1",
        "--set", "data.max_train_samples=32", "--set", "train.num_threads=1"]
TABLE5_ROWS = {"1": ("contrastive", "default", "sttr"), "2": ("usdrl", "no_xc", "sttr"),
               "3": ("usdrl", "default", "sttr"), "4": ("contrastive", "default", "dste"),
               "5": ("usdrl", "no_xc", "dste"), "6": ("usdrl", "single_grained", "dste"),
               "7": ("usdrl", "default", "dste")}


def keys(items):
    return [(i.target, i.method, i.variant, i.encoder, i.modality, i.protocol) for i in items
            if isinstance(i, R.PlannedRun)]


def test_table_protocols_follow_the_measures():
    assert {n: R.table_protocols(n) for n in tables.TABLES} == {
        1: ["linear", "features"], 2: ["semi"], 3: ["knn"], 4: ["detection"], 5: ["linear", "knn"], 6: ["features"]}


def test_table5_plan_maps_the_seven_rows():
    items = R.plan(table=5, pretrain_seeds=(0,))
    got = keys(items)
    want = [(f"Table 5: {row} [pretrain seed 0]", m, v, e, "joint", p) for row, (m, v, e) in TABLE5_ROWS.items()
            for p in ("linear", "knn")]
    want += [("Table 5: VICReg (harness) [pretrain seed 0]", "vicreg", "default", None, "joint", p)
             for p in ("linear", "knn")]  # an extra row: a registered method's TableRow, default encoder
    floors = [(f"untrained floor ({e}), {p} [pretrain seed 0]", "random", "default", e, "", p)
              for e in ("dste", "sttr") for p in ("linear", "knn")]
    assert sorted(got) == sorted(want + floors)
    assert all(k[1] == "random" for k in got[-len(floors):])  # the floors come after the runs, once each
    assert {i.seeds for i in items if i.protocol == "linear"} == {default_seeds("linear")} == {(0, 1, 2)}
    assert {i.seeds for i in items if i.protocol == "knn"} == {(0,)}
    assert sorted(keys(R.plan(table=5, pretrain_seeds=(0,), floors=False))) == sorted(want)
    only = keys(R.plan(table=5, methods=["usdrl"], pretrain_seeds=(0,)))
    assert {k[1] for k in only} == {"usdrl", "random"}
    assert {k[3] for k in only if k[1] == "random"} == {"dste", "sttr"}  # the floors of the usdrl runs


def test_every_item_is_planned_per_pretraining_seed():
    one = R.plan(table=5, pretrain_seeds=(0,))
    three = R.plan(table=5)  # default: pretraining seeds 0, 1, 2
    assert R.DEFAULT_PRETRAIN_SEEDS == (0, 1, 2)
    assert len(three) == 3 * len(one)
    for s in (0, 1, 2):
        block = three[s * len(one):(s + 1) * len(one)]
        assert [replace(i, target=i.target.replace(f"[pretrain seed {s}]", "[pretrain seed 0]"), pretrain_seed=0)
                for i in block] == one
        assert all(i.pretrain_seed == s and i.target.endswith(f"[pretrain seed {s}]") for i in block)
        assert all(f"train.seed={s}" in i.overrides() for i in block)
    fuse = [i for i in R.plan(table=1, methods=["usdrl"], pretrain_seeds=(4, 5)) if isinstance(i, R.PlannedFuse)]
    assert [f.pretrain_seed for f in fuse] == [4, 5]
    assert all({s.pretrain_seed for s in f.streams} == {f.pretrain_seed} for f in fuse)  # fuses its own seed's streams


def test_table_plans_protocols_seeds_and_fusion():
    t1 = R.plan(table=1, pretrain_seeds=(0,))
    runs = [i for i in t1 if isinstance(i, R.PlannedRun)]
    assert {i.protocol for i in runs} == {"linear", "features"}
    fuse = [i for i in t1 if isinstance(i, R.PlannedFuse)]
    assert len(fuse) == 1 and [s.modality for s in fuse[0].streams] == ["", "bone", "motion"]  # "": joint
    assert all(s.encoder == "dste" and s.protocol == "linear" for s in fuse[0].streams)  # fused from linear scores
    assert fuse[0].target == "Table 1: 3s-USDRL (DSTE) [pretrain seed 0]"
    assert {i.method for i in t1} == {cls.name for cls, r in method_rows() if 1 in r.tables} | {floor_method()}
    assert {i.method for i in t1} == set(METHODS.names())  # every registered method has a Table 1 row
    assert all(i.seeds == default_seeds("linear") for i in runs if i.protocol == "linear")
    assert all(i.seeds == (0,) for i in runs if i.protocol == "features")
    umurl = [i for i in runs if i.method == "umurl"]
    assert [(i.encoder, i.modality, i.protocol) for i in umurl] == [("umurl", "", "linear"), ("umurl", "", "features")]
    settings = R.Settings(preset="smoke")
    assert resolved(settings.config(umurl[0])).method.modality == "jbm"  # "" = the method's default
    assert [i.encoder for i in runs if i.method == "mamp"] == ["mamp-vit", "mamp-vit"]
    assert "Table 1: USDRL (DSTE) [pretrain seed 0]" in {i.target for i in runs}  # the paper row's label
    # every run's floor: random with the run's encoder and modality, once each
    floors = {(i.encoder, i.modality, i.protocol) for i in runs if i.target.startswith("untrained floor")}
    assert floors == {(e, m, p) for e in ("dste", "sttr", "umurl", "mamp-vit") for m in ("",)
                      for p in ("linear", "features")} | {("dste", m, p) for m in ("bone", "motion")
                                                           for p in ("linear", "features")}
    assert len([i for i in runs if i.target.startswith("untrained floor")]) == len(floors)
    assert "untrained floor (dste, bone), linear [pretrain seed 0]" in {i.target for i in runs}
    t4 = [i for i in R.plan(table=4, seeds=[3], pretrain_seeds=(0,)) if isinstance(i, R.PlannedRun)]
    assert all(i.protocol == "detection" and dict(i.protocol_options) == {"variant": "finetune"} and i.seeds == (3,)
               for i in t4)
    assert {i.method for i in t4 if i.target.startswith("untrained floor")} == {"random"}
    for number, protocols in ((2, {"semi"}), (3, {"knn"}), (6, {"features"})):
        assert {i.protocol for i in R.plan(table=number, pretrain_seeds=(0,))} == protocols
    f4 = R.plan(figure=4, pretrain_seeds=(0,))
    assert [dict(i.sweep).get("encoder.options.alpha") for i in f4] == [0.0, 0.25, None, 0.75, 1.0]  # 0.5: Table 1's
    assert "encoder.options.alpha=0.25" in f4[1].overrides()
    assert {i.method for i in f4} == {"usdrl"}  # no floors in the figures
    assert len(R.plan(figure=4)) == 3 * len(f4)
    f5 = R.plan(figure=5, pretrain_seeds=(0,))
    assert [(i.method, i.variant, i.protocol) for i in f5] == [
        ("contrastive", "default", ""), ("usdrl", "no_xc", ""), ("usdrl", "single_grained", ""), ("usdrl", "default", "")]
    # a method with a Figure 5 role joins the figure from its own file (here: a test's toy method)
    from harness.contracts import FigureRole

    class Toy(METHODS.get("vicreg")):
        name = "toy"
        figure_roles = (FigureRole(5, encoder="sttr", panel="(e) a toy panel"),)

    with METHODS.temporarily("toy", Toy):
        f5 = R.plan(figure=5, pretrain_seeds=(0,))
        assert [(i.method, i.variant, i.encoder) for i in f5][-1] == ("toy", "default", "sttr")
        from harness import figures
        assert [p.title.split("\n")[0] for p in figures.figure5_panels(".", dataset="synthetic", preset="cpu")][-1] \
            == "(e) a toy panel"
    with pytest.raises(Exception, match="Tables 1-5"):
        R.plan(table=7)
    with pytest.raises(Exception, match="Figure 4"):
        R.plan(figure=3)


def test_with_floors_adds_each_floor_once():
    runs = [R.PlannedRun("a", "usdrl", "linear", encoder="dste", seeds=(0, 1)),
            R.PlannedRun("b", "usdrl", "linear", variant="no_xc", encoder="dste", seeds=(0, 1)),
            R.PlannedRun("c", "contrastive", "linear", seeds=(0, 1)),  # default encoder: dste
            R.PlannedRun("d", "mamp", "knn"),
            R.PlannedRun("e", "random", "knn", encoder="sttr")]  # a floor has no floor
    out = R.with_floors(runs)
    assert out[:len(runs)] == runs
    assert [(i.target, i.method, i.encoder, i.modality, i.protocol, i.seeds) for i in out[len(runs):]] == [
        ("untrained floor (dste), linear", "random", "dste", "", "linear", (0, 1)),
        ("untrained floor (mamp-vit), knn", "random", "mamp-vit", "", "knn", (0,))]


def test_settings_let_the_plan_win_over_user_overrides():
    s = R.Settings(preset="smoke", dataset="msr-action3d", workdir="w", results="r",
                   overrides=["encoder.name=sttr", "train.steps=1", "train.seed=7"], eval_dataset="/data/pku")
    run = R.PlannedRun("x", "usdrl", "knn", encoder="dste", seeds=(0,), pretrain_seed=2)
    cfg = s.config(run)
    assert (cfg.encoder.name, cfg.train.steps, cfg.train.seed, cfg.data.dataset, cfg.protocol.dataset) == (
        "dste", 1, 2, "msr-action3d", "/data/pku")
    assert (cfg.workdir, cfg.results, cfg.preset) == ("w", "r", "smoke")
    # the pretraining seeds of one configuration share its config_hash (rows carry pretrain_seed), not the run
    other = s.config(replace(run, pretrain_seed=0))
    assert other.train.seed == 0 and other.config_hash == cfg.config_hash and other.pretrain_hash != cfg.pretrain_hash


def test_recorded_is_keyed_by_pretraining_seed(tmp_path):
    assert not R.recorded(load_results(tmp_path / "none"), "h", "linear", 0)
    append_rows(tmp_path, [ResultRow("usdrl", "synthetic", "linear", "top1", 0.5, config_hash="h", pretrain_seed=1)])
    store = load_results(tmp_path)
    assert R.recorded(store, "h", "linear", 1)
    assert not R.recorded(store, "h", "linear", 0)  # another pretraining seed of the same configuration
    assert not R.recorded(store, "h", "knn", 1) and not R.recorded(store, "g", "linear", 1)


@pytest.mark.e2e
def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, capsys):
    work, res = tmp_path / "work", tmp_path / "res"
    base = ["reproduce", "--preset", "smoke", "--workdir", str(work), "--results", str(res), "--dry-run"]
    assert main([*base, "--table", "5", "--methods", "usdrl,no_such_method"]) == 0
    out = capsys.readouterr().out
    assert "Table 5: 6 [pretrain seed 0]" in out and "Table 5: 6 [pretrain seed 2]" in out
    assert "single_grained" in out and "to run" in out
    assert "untrained floor (sttr), knn [pretrain seed 1]" in out
    assert "contrastive" not in out
    assert "Table 5: 43 planned run(s)" in out  # 1 not installed + 3 pretraining seeds × (10 usdrl + 4 floors)
    assert sum("no_such_method" in line for line in out.splitlines()) == 1  # reported once, not once per pretraining seed
    assert not work.exists() and not res.exists()
    assert main([*base, "--table", "5", "--methods", "usdrl", "--no-floors", "--pretrain-seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "Table 5: 10 planned run(s)" in out and "random" not in out and "[pretrain seed 0]" not in out
    assert main([*base, "--table", "3", "--methods", "no_such_method"]) == 0
    assert "not installed" in capsys.readouterr().out


def test_a_method_that_is_not_installed_is_skipped_not_fatal(tmp_path):
    settings = R.Settings(preset="smoke", workdir=str(tmp_path / "w"), results=str(tmp_path / "r"))
    lines = []
    out = R.execute([R.PlannedRun("Table 3: ghost", "no_such_method", "knn")], settings, log=lines.append)
    assert [o.status for o in out] == ["not installed"]
    assert "method 'no_such_method' is not installed" in lines[0] and "usdrl" in lines[0]
    assert not (tmp_path / "r").exists()


# --- end to end (real training at smoke size) ------------------------------------------------
@pytest.fixture(scope="module")
def table5(tmp_path_factory):
    root = tmp_path_factory.mktemp("reproduce")
    dirs = ["--workdir", str(root / "work"), "--results", str(root / "res")]
    code = main(["reproduce", "--table", "5", "--methods", "usdrl", *FAST, *dirs])
    return root, dirs, code


def expected_cell(rows) -> str:
    """The table's rule by hand: per pretraining seed the mean over the protocol seeds, then mean ± std."""
    per = [np.mean(rows[rows["_pseed"] == s]["_value"].to_numpy()) for s in sorted(set(rows["_pseed"]))]
    v = 100 * np.asarray(per, dtype=float)
    return f"{v.mean():.1f} ± {v.std(ddof=1):.1f} (n={len(v)})" if len(v) > 1 else f"{v[0]:.1f} (n=1)"


def mean_sd(text: str) -> str:
    """A cell without its 95 % interval and floor-test mark (tests/test_statistics.py checks those)."""
    text = re.sub(r" \[[^\]]*\]", "", text)
    return re.sub(f" ({re.escape(tables.ABOVE_FLOOR)}|{re.escape(tables.BELOW_FLOOR)}|{tables.TIE_FLOOR})(?= |$)", "",
                  text)


def md_table(md: str) -> tuple[list[str], dict[str, list[str]]]:
    """The measured table's header and rows (by first cell); the floor-difference list under it is
    another markdown table, left out."""
    lines = md.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("|") and "ours " in l)
    block = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        block.append(line)
    cells = [[x.strip() for x in l.strip().strip("|").split("|")] for l in block]
    return cells[0], {c[0]: c for c in cells[2:]}


@pytest.mark.slow
@pytest.mark.e2e
def test_reproduce_table5_trains_and_renders(table5, capsys):
    root, dirs, code = table5
    assert code == 0
    md = (root / "res" / "tables" / "synthetic-smoke" / "table5.md").read_text()
    store = tables.load_store(root / "res")
    assert set(store["method"]) == {"usdrl", "random"} and set(store["split"]) == {"xsub"}
    assert set(store["preset"]) == {"smoke"} and set(store["pretrain_seed"].astype(int)) == {0, 1}
    assert set(store[store["method"] == "usdrl"]["steps"].astype(int)) == {2}  # the step budget is recorded
    assert "**Measured dataset: synthetic**" in md and "**preset: smoke**" in md
    assert "These measured numbers are synthetic numbers, not NTU-60 numbers." in md
    columns = {"linear": ("ours Recog. (synthetic xsub, smoke)", "untrained floor Recog. (xsub)", "top1_best", 2),
               "knn": ("ours Retrieval (synthetic xsub, smoke)", "untrained floor Retrieval (xsub)", "knn1", 1)}
    head, rows = md_table(md)
    for number, (method, variant, encoder) in TABLE5_ROWS.items():
        for protocol, (ours, floor, metric, probes) in columns.items():
            sel = store[(store["method"] == method) & (store["variant"] == variant) & (store["encoder"] == encoder)
                        & (store["metric"] == metric)]
            if method == "usdrl":
                assert len(sel) == 2 * probes  # two pretraining seeds × the protocol's seeds
                assert mean_sd(rows[number][head.index(ours)]) == expected_cell(sel), (number, ours)
            else:  # contrastive was not asked for
                assert sel.empty and rows[number][head.index(ours)] == tables.NOT_RUN
            fl = store[(store["method"] == "random") & (store["encoder"] == encoder) & (store["metric"] == metric)]
            assert len(fl) == 2 * probes
            assert mean_sd(rows[number][head.index(floor)]) == expected_cell(fl), (number, floor)
    # one pretraining per (configuration, pretraining seed); the floors are untrained runs of their own
    names = sorted(p.name.split("-")[0] for p in (root / "work" / "runs").iterdir())
    assert names.count("usdrl") == 5 * 2 and names.count("random") == 2 * 2


@pytest.mark.slow
@pytest.mark.e2e
def test_rerun_skips_recorded_results_and_resumes_after_a_kill(table5, capsys):
    root, dirs, code = table5
    store_file = root / "res" / "results.csv"
    before = store_file.read_text()
    runs = sorted((root / "work" / "runs").iterdir())
    stamps = {r: (r / "run.json").read_text() for r in runs}
    capsys.readouterr()
    assert main(["reproduce", "--table", "5", "--methods", "usdrl", *FAST, *dirs]) == 0
    assert "Table 5: 28 recorded" in capsys.readouterr().out
    assert store_file.read_text() == before
    # a reproduce killed during its last usdrl evaluation of pretraining seed 1: that run and the floors after
    # it recorded nothing. The same configuration's rows of seed 0 stay: the skip is per pretraining seed.
    lines = before.splitlines()
    recs = list(csv.DictReader(io.StringIO(before)))
    last = next(r for r in reversed(recs) if r["method"] == "usdrl")
    key = (last["config_hash"], last["pretrain_seed"], last["protocol"])
    cut = next(k for k, r in enumerate(recs) if (r["config_hash"], r["pretrain_seed"], r["protocol"]) == key)
    assert last["pretrain_seed"] == "1" and any(r["config_hash"] == key[0] and r["pretrain_seed"] == "0" for r in recs)
    dropped = {(r["config_hash"], r["pretrain_seed"], r["protocol"]) for r in recs[cut:]}
    store_file.write_text("\n".join(lines[:cut + 1]) + "\n")  # the header + the rows before the cut
    assert main(["reproduce", "--table", "5", "--methods", "usdrl", *FAST, *dirs]) == 0
    out = capsys.readouterr().out
    assert len(dropped) == 5 and f"Table 5: {len(dropped)} ran, {28 - len(dropped)} recorded" in out
    assert sorted((root / "work" / "runs").iterdir()) == runs  # pretraining reused, not redone
    assert {r: (r / "run.json").read_text() for r in runs} == stamps
    assert len(load_results(root / "res")) == len(lines) - 1


@pytest.mark.slow
@pytest.mark.e2e
def test_reproduce_table1_fuses_three_streams(table5, capsys):
    root, dirs, code = table5
    assert main(["reproduce", "--table", "1", "--methods", "usdrl", *FAST, *dirs]) == 0
    out = capsys.readouterr().out
    for s in (0, 1):
        assert re.search(rf"3s-USDRL \(DSTE\) \[pretrain seed {s}\]: fuse .* — ran: fused 3 streams, 4 row\(s\) "
                         "recorded", out)
        # Table 5 row 7 is the same configuration and pretraining seed
        assert f"Table 1: USDRL (DSTE) [pretrain seed {s}]: usdrl dste joint linear pretrain seed {s} — recorded" in out
    store = tables.load_store(root / "res")
    fused = store[store["modality"] == "jbm"]
    assert sorted(fused["metric"]) == ["top1"] * 4 + ["top5"] * 4
    assert set(fused["seed"].astype(int)) == {0, 1} and set(fused["pretrain_seed"].astype(int)) == {0, 1}
    assert fused["config_hash"].nunique() == 1  # one configuration, two pretraining seeds
    assert all(len(e["files"]) == 3 and e["weights"] == [1.0, 1.0, 1.0] for e in fused["_extra"])
    md = (root / "res" / "tables" / "synthetic-smoke" / "table1.md").read_text()
    head, rows = md_table(md)
    ours, floor = "ours Recog. (synthetic xsub, smoke)", "untrained floor Recog. (xsub)"
    assert mean_sd(rows["3s-USDRL (DSTE)"][head.index(ours)]) == expected_cell(fused[fused["metric"] == "top1"]) + " ‡"
    assert rows["3s-USDRL (DSTE)"][head.index(floor)] == tables.NOT_APPLICABLE
    bone = "USDRL (DSTE), bone stream (harness)"
    floor_bone = store[(store["method"] == "random") & (store["modality"] == "bone") & (store["metric"] == "top1_best")]
    assert mean_sd(rows[bone][head.index(floor)]) == expected_cell(floor_bone)
    # Table 1's features protocol: the effective rank beside the accuracy
    rank = store[(store["method"] == "usdrl") & (store["protocol"] == "features") & (store["encoder"] == "dste")
                 & (store["modality"] == "joint") & (store["metric"] == "eff_rank")]
    assert len(rank) == 2  # one per pretraining seed (the features protocol has no seeds of its own)
    v = rank.sort_values("_pseed")["_value"].to_numpy()  # a count: shown as is, not in %
    assert mean_sd(rows["USDRL (DSTE)"][head.index("ours eff. rank (synthetic xsub, smoke)")]) == \
        f"{v.mean():.1f} ± {v.std(ddof=1):.1f} (n=2)"


@pytest.mark.slow
@pytest.mark.e2e
def test_reproduce_figure5_draws_tsne_from_the_pretrained_backbones(table5, capsys):
    root, dirs, code = table5
    assert main(["reproduce", "--figure", "5", "--methods", "usdrl", *FAST, *dirs]) == 0
    out = capsys.readouterr().out
    assert "Figure 5: 6 reused" in out  # the Table 5 backbones of both pretraining seeds
    assert "not pretrained: contrastive default" in out
    png = root / "res" / "figures" / "synthetic-smoke" / "figure5_tsne.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    m = re.search(r"\((\d+) clips of classes \[([\d, ]+)\]", out)
    assert m and len(m.group(2).split(",")) == 9
