"""Figures: the α sweep from the results store, sample choice and backbone discovery for the t-SNE."""

import json

import numpy as np
import pytest
import yaml

from harness import figures, reproduce, tables
from harness.cli import main
from harness.config import to_yaml, load_config
from harness.resolve import resolved
from harness.errors import HarnessError
from harness.results import ResultRow, append_rows

pytestmark = pytest.mark.unit

PNG = b"\x89PNG\r\n\x1a\n"


def alpha_row(value, pretrain_seed, alpha=None, config_hash="h", date="2026-01-01T00:00:00Z", preset="cpu", *,
              seed=0, key=figures.ALPHA_KEY):
    extra = json.dumps({"overrides": {key: alpha}}) if alpha is not None else ""
    return ResultRow("usdrl", "synthetic", "linear", "top1_best", value, encoder="dste", split="xsub", seed=seed,
                     pretrain_seed=pretrain_seed, preset=preset, config_hash=config_hash, extra=extra, date=date)


def test_figure4_reads_alpha_points_from_the_store(tmp_path):
    store = tmp_path / "res"
    append_rows(store, [alpha_row(0.50, 0), alpha_row(0.54, 1),  # the Table 1 run: the default α = 0.5
                        alpha_row(0.20, 0, 0.0, "a0"), alpha_row(0.30, 1, 0.0, "a0"),
                        alpha_row(0.40, 0, 1.0, "a1"), alpha_row(float("nan"), 1, 1.0, "a1"),
                        alpha_row(0.99, 0, 1.0, "old", date="2020-01-01T00:00:00Z"),  # superseded
                        alpha_row(0.90, 0, 0.0, "x", preset="smoke"),  # another preset
                        # probe seeds of one pretraining seed count once; the key of stores before encoder.options
                        alpha_row(0.60, 0, 0.75, "a3", seed=0, key="encoder.alpha"),
                        alpha_row(0.70, 0, 0.75, "a3", seed=1, key="encoder.alpha"),
                        # another sweep's rows are no α point
                        ResultRow("usdrl", "synthetic", "linear", "top1_best", 0.1, encoder="dste", split="xsub",
                                  preset="cpu", config_hash="other",
                                  extra=json.dumps({"overrides": {"train.lr": 0.1}}))])
    path, points = figures.figure4(tables.load_store(store), tmp_path / "fig", dataset="synthetic", preset="cpu")
    assert path.read_bytes()[:8] == PNG
    text = (tmp_path / "fig" / figures.FIGURE4_TABLE).read_text()  # the same points as text
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| ")]
    assert ["0", "xsub", "25.0 ± 7.1", "2", ""] in cells and ["1", "xsub", "40.0", "1", "1"] in cells, text
    assert "n = pretraining seeds" in text
    got = {p.alpha: (round(p.mean, 6), round(p.std, 6), p.n, p.bad) for p in points}
    assert got == {0.0: (25.0, round(100 * np.std([0.2, 0.3], ddof=1), 6), 2, 0), 0.5: (52.0, round(100 * np.std(
        [0.5, 0.54], ddof=1), 6), 2, 0), 0.75: (65.0, 0.0, 1, 0), 1.0: (40.0, 0.0, 1, 1)}
    assert figures.figure4(tables.load_store(store), tmp_path / "f2", dataset="msr-action3d", preset="cpu") == (None, [])


def test_figure4_key_is_the_one_reproduce_sweeps():
    assert figures.figure4_method()[1].sweep == figures.ALPHA_KEY == "encoder.options.alpha"
    assert figures.ALPHA_KEYS == {"encoder.options.alpha", "encoder.alpha"}
    assert figures.default_alpha("cpu") == figures.default_alpha("paper") == 0.5
    with pytest.raises(HarnessError, match="encoder.options.alpha"):  # the old key is refused, naming the new one
        load_config("cpu", None, ["encoder.alpha=0.25"])


@pytest.mark.e2e
def test_tables_figures_flag_draws_figure4_and_reports_missing_backbones(tmp_path, capsys):
    store = tmp_path / "res"
    append_rows(store, [alpha_row(0.5, 0), alpha_row(0.3, 0, 0.25, "q")])
    assert main(["tables", "--results", str(store), "--figures", "--workdir", str(tmp_path / "nowork")]) == 0
    out = capsys.readouterr().out
    assert "figure 4:" in out and "α = 0.25, 0.5" in out
    assert "figure 5: skipped: no pretrained backbone" in out
    assert (store / "figures" / "synthetic-cpu" / figures.FIGURE4_NAME).read_bytes()[:8] == PNG
    assert not (store / "figures" / "synthetic-cpu" / figures.FIGURE5_NAME).exists()


def test_choose_samples_is_seeded_and_capped():
    labels = np.repeat(np.arange(20), 30)
    a, ca = figures.choose_samples(labels, classes=9, per_class=10, seed=3)
    b, cb = figures.choose_samples(labels, classes=9, per_class=10, seed=3)
    c, cc = figures.choose_samples(labels, classes=9, per_class=10, seed=4)
    assert np.array_equal(a, b) and ca == cb and ca != cc
    assert len(ca) == 9 and len(a) == 90 and set(labels[a]) == set(ca)
    small, cs = figures.choose_samples(np.array([0, 0, 1, 2, 2]), classes=9, seed=0)
    assert cs == [0, 1, 2] and list(small) == [0, 1, 2, 3, 4]


def fake_run(root, name, *, preset="cpu", method="usdrl", variant="default", encoder="dste", alpha=None,
             status="finished", dataset="synthetic"):
    over = [f"method.name={method}", f"method.variant={variant}", f"encoder.name={encoder}",
            f"data.dataset={dataset}"] + ([f"encoder.options.alpha={alpha}"] if alpha is not None else [])
    run = root / "runs" / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(to_yaml(resolved(load_config(preset, None, over))))  # as the Trainer writes it
    (run / "run.json").write_text(json.dumps({"status": status}))
    (run / "backbone.pt").write_bytes(b"not read by the finder")
    return run


def test_find_backbone_run_picks_the_matching_finished_run(tmp_path):
    good = fake_run(tmp_path, "usdrl-good")
    fake_run(tmp_path, "usdrl-running", status="running")
    fake_run(tmp_path, "usdrl-alpha", alpha=0.25)  # a Figure 4 sweep run, not the default α
    fake_run(tmp_path, "usdrl-smoke", preset="smoke")
    fake_run(tmp_path, "usdrl-sttr", encoder="sttr")
    nx = fake_run(tmp_path, "usdrl-noxc", variant="no_xc")
    find = dict(encoder="dste", dataset="synthetic", preset="cpu")
    assert figures.find_backbone_run(tmp_path, method="usdrl", variant="default", **find) == good
    assert figures.find_backbone_run(tmp_path, method="usdrl", variant="no_xc", **find) == nx
    assert figures.find_backbone_run(tmp_path, method="contrastive", variant="default", **find) is None
    panels = figures.figure5_panels(tmp_path, dataset="synthetic", preset="cpu")
    assert [p.run_dir for p in panels] == [None, nx, None, good]
    assert "not pretrained" in panels[0].note and panels[3].note == ""
    assert yaml.safe_load((good / "config.yaml").read_text())["encoder"]["options"]["alpha"] == 0.5
