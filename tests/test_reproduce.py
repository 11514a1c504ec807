"""harness reproduce: the plans, skipping, and Table 5 / Table 1 / Figure 5 end to end at smoke size.

The end-to-end tests train for real (smoke preset, shrunk further with --set) on the built-in synthetic
dataset (240 clips at the smoke preset, xsub split); nothing is mocked.
"""

import re

import pytest

from harness import reproduce as R
from harness import tables
from harness.cli import main
from harness.results import load_results

FAST = ["--preset", "smoke", "--dataset", "synthetic", "--seeds", "0,1", "--no-progress",
        "--set", "train.epochs=1", "--set", "train.max_steps_per_epoch=1",
        "--set", "train.batch_size=16", "--set", "encoder.layers=1", "--set", "encoder.hidden=16",
        "--set", "encoder.mlp_hidden=32", "--set", "encoder.ffn=16", "--set", "data.max_train_samples=32"]


def keys(items):
    return [(i.target, i.method, i.variant, i.encoder, i.modality, i.protocol) for i in items
            if isinstance(i, R.PlannedRun)]


def test_table5_plan_maps_the_seven_rows():
    got = keys(R.plan(table=5))
    want = []
    for row, method, variant, encoder in ((1, "contrastive", "default", "sttr"), (2, "usdrl", "no_xc", "sttr"),
                                          (3, "usdrl", "default", "sttr"), (4, "contrastive", "default", "dste"),
                                          (5, "usdrl", "no_xc", "dste"), (6, "usdrl", "single_grained", "dste"),
                                          (7, "usdrl", "default", "dste")):
        want += [(f"Table 5 row {row}", method, variant, encoder, "joint", p) for p in ("linear", "knn")]
    assert got == want
    assert [k for k in keys(R.plan(table=5, methods=["usdrl"])) if k[1] != "usdrl"] == []


def test_table_plans_protocols_seeds_and_fusion():
    t1 = R.plan(table=1)
    assert {i.protocol for i in t1 if isinstance(i, R.PlannedRun)} == {"linear"}
    fuse = [i for i in t1 if isinstance(i, R.PlannedFuse)]
    assert len(fuse) == 1 and [s.modality for s in fuse[0].streams] == ["joint", "bone", "motion"]
    assert all(s.encoder == "dste" for s in fuse[0].streams)
    assert {i.method for i in t1} == set(R.METHOD_ORDER)
    assert all(i.seeds == R.LINEAR_SEEDS for i in t1 if isinstance(i, R.PlannedRun))
    umurl = [i for i in t1 if i.method == "umurl"]
    assert [i.modality for i in umurl] == ["jbm"]
    t4 = [i for i in R.plan(table=4, seeds=[3]) if isinstance(i, R.PlannedRun)]
    assert all(i.protocol == "detection" and dict(i.protocol_options) == {"variant": "finetune"} and i.seeds == (3,)
               for i in t4)
    assert {i.protocol for i in R.plan(table=2)} == {"semi"} and {i.protocol for i in R.plan(table=3)} == {"knn"}
    f4 = R.plan(figure=4)
    assert [dict(i.sweep).get("encoder.alpha") for i in f4] == [0.0, 0.25, None, 0.75, 1.0]  # α = 0.5 is Table 1's
    assert "encoder.alpha=0.25" in f4[1].overrides()
    f5 = R.plan(figure=5)
    assert [(i.method, i.variant, i.protocol) for i in f5] == [
        ("contrastive", "default", ""), ("usdrl", "no_xc", ""), ("usdrl", "single_grained", ""), ("usdrl", "default", "")]
    with pytest.raises(Exception, match="Tables 1-5"):
        R.plan(table=6)


