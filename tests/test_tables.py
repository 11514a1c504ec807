"""harness tables: row selection, marks, mean ± std, headers, problems, and the committed tables."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import paper, tables
from harness.cli import main
from harness.results import ResultRow, append_rows

REPO = Path(__file__).resolve().parents[1]


def row(method="usdrl", metric="top1_best", value=0.5, *, protocol="linear", dataset="synthetic", preset="cpu",
        encoder="dste", split="xsub", seed=0, config_hash="h1", date="2026-01-01T00:00:00Z", **kw):
    return ResultRow(method, dataset, protocol, metric, value, encoder=encoder, split=split, seed=seed, preset=preset,
                     config_hash=config_hash, date=date, **kw)


def render(store, tmp_path, *, dataset="synthetic", preset="cpu", numbers=tables.TABLES):
    out = tmp_path / "tables"
    report = tables.write_tables(store, out, dataset=dataset, preset=preset, tables=numbers)
    return report, {n: (out / f"table{n}.md").read_text() for n in numbers}


def md_row(text: str, first_cell: str) -> list[str]:
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r}")


def md_header(text: str) -> list[str]:
    line = next(l for l in text.splitlines() if l.startswith("|"))
    return [c.strip() for c in line.strip().strip("|").split("|")]


def cell(text: str, first_cell: str, column: str) -> str:
    return md_row(text, first_cell)[md_header(text).index(column)]


def test_measured_values_with_std_beside_paper_values(tmp_path):
    store = tmp_path / "res"
    append_rows(store, [row(value=v, seed=s) for s, v in enumerate((0.60, 0.62, 0.64))]
                + [row(encoder="sttr", value=0.5, config_hash="h2")]
                + [row(protocol="knn", metric="knn1", value=0.41, config_hash="h3")])
    report, md = render(store, tmp_path)
    t1 = md[1]
    col = "ours (synthetic xsub, cpu)"
    assert md_header(t1).index(col) == md_header(t1).index("NTU-60 xsub (paper)") + 1  # beside the paper column
    assert cell(t1, "USDRL (DSTE)", "NTU-60 xsub (paper)") == "85.2"
    assert cell(t1, "USDRL (DSTE)", col) == "62.0 ± 2.0 (n=3)"  # mean ± sample std over seeds, in %
    assert cell(t1, "USDRL (STTR)", col) == "50.0 (n=1)"
    assert cell(t1, "MAMP (2023)", col) == tables.NOT_RUN
    assert cell(t1, "HYSP (2023)", "PKU-MMD II xsub (paper)") == tables.PAPER_NA  # the paper's "-"
    assert cell(t1, "HYSP (2023)", col) == tables.NOT_APPLICABLE  # paper-only row
    assert cell(t1, "MoCo-v2 (harness)", "NTU-60 xsub (paper)") == tables.NOT_APPLICABLE  # extra row
    assert "*Extra rows: harness runs, not in the paper*" in t1
    # header: dataset and preset of the measured numbers, best-of, the not-NTU disclaimer, the legend
    assert "**Measured dataset: synthetic**" in t1 and "**preset: cpu**" in t1
    assert "**best-of**" in t1
    assert "**These measured numbers are synthetic numbers, not NTU-60 / NTU-120 / PKU-MMD numbers.**" in t1
    for mark in ("`—`", "`not run`", "`·`", "`⚠`"):
        assert mark in t1
    assert cell(md[3], "USDRL (DSTE)", "ours (synthetic xsub, cpu)") == "41.0 (n=1)"
    assert cell(md[5], "7", "ours Retrieval (synthetic xsub, cpu)") == "41.0 (n=1)"
    assert cell(md[5], "7", "ours Recog. (synthetic xsub, cpu)") == "62.0 ± 2.0 (n=3)"
    assert cell(md[5], "3", "Recog. (paper)") == "84.2"
    assert report.tables[1].cell("USDRL (DSTE)", "recog").values == pytest.approx([0.60, 0.62, 0.64])


def test_every_paper_value_is_in_the_markdown(tmp_path):
    _, md = render(tmp_path / "empty", tmp_path)
    t1_rows = [md_row(md[1], name) for _, name, _, _, _ in paper.TABLE1 if name != "UmURL (2023)"]
    for (_, name, _, _, values), cells in zip([r for r in paper.TABLE1 if r[1] != "UmURL (2023)"], t1_rows):
        papers = [c for h, c in zip(md_header(md[1]), cells) if h.endswith("(paper)")]
        assert papers == [tables.PAPER_NA if v is None else f"{v:.1f}" for v in values], name
    for n, data in ((2, paper.TABLE2), (3, paper.TABLE3), (4, paper.TABLE4)):
        for name, values in data:
            cells = md_row(md[n], name)
            papers = [c for h, c in zip(md_header(md[n]), cells) if h.endswith("(paper)")]
            assert papers == [tables.PAPER_NA if v is None else f"{v:.1f}" for v in values], (n, name)
    for number, _, _, values in paper.TABLE5:
        assert [cell(md[5], str(number), "Recog. (paper)"), cell(md[5], str(number), "Retrieval (paper)")] == \
            [f"{v:.1f}" for v in values]
    assert "order is unknown" in md[5]
    assert all(tables.read_marker(tmp_path / "tables" / f"table{n}.md") == (n, "synthetic", "cpu") for n in md)


def test_latest_config_hash_wins_and_other_presets_datasets_stay_out(tmp_path):
    store = tmp_path / "res"
    append_rows(store, [
        row(value=0.9, config_hash="old", date="2025-01-01T00:00:00Z", seed=0),
        row(value=0.9, config_hash="old", date="2025-01-01T00:00:00Z", seed=1),
        row(value=0.30, config_hash="new", date="2026-02-01T00:00:00Z", seed=0),
        row(value=0.10, config_hash="new", date="2026-02-01T00:00:00Z", seed=1),
        row(value=0.20, config_hash="new", date="2026-02-02T00:00:00Z", seed=1),  # a later row of the same seed
        row(value=0.77, preset="smoke", config_hash="s"),
        row(value=0.66, dataset="msr-action3d", config_hash="m"),
    ])
    report, md = render(store, tmp_path, numbers=(1,))
    c = report.tables[1].cell("USDRL (DSTE)", "recog")
    assert c.config_hash == "new" and c.superseded == 1
    assert cell(md[1], "USDRL (DSTE)", "ours (synthetic xsub, cpu)") == "25.0 ± 7.1 (n=2)"
    assert "1 older configuration(s) were superseded" in md[1]
    _, smoke = render(store, tmp_path / "s", preset="smoke", numbers=(1,))
    assert cell(smoke[1], "USDRL (DSTE)", "ours (synthetic xsub, smoke)") == "77.0 (n=1)"
    _, msr = render(store, tmp_path / "m", dataset="msr-action3d", numbers=(1,))
    assert cell(msr[1], "USDRL (DSTE)", "ours (MSR Action3D xsub, cpu)") == "66.0 (n=1)"
    assert "MSR Action3D numbers, not NTU-60 / NTU-120 / PKU-MMD numbers" in msr[1]


def test_nan_and_missing_values_are_reported_not_dropped(tmp_path, capsys):
    store = tmp_path / "res"
    append_rows(store, [row(value=0.5, seed=0), row(value=float("nan"), seed=1),
                        row(protocol="knn", metric="knn1", value=float("nan"), config_hash="k")])
    # a missing value (empty field), as a hand-edited or truncated store might hold
    path = store / "results.csv"
    lines = path.read_text().splitlines()
    lines.append(lines[1].replace(",0.5,", ",,").replace(",0,", ",2,", 1))
    path.write_text("\n".join(lines) + "\n")
    assert main(["tables", "--results", str(store), "--out", str(tmp_path / "t"), "--table", "1", "--table", "3"]) == 0
    err = capsys.readouterr().err
    assert "line 3" in err and "line 5" in err and "missing" in err and "'nan'" in err
    t1 = (tmp_path / "t" / "table1.md").read_text()
    assert cell(t1, "USDRL (DSTE)", "ours (synthetic xsub, cpu)") == "50.0 (n=1) ⚠"
    assert "**Store problems**" in t1 and "line 3" in t1 and "line 5" in t1
    t3 = (tmp_path / "t" / "table3.md").read_text()
    assert cell(t3, "USDRL (DSTE)", "ours (synthetic xsub, cpu)") == "NaN ⚠"


def test_paper_dataset_columns_and_splits(tmp_path):
    store = tmp_path / "res"
    append_rows(store, [row(dataset="ntu60", split="xsub", value=0.8, preset="paper"),
                        row(dataset="ntu60", split="xview", value=0.9, preset="paper", config_hash="v")])
    _, md = render(store, tmp_path, dataset="ntu60", preset="paper", numbers=(1,))
    head = md_header(md[1])
    assert head.index("ours (NTU-60 xview, paper)") == head.index("NTU-60 xview (paper)") + 1
    assert cell(md[1], "USDRL (DSTE)", "ours (NTU-60 xview, paper)") == "90.0 (n=1)"
    assert "These measured numbers are" not in md[1]  # the paper's own dataset: no disclaimer


def test_sweep_rows_stay_out_of_tables(tmp_path):
    store = tmp_path / "res"
    append_rows(store, [row(value=0.5, config_hash="a"),
                        row(value=0.1, config_hash="z", date="2027-01-01T00:00:00Z",
                            extra=json.dumps({"overrides": {"encoder.alpha": 0.0}}))])
    _, md = render(store, tmp_path, numbers=(1,))
    assert cell(md[1], "USDRL (DSTE)", "ours (synthetic xsub, cpu)") == "50.0 (n=1)"


def test_semi_and_detection_columns(tmp_path):
    store = tmp_path / "res"
    semi = [row(protocol="semi", metric=f"top1_best@{f:g}", value=v + s / 100, seed=s, config_hash="s",
                extra=json.dumps({"fraction": f})) for f, v in ((0.01, 0.2), (0.1, 0.4)) for s in range(3)]
    det = [row(protocol="detection", metric=m, value=v, config_hash=h,
               extra=json.dumps({"variant": var, "theta": 0.5, "scorer": "official"}))
           for m, v, var, h in (("mAP_a", 0.31, "finetune", "d1"), ("mAP_v", 0.32, "finetune", "d1"),
                                ("mAP_a", 0.11, "linear", "d2"), ("mAP_v", 0.12, "linear", "d2"))]
    append_rows(store, semi + det)
    _, md = render(store, tmp_path, numbers=(2, 4))
    assert cell(md[2], "USDRL (DSTE)", "ours 1 % (synthetic xsub, cpu)") == "21.0 ± 1.0 (n=3)"
    assert cell(md[2], "USDRL (DSTE)", "ours 10 % (synthetic xsub, cpu)") == "41.0 ± 1.0 (n=3)"
    head = md_header(md[2])
    assert head.index("ours 10 % (synthetic xsub, cpu)") == head.index("x-sub 10 % (paper)") + 1
    assert cell(md[4], "USDRL (DSTE)", "ours mAP_a (synthetic xsub, finetune, cpu)") == "31.0 (n=1)"
    assert cell(md[4], "USDRL (DSTE)", "ours mAP_v (synthetic xsub, linear, cpu)") == "12.0 (n=1)"
    assert cell(md[4], "USDRL (STTR)", "ours mAP_a (synthetic xsub, finetune, cpu)") == tables.NOT_RUN


def test_fused_rows_fill_the_three_stream_row(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = torch.tensor(rng.integers(0, 4, size=40))
    files = []
    from harness.evaluation.scores import save_scores

    for k, m in enumerate(("j", "b", "m")):
        scores = torch.tensor(rng.normal(size=(40, 4)))
        scores[torch.arange(40), labels] += 2.0
        files.append(str(save_scores(tmp_path / m / "linear-synthetic-xsub-seed0.npz", scores, labels,
                                     np.arange(40))))
    store = tmp_path / "res"
    assert main(["fuse", *files, "--record", "usdrl", "synthetic", "linear", "--results", str(store), "--json"]) == 0
    top1 = json.loads(capsys.readouterr().out)["top1"]
    _, md = render(store, tmp_path, numbers=(1,))
    assert cell(md[1], "3s-USDRL (DSTE)", "ours (synthetic xsub, cpu)") == f"{100 * top1:.1f} (n=1) ‡"
    assert cell(md[1], "USDRL (DSTE)", "ours (synthetic xsub, cpu)") == tables.NOT_RUN  # a fused top1 is not best-of


def test_contrastive_extra_rows_split_by_encoder(tmp_path):
    store = tmp_path / "res"
    append_rows(store, [row("contrastive", value=0.3, encoder="dste", config_hash="c1"),
                        row("contrastive", value=0.2, encoder="sttr", config_hash="c2")])
    _, md = render(store, tmp_path, numbers=(1, 5))
    assert cell(md[1], "MoCo-v2 (harness), DSTE", "ours (synthetic xsub, cpu)") == "30.0 (n=1)"
    assert cell(md[1], "MoCo-v2 (harness), STTR", "ours (synthetic xsub, cpu)") == "20.0 (n=1)"
    assert cell(md[5], "1", "ours Recog. (synthetic xsub, cpu)") == "20.0 (n=1)"
    assert cell(md[5], "4", "ours Recog. (synthetic xsub, cpu)") == "30.0 (n=1)"


def test_committed_tables_match_the_committed_store(tmp_path):
    committed = sorted((REPO / "results" / "tables").rglob("table*.md"))
    if not committed:
        pytest.skip("no committed tables in results/tables yet")
    for path in committed:
        marker = tables.read_marker(path)
        assert marker is not None, f"{path} has no `harness tables` marker line: not rendered by the harness"
        number, dataset, preset = marker
        out = tmp_path / f"{dataset}-{preset}"
        tables.write_tables(REPO / "results", out, dataset=dataset, preset=preset, tables=(number,))
        fresh = (out / path.name).read_text(encoding="utf-8")
        assert path.read_text(encoding="utf-8") == fresh, (
            f"{path.relative_to(REPO)} is stale: re-render with `harness tables --dataset {dataset} "
            f"--preset {preset}`")


def test_cli_writes_all_tables_atomically(tmp_path, capsys):
    store = tmp_path / "res"
    append_rows(store, [row(value=0.5)])
    assert main(["tables", "--results", str(store)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"table 1: .*table1\.md \(1 of \d+ harness cells measured on synthetic/cpu\)", out)
    written = sorted(p.name for p in (store / "tables" / "synthetic-cpu").iterdir())  # one folder per dataset/preset
    assert written == [f"table{n}.md" for n in tables.TABLES]  # no temporary files left behind
    assert main(["tables", "--results", str(store), "--preset", "smok"]) == 2
    assert "unknown preset 'smok'. Did you mean 'smoke'?" in capsys.readouterr().err
