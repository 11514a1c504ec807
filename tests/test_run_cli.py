"""`harness run` end to end at the smoke preset on real MSR Action3D (20 joints, 1 person)."""

import json

import pytest

from harness.cli import main
from harness.results import load_results

pytestmark = pytest.mark.e2e


@pytest.fixture
def dirs(tmp_path, real_data):
    return ["--workdir", str(tmp_path / "work"), "--results", str(tmp_path / "res"), "--no-progress"]


@pytest.mark.slow
def test_run_pretrains_once_then_reuses_the_checkpoint(tmp_path, dirs, capsys):
    common = ["run", "--method", "usdrl", "--dataset", "msr-action3d", "--preset", "smoke", *dirs]
    assert main([*common, "--protocol", "knn", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["metric"] for r in rows} == {"knn1", "knn20_weighted"}
    assert all(r["dataset"] == "msr-action3d" and r["method"] == "usdrl" and 0 <= r["value"] <= 1 for r in rows)
    runs = list((tmp_path / "work" / "runs").iterdir())
    assert len(runs) == 1
    stamp = (runs[0] / "run.json").read_text()
    assert main([*common, "--protocol", "linear", "--json"]) == 0
    linear = json.loads(capsys.readouterr().out)
    assert {"top1", "top1_best", "top5"} <= {r["metric"] for r in linear}
    assert (runs[0] / "run.json").read_text() == stamp  # reused, not retrained
    store = load_results(tmp_path / "res")
    assert len(store) == len(rows) + len(linear)
    assert set(store["config_hash"]) == {rows[0]["config_hash"], linear[0]["config_hash"]}


def test_unknown_names_fail_before_any_work(tmp_path, dirs, capsys):
    common = ["run", "--dataset", "msr-action3d", "--preset", "smoke", *dirs]
    assert main([*common, "--method", "usdrl", "--protocol", "knnn"]) == 2
    assert "Did you mean 'knn'" in capsys.readouterr().err
    assert main([*common, "--method", "usdrll", "--protocol", "knn"]) == 2
    assert "Did you mean 'usdrl'" in capsys.readouterr().err
    assert main([*common, "--method", "usdrl", "--protocol", "knn", "--variant", "no_xcc"]) == 2
    assert "no_xc" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()