def test_settings_let_the_plan_win_over_user_overrides():
    s = R.Settings(preset="smoke", dataset="msr-action3d", workdir="w", results="r",
                   overrides=["encoder.name=sttr", "train.epochs=1"], eval_dataset="/data/pku")
    cfg = s.config(R.PlannedRun("x", "usdrl", "knn", encoder="dste", seeds=(0,)))
    assert (cfg.encoder.name, cfg.train.epochs, cfg.data.dataset, cfg.protocol.dataset) == ("dste", 1, "msr-action3d",
                                                                                          "/data/pku")
    assert (cfg.workdir, cfg.results, cfg.preset) == ("w", "r", "smoke")


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, capsys):
    work, res = tmp_path / "work", tmp_path / "res"
    assert main(["reproduce", "--table", "5", "--preset", "smoke", "--workdir", str(work), "--results", str(res),
                 "--methods", "usdrl,no_such_method", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Table 5 row 6" in out and "single_grained" in out and "to run" in out
    assert "contrastive" not in out
    assert not work.exists() and not res.exists()
    assert main(["reproduce", "--table", "3", "--preset", "smoke", "--workdir", str(work), "--results", str(res),
                 "--methods", "no_such_method", "--dry-run"]) == 0
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


def test_reproduce_table5_trains_and_renders(table5, capsys):
    root, dirs, code = table5
    assert code == 0
    md = (root / "res" / "tables" / "synthetic-smoke" / "table5.md").read_text()
    store = tables.load_store(root / "res")
    assert set(store["method"]) == {"usdrl"} and set(store["split"]) == {"xsub"} and set(store["preset"]) == {"smoke"}
    assert "**Measured dataset: synthetic**" in md and "**preset: smoke**" in md
    assert "These measured numbers are synthetic numbers, not NTU-60 numbers." in md
    rec, ret = "ours Recog. (synthetic xsub, smoke)", "ours Retrieval (synthetic xsub, smoke)"
    head = [c.strip() for c in next(l for l in md.splitlines() if l.startswith("|")).strip("|").split("|")]
    rows = {c[0]: c for c in ([x.strip() for x in l.strip().strip("|").split("|")] for l in md.splitlines()
                              if l.startswith("| ") and l[2].isdigit())}
    variants = {2: ("no_xc", "sttr"), 3: ("default", "sttr"), 5: ("no_xc", "dste"), 6: ("single_grained", "dste"),
                7: ("default", "dste")}
    for number, (variant, encoder) in variants.items():
        for column, protocol, metric, n in ((rec, "linear", "top1_best", 2), (ret, "knn", "knn1", 1)):
            text = rows[str(number)][head.index(column)]
            sel = store[(store["variant"] == variant) & (store["encoder"] == encoder) & (store["metric"] == metric)]
            values = 100 * sel["_value"].to_numpy()
            assert len(values) == n
            expect = f"{values.mean():.1f} ± {values.std(ddof=1):.1f} (n=2)" if n == 2 else f"{values[0]:.1f} (n=1)"
            assert text == expect, (number, column)
    for number in ("1", "4"):  # contrastive was not asked for
        assert rows[number][head.index(rec)] == tables.NOT_RUN and rows[number][head.index(ret)] == tables.NOT_RUN


def test_rerun_skips_recorded_results_and_resumes_after_a_kill(table5, capsys):
    root, dirs, code = table5
    store_file = root / "res" / "results.csv"
    before = store_file.read_text()
    runs = sorted((root / "work" / "runs").iterdir())
    stamps = {r: (r / "run.json").read_text() for r in runs}
    capsys.readouterr()
    assert main(["reproduce", "--table", "5", "--methods", "usdrl", *FAST, *dirs]) == 0
    assert "Table 5: 10 recorded" in capsys.readouterr().out
    assert store_file.read_text() == before
    # a reproduce killed before the last configuration recorded its rows: drop them and run again
    last_hash = load_results(root / "res")["config_hash"].iloc[-1]
    kept = [l for l in before.splitlines() if f",{last_hash}," not in l]
    store_file.write_text("\n".join(kept) + "\n")
    assert main(["reproduce", "--table", "5", "--methods", "usdrl", *FAST, *dirs]) == 0
    out = capsys.readouterr().out
    assert "Table 5: 1 ran, 9 recorded" in out
    assert sorted((root / "work" / "runs").iterdir()) == runs  # pretraining reused, not redone
    assert {r: (r / "run.json").read_text() for r in runs} == stamps
    assert len(load_results(root / "res")) == len(before.splitlines()) - 1


def test_reproduce_table1_fuses_three_streams(table5, capsys):
    root, dirs, code = table5
    assert main(["reproduce", "--table", "1", "--methods", "usdrl", *FAST, *dirs]) == 0
    out = capsys.readouterr().out
    assert re.search(r"3s-USDRL \(DSTE\): fuse .* — ran: fused 3 streams, 4 row\(s\) recorded", out)
    assert "Table 1: USDRL (DSTE): usdrl dste linear — recorded" in out  # Table 5 row 7 is the same config
    store = tables.load_store(root / "res")
    fused = store[store["modality"] == "jbm"]
    assert sorted(fused["metric"]) == ["top1", "top1", "top5", "top5"] and set(fused["seed"].astype(int)) == {0, 1}
    assert all(len(e["files"]) == 3 and e["weights"] == [1.0, 1.0, 1.0] for e in fused["_extra"])
    md = (root / "res" / "tables" / "synthetic-smoke" / "table1.md").read_text()
    line = next(l for l in md.splitlines() if l.startswith("| 3s-USDRL (DSTE)"))
    v = 100 * fused[fused["metric"] == "top1"]["_value"].to_numpy()
    assert f"{v.mean():.1f} ± {v.std(ddof=1):.1f} (n=2) ‡" in line
    assert "USDRL (DSTE), bone stream (harness)" in md


def test_reproduce_figure5_draws_tsne_from_the_pretrained_backbones(table5, capsys):
    root, dirs, code = table5
    assert main(["reproduce", "--figure", "5", "--methods", "usdrl", *FAST, *dirs]) == 0
    out = capsys.readouterr().out
    assert "Figure 5: 3 reused" in out  # the Table 5 backbones
    assert "not pretrained: contrastive default" in out
    png = root / "res" / "figures" / "synthetic-smoke" / "figure5_tsne.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    m = re.search(r"\((\d+) clips of classes \[([\d, ]+)\]", out)
    assert m and len(m.group(2).split(",")) == 9
