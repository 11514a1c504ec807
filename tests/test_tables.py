"""harness tables: row selection, marks, mean ± std over pretraining seeds, untrained floors, headers,
problems, the diagnostics table 6, older stores, and the committed tables."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import paper, tables
from harness.cli import main
from harness.results import ResultRow, append_rows
from harness.tables.build import floor_selector
from harness.tables.cost_table import write_cost_table
from harness.tables.specs import method_rows

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_thread")]

REPO = Path(__file__).resolve().parents[1]
OURS = "ours Recog. (synthetic xsub, cpu)"  # Table 1 has several measures: headers name the measure
FLOOR = "untrained floor Recog. (xsub)"


def row(method="usdrl", metric="top1_best", value=0.5, *, protocol="linear", dataset="synthetic", preset="cpu",
        encoder="dste", split="xsub", seed=0, config_hash="h1", date="2026-01-01T00:00:00Z", steps=320, **kw):
    return ResultRow(method, dataset, protocol, metric, value, encoder=encoder, split=split, seed=seed, preset=preset,
                     config_hash=config_hash, date=date, steps=steps, **kw)


def render(store, tmp_path, *, dataset="synthetic", preset="cpu", numbers=tables.TABLES):
    out = tmp_path / "tables"
    report = tables.write_tables(store, out, dataset=dataset, preset=preset, tables=numbers)
    return report, {n: (out / f"table{n}.md").read_text() for n in numbers}


def md_rows(text: str, first_cell: str) -> list[list[str]]:
    out = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            out.append(cells)
    return out


def md_row(text: str, first_cell: str) -> list[str]:
    found = md_rows(text, first_cell)
    if not found:
        raise AssertionError(f"no row {first_cell!r}")
    return found[0]


def md_header(text: str) -> list[str]:
    line = next(l for l in text.splitlines() if l.startswith("|"))
    return [c.strip() for c in line.strip().strip("|").split("|")]


def cell(text: str, first_cell: str, column: str, *, nth: int = 0) -> str:
    return md_rows(text, first_cell)[nth][md_header(text).index(column)]


def mean_sd(text: str) -> str:
    """A cell without its 95 % interval and its floor-test mark (tests/test_statistics.py checks those)."""
    text = re.sub(r" \[[^\]]*\]", "", text)
    return re.sub(f" ({re.escape(tables.ABOVE_FLOOR)}|{re.escape(tables.BELOW_FLOOR)}|{tables.TIE_FLOOR})(?= |$)", "",
                  text)


def test_table_numbers():
    assert tables.TABLES == (1, 2, 3, 4, 5, 6) and tables.PAPER_TABLES == (1, 2, 3, 4, 5)
    specs = tables.table_specs()
    assert sorted(specs) == list(tables.TABLES)
    assert specs[6].columns == () and specs[6].measures == ["erank", "top1_share", "mean_cos", "mean_std"]
    assert specs[1].measures == ["recog", "recog_white", "erank", "recog_final"]  # final-epoch: laid out beside Recog.


def test_measured_values_with_std_beside_paper_values(tmp_path):
    store = tmp_path / "res"
    append_rows(store, [row(value=v, pretrain_seed=s) for s, v in enumerate((0.60, 0.62, 0.64))]
                + [row(encoder="sttr", value=0.5, config_hash="h2")]
                + [row(protocol="knn", metric="knn1", value=0.41, config_hash="h3")])
    report, md = render(store, tmp_path)
    t1 = md[1]
    head = md_header(t1)
    assert head.index(OURS) == head.index("NTU-60 xsub (paper)") + 1  # beside the paper column
    assert head.index(FLOOR) == head.index(OURS) + 1  # and its untrained floor right after it
    assert cell(t1, "USDRL (DSTE)", "NTU-60 xsub (paper)") == "85.2"
    assert mean_sd(cell(t1, "USDRL (DSTE)", OURS)) == "62.0 ± 2.0 (n=3)"  # mean ± sample std over pretraining seeds, in %
    assert cell(t1, "USDRL (STTR)", OURS) == "50.0 (n=1)"
    assert cell(t1, "USDRL (DSTE)", FLOOR) == tables.NOT_RUN  # no random rows in this store
    assert cell(t1, "MAMP (2023)", OURS) == tables.NOT_RUN
    assert cell(t1, "HYSP (2023)", "PKU-MMD II xsub (paper)") == tables.PAPER_NA  # the paper's "-"
    assert cell(t1, "HYSP (2023)", OURS) == tables.NOT_APPLICABLE  # paper-only row
    assert cell(t1, "HYSP (2023)", FLOOR) == tables.NOT_APPLICABLE
    assert cell(t1, "MoCo-v2 (harness)", "NTU-60 xsub (paper)") == tables.NOT_APPLICABLE  # extra row
    assert "*Extra rows: harness runs, not in the paper*" in t1
    # header: dataset and preset of the measured numbers, best-of, pretraining seeds, floors, the not-NTU
    # disclaimer, the legend
    assert "**Measured dataset: synthetic**" in t1 and "**preset: cpu**" in t1
    assert "**best-of**" in t1
    assert "over pretraining seeds (n = number of pretraining seeds)" in t1
    assert f"**{tables.FLOOR_HEADER}** column beside it" in t1
    assert "**These measured numbers are synthetic numbers, not NTU-60 / NTU-120 / PKU-MMD numbers.**" in t1
    for mark in ("`—`", "`not run`", "`·`", "`⚠`"):
        assert mark in t1
    assert cell(md[3], "USDRL (DSTE)", "ours (synthetic xsub, cpu)") == "41.0 (n=1)"  # one measure: no label
    assert cell(md[3], "USDRL (DSTE)", "untrained floor (xsub)") == tables.NOT_RUN
    assert cell(md[5], "7", "ours Retrieval (synthetic xsub, cpu)") == "41.0 (n=1)"
    assert mean_sd(cell(md[5], "7", "ours Recog. (synthetic xsub, cpu)")) == "62.0 ± 2.0 (n=3)"
    assert cell(md[5], "3", "Recog. (paper)") == "84.2"
    c = report.tables[1].cell("USDRL (DSTE)", "recog")
    assert c.values == pytest.approx([0.60, 0.62, 0.64]) and c.seeds == [0, 1, 2] and c.probe_seeds == [1, 1, 1]


def test_probe_seeds_are_averaged_within_a_pretraining_seed(tmp_path):
    store = tmp_path / "res"
    append_rows(store, [row(value=v + p / 10, seed=s, pretrain_seed=p)
                        for p in (0, 1) for s, v in enumerate((0.60, 0.62, 0.64))])
    report, md = render(store, tmp_path, numbers=(1,))
    c = report.tables[1].cell("USDRL (DSTE)", "recog")
    assert c.values == pytest.approx([0.62, 0.72]) and c.seeds == [0, 1] and c.probe_seeds == [3, 3]
    # n counts pretraining seeds; the spread of the probe seeds is not the std shown
    assert mean_sd(cell(md[1], "USDRL (DSTE)", OURS)) == f"67.0 ± {100 * np.std([0.62, 0.72], ddof=1):.1f} (n=2)"
    # three probe seeds of one pretraining seed are one value, not three
    one = tmp_path / "one"
    append_rows(one, [row(value=v, seed=s) for s, v in enumerate((0.60, 0.62, 0.64))])
    _, md1 = render(one, tmp_path / "o", numbers=(1,))
    assert cell(md1[1], "USDRL (DSTE)", OURS) == "62.0 (n=1)"
    # the header says how many protocol seeds each pretraining seed averaged
    assert "protocol seeds per pretraining seed in this table: Recog. 3." in md[1]


def test_untrained_floor_columns_read_the_rows_backbone(tmp_path):
    store = tmp_path / "res"
    floors = [row("random", value=0.10, encoder="dste", config_hash="fd"),
              row("random", value=0.20, encoder="dste", config_hash="fd", pretrain_seed=1),
              row("random", value=0.30, encoder="sttr", config_hash="fs"),
              row("random", value=0.05, encoder="dste", modality="bone", config_hash="fb"),
              row("random", value=0.06, encoder="mamp-vit", config_hash="fm"),
              row("random", value=0.07, encoder="umurl", modality="jbm", config_hash="fu"),
              row("random", protocol="knn", metric="knn1", value=0.08, encoder="dste", config_hash="fk")]
    methods = [row(value=0.5), row(encoder="sttr", value=0.6, config_hash="s"),
               row(encoder="dste", modality="bone", value=0.4, config_hash="b"),
               row("mamp", encoder="mamp-vit", value=0.3, config_hash="m"),
               row("umurl", encoder="umurl", modality="jbm", value=0.45, config_hash="u"),
               row("contrastive", encoder="sttr", value=0.35, config_hash="c")]
    append_rows(store, floors + methods)
    report, md = render(store, tmp_path, numbers=(1, 3, 5, 6))
    t1 = md[1]
    assert mean_sd(cell(t1, "USDRL (DSTE)", FLOOR)) == f"15.0 ± {100 * np.std([0.1, 0.2], ddof=1):.1f} (n=2)"
    assert cell(t1, "USDRL (STTR)", FLOOR) == "30.0 (n=1)"
    assert cell(t1, "USDRL (DSTE), bone stream (harness)", OURS) == "40.0 (n=1)"
    assert cell(t1, "USDRL (DSTE), bone stream (harness)", FLOOR) == "5.0 (n=1)"  # same modality
    assert cell(t1, "MAMP (2023)", OURS) == "30.0 (n=1)" and cell(t1, "MAMP (2023)", FLOOR) == "6.0 (n=1)"
    assert cell(t1, "UmURL (2023)", OURS, nth=1) == "45.0 (n=1)"  # the J+M+B row
    assert cell(t1, "UmURL (2023)", FLOOR, nth=1) == "7.0 (n=1)"
    assert cell(t1, "UmURL (2023)", OURS, nth=0) == tables.NOT_APPLICABLE  # the paper's J row
    assert cell(t1, "MoCo-v2 (harness), STTR", FLOOR) == "30.0 (n=1)"  # the expanded encoder's floor
    assert mean_sd(cell(t1, "VICReg (harness)", FLOOR)) == f"15.0 ± {100 * np.std([0.1, 0.2], ddof=1):.1f} (n=2)"  # default dste
    assert cell(t1, "3s-USDRL (DSTE)", FLOOR) == tables.NOT_APPLICABLE  # an ensemble has no one backbone
    assert mean_sd(cell(t1, "Random init (harness reference), DSTE", OURS)) == "15.0 ± 7.1 (n=2)"
    assert cell(t1, "Random init (harness reference), DSTE", FLOOR) == tables.NOT_APPLICABLE  # the floor itself
    floor = report.tables[1].floors[("USDRL (DSTE)", tables.MeasuredColumn("recog", "xsub"))]
    assert floor.values == pytest.approx([0.1, 0.2])
    assert cell(md[3], "USDRL (DSTE)", "untrained floor (xsub)") == "8.0 (n=1)"
    assert cell(md[5], "7", "untrained floor Retrieval (xsub)") == "8.0 (n=1)"
    assert cell(md[5], "1", "untrained floor Recog. (xsub)") == "30.0 (n=1)"  # contrastive · sttr
    head6 = md_header(md[6])
    assert head6.index("untrained floor eff. rank (xsub)") == head6.index("ours eff. rank (synthetic xsub, cpu)") + 1
    # the selector of a floor: method random with the row's encoder and modality
    sel = tables.Selector("usdrl", encoder="dste", modality="bone")
    assert floor_selector(sel) == tables.Selector("random", "default", "dste", "bone")
    assert floor_selector(tables.Selector("umurl", encoder="umurl", modality=None)).modality == "jbm"
    assert floor_selector(tables.Selector("contrastive", encoder="sttr")).encoder == "sttr"
    assert floor_selector(tables.Selector("random", encoder="dste")) is None
    assert floor_selector(tables.Selector("usdrl", encoder="dste", modality="jbm", fused=True)) is None


def test_table1_whitened_readout_and_effective_rank(tmp_path):
    store = tmp_path / "res"
    append_rows(store, [row(value=0.5, config_hash="l"), row(metric="top1_whitened", value=0.7, config_hash="l"),
                        row(protocol="features", metric="eff_rank", value=5.31, config_hash="f"),
                        row("random", protocol="features", metric="eff_rank", value=2.04, config_hash="r")])
    _, md = render(store, tmp_path, numbers=(1,))
    head = md_header(md[1])
    white, rank = "ours Recog. whitened (synthetic xsub, cpu)", "ours eff. rank (synthetic xsub, cpu)"
    assert head.index("untrained floor Recog. whitened (xsub)") == head.index(white) + 1
    assert head.index("untrained floor eff. rank (xsub)") == head.index(rank) + 1
    assert head.index(white) > head.index("PKU-MMD II xsub (paper)")  # no paper column: after the paper's
    assert cell(md[1], "USDRL (DSTE)", OURS) == "50.0 (n=1)"
    assert cell(md[1], "USDRL (DSTE)", white) == "70.0 (n=1)"
    assert cell(md[1], "USDRL (DSTE)", rank) == "5.3 (n=1)"  # a count, not a fraction: not ×100
    assert cell(md[1], "USDRL (DSTE)", "untrained floor eff. rank (xsub)") == "2.0 (n=1)"
    assert cell(md[1], "USDRL (STTR)", white) == tables.NOT_RUN


def test_table6_collapse_diagnostics(tmp_path):
    store = tmp_path / "res"
    diag = {"eff_rank": 12.34, "top1_share": 0.25, "mean_cos": 0.1, "mean_std": 0.125}
    append_rows(store, [row(protocol="features", metric=m, value=v + p / 100, config_hash="f", pretrain_seed=p)
                        for m, v in diag.items() for p in (0, 1)]
                + [row("mamp", protocol="features", metric="eff_rank", value=1.5, encoder="mamp-vit", config_hash="m")])
    report, md = render(store, tmp_path, numbers=(6,))
    t6 = md[6]
    assert "A harness table: the paper has no such table." in t6
    assert not [h for h in md_header(t6) if h.endswith("(paper)")]
    label = "USDRL (DSTE) (harness)"
    assert mean_sd(cell(t6, label, "ours eff. rank (synthetic xsub, cpu)")) == "12.3 ± 0.0 (n=2)"
    assert mean_sd(cell(t6, label, "ours top direction % (synthetic xsub, cpu)")) == "25.5 ± 0.7 (n=2)"
    assert mean_sd(cell(t6, label, "ours mean cosine ×100 (synthetic xsub, cpu)")) == "10.5 ± 0.7 (n=2)"
    assert mean_sd(cell(t6, label, "ours std ×100 (synthetic xsub, cpu)")) == "13.0 ± 0.7 (n=2)"
    assert cell(t6, "MAMP (harness)", "ours eff. rank (synthetic xsub, cpu)") == "1.5 (n=1)"
    assert cell(t6, "USDRL (STTR) (harness)", "ours eff. rank (synthetic xsub, cpu)") == tables.NOT_RUN
    # every method that declares a Table 6 row has one
    want = {r.label for _, r in method_rows() if 6 in r.tables}
    assert {"MAMP (harness)", "UmURL (harness)", "VICReg (harness)", label} <= want
    for name in want:
        md_row(t6, name)
    assert report.tables[6].cell(label, "erank").scale == 1.0


def test_every_paper_value_is_in_the_markdown(tmp_path):
    _, md = render(tmp_path / "empty", tmp_path)
    for (_, name, _, modality, values) in paper.TABLE1:
        cells = next(c for c in md_rows(md[1], name) if c[2] == modality)
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


def test_paper_rows_are_filled_by_the_methods_table_rows(tmp_path):
    """Every TableRow that names a paper row fills it (its selector), the others are extra rows."""
    specs = tables.table_specs()
    for cls, trow in method_rows():
        for number in trow.tables:
            label = trow.paper_label(number)
            if label is None:
                extra = [r for r in specs[number].rows if r.label == trow.label]
                assert extra and extra[0].paper is None and extra[0].group == "Extra rows: harness runs, not in the paper"
                continue
            filled = [r for r in specs[number].rows if r.label == label and r.selector is not None
                      and r.selector.method == cls.name]
            assert filled and filled[0].paper is not None, (cls.name, number, label)
    t5 = {r.label: r.selector for r in specs[5].rows if r.paper is not None}
    assert {k: (s.method, s.variant, s.encoder) for k, s in t5.items()} == {
        "1": ("contrastive", "default", "sttr"), "2": ("usdrl", "no_xc", "sttr"), "3": ("usdrl", "default", "sttr"),
        "4": ("contrastive", "default", "dste"), "5": ("usdrl", "no_xc", "dste"),
        "6": ("usdrl", "single_grained", "dste"), "7": ("usdrl", "default", "dste")}
    t1 = {(r.label, r.info[1]): r.selector for r in specs[1].rows if r.selector is not None and r.paper is not None}
    assert (t1[("MAMP (2023)", "J")].method, t1[("MAMP (2023)", "J")].encoder) == ("mamp", "mamp-vit")
    assert (t1[("UmURL (2023)", "J+M+B")].method, t1[("UmURL (2023)", "J+M+B")].encoder) == ("umurl", "umurl")
    assert ("UmURL (2023)", "J") not in t1
    assert t1[("3s-USDRL (DSTE)", "J+M+B")].fused


def test_mamp_and_umurl_rows_read_only_their_own_backbone(tmp_path):
    store = tmp_path / "res"
    # a MAMP row recorded under another encoder name (today's store keeps what was written)
    append_rows(store, [row("mamp", encoder="dste", value=0.3, config_hash="m")])
    _, md = render(store, tmp_path, numbers=(1,))
    assert cell(md[1], "MAMP (2023)", OURS) == tables.NOT_RUN
    assert "mamp · mamp-vit" in md_row(md[1], "MAMP (2023)")
    # a store written before pretrain_seed/steps existed recorded the unused encoder.name ("dste") for methods
    # that train their own backbone: read, those rows are relabelled to it
    old = tmp_path / "old"
    old.mkdir()
    header = "method,dataset,protocol,metric,value,variant,encoder,modality,split,seed,preset,epochs,config_hash," \
             "code_version,hardware,date,extra"
    lines = [header] + [f"{m},synthetic,linear,top1_best,{v},default,dste,{mod},xsub,{s},cpu,60,{h},0.1.0,cpu,"
                        f"2026-01-01T00:00:00Z," for m, v, mod, s, h in (
                            ("mamp", 0.30, "joint", 0, "m"), ("mamp", 0.32, "joint", 1, "m"),
                            ("umurl", 0.45, "jbm", 0, "u"), ("usdrl", 0.5, "joint", 0, "d"))]
    (old / "results.csv").write_text("\n".join(lines) + "\n")
    store_df = tables.load_store(old)
    assert set(store_df[store_df["method"] == "mamp"]["encoder"]) == {"mamp-vit"}
    assert set(store_df[store_df["method"] == "umurl"]["encoder"]) == {"umurl"}
    assert set(store_df[store_df["method"] == "usdrl"]["encoder"]) == {"dste"}  # a method with a choice keeps it
    assert set(store_df["pretrain_seed"].astype(int)) == {0}
    _, md_old = render(old, tmp_path / "o", numbers=(1,))
    # probe seeds 0 and 1 of pretraining seed 0; † as these old rows record no pretraining budget
    assert cell(md_old[1], "MAMP (2023)", OURS) == f"31.0 (n=1) {tables.OLD}"
    assert cell(md_old[1], "UmURL (2023)", OURS, nth=1) == f"45.0 (n=1) {tables.OLD}"
    assert cell(md_old[1], "USDRL (DSTE)", OURS) == f"50.0 (n=1) {tables.OLD}"


def test_latest_config_hash_wins_and_other_presets_datasets_stay_out(tmp_path):
    store = tmp_path / "res"
    append_rows(store, [
        row(value=0.9, config_hash="old", date="2025-01-01T00:00:00Z", pretrain_seed=0),
        row(value=0.9, config_hash="old", date="2025-01-01T00:00:00Z", pretrain_seed=1),
        row(value=0.30, config_hash="new", date="2026-02-01T00:00:00Z", pretrain_seed=0),
        row(value=0.10, config_hash="new", date="2026-02-01T00:00:00Z", pretrain_seed=1),
        row(value=0.20, config_hash="new", date="2026-02-02T00:00:00Z", pretrain_seed=1),  # a later row, same seeds
        row(value=0.77, preset="smoke", config_hash="s"),
        row(value=0.66, dataset="msr-action3d", config_hash="m"),
    ])
    report, md = render(store, tmp_path, numbers=(1,))
    c = report.tables[1].cell("USDRL (DSTE)", "recog")
    assert c.config_hash == "new" and c.superseded == 1
    assert c.values == pytest.approx([0.30, 0.20])
    assert mean_sd(cell(md[1], "USDRL (DSTE)", OURS)) == "25.0 ± 7.1 (n=2)"
    assert "1 older configuration(s) were superseded" in md[1]
    _, smoke = render(store, tmp_path / "s", preset="smoke", numbers=(1,))
    assert cell(smoke[1], "USDRL (DSTE)", "ours Recog. (synthetic xsub, smoke)") == "77.0 (n=1)"
    _, msr = render(store, tmp_path / "m", dataset="msr-action3d", numbers=(1,))
    assert cell(msr[1], "USDRL (DSTE)", "ours Recog. (MSR Action3D xsub, cpu)") == "66.0 (n=1)"
    assert "MSR Action3D numbers, not NTU-60 / NTU-120 / PKU-MMD numbers" in msr[1]


@pytest.mark.e2e
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
    assert cell(t1, "USDRL (DSTE)", OURS) == "50.0 (n=1) ⚠"
    assert "**Store problems**" in t1 and "line 3" in t1 and "line 5" in t1
    assert f'column "{OURS}"' in t1
    t3 = (tmp_path / "t" / "table3.md").read_text()
    assert cell(t3, "USDRL (DSTE)", "ours (synthetic xsub, cpu)") == "NaN ⚠"


def test_paper_dataset_columns_and_splits(tmp_path):
    store = tmp_path / "res"
    append_rows(store, [row(dataset="ntu60", split="xsub", value=0.8, preset="paper"),
                        row(dataset="ntu60", split="xview", value=0.9, preset="paper", config_hash="v"),
                        row("random", dataset="ntu60", split="xview", value=0.2, preset="paper", config_hash="r")])
    _, md = render(store, tmp_path, dataset="ntu60", preset="paper", numbers=(1,))
    head = md_header(md[1])
    col = "ours Recog. (NTU-60 xview, paper)"
    assert head.index(col) == head.index("NTU-60 xview (paper)") + 1
    assert head.index("untrained floor Recog. (xview)") == head.index(col) + 1
    assert cell(md[1], "USDRL (DSTE)", col) == "90.0 (n=1)"
    assert cell(md[1], "USDRL (DSTE)", "untrained floor Recog. (xview)") == "20.0 (n=1)"
    assert cell(md[1], "USDRL (DSTE)", "ours Recog. (NTU-60 xsub, paper)") == "80.0 (n=1)"
    assert "These measured numbers are" not in md[1]  # the paper's own dataset: no disclaimer


def test_sweep_rows_stay_out_of_tables(tmp_path):
    store = tmp_path / "res"
    append_rows(store, [row(value=0.5, config_hash="a"),
                        row(value=0.1, config_hash="z", date="2027-01-01T00:00:00Z",
                            extra=json.dumps({"overrides": {"encoder.options.alpha": 0.0}})),
                        row(value=0.2, config_hash="y", date="2027-01-01T00:00:00Z",  # an older store's key
                            extra=json.dumps({"overrides": {"encoder.alpha": 0.0}}))])
    _, md = render(store, tmp_path, numbers=(1,))
    assert cell(md[1], "USDRL (DSTE)", OURS) == "50.0 (n=1)"


def test_semi_and_detection_columns(tmp_path):
    store = tmp_path / "res"
    semi = [row(protocol="semi", metric=f"top1_best@{f:g}", value=v + p / 100, pretrain_seed=p, config_hash="s",
                extra=json.dumps({"fraction": f})) for f, v in ((0.01, 0.2), (0.1, 0.4)) for p in range(3)]
    # subset seeds (the protocol's own) of one pretraining seed are averaged first
    subsets = [row("contrastive", protocol="semi", metric="top1_best@0.01", value=v, seed=s, config_hash="c",
                   extra=json.dumps({"fraction": 0.01})) for s, v in enumerate((0.1, 0.2, 0.3))]
    det = [row(protocol="detection", metric=m, value=v, config_hash=h,
               extra=json.dumps({"variant": var, "theta": 0.5, "scorer": "official"}))
           for m, v, var, h in (("mAP_a", 0.31, "finetune", "d1"), ("mAP_v", 0.32, "finetune", "d1"),
                                ("mAP_a", 0.11, "linear", "d2"), ("mAP_v", 0.12, "linear", "d2"))]
    det_floor = [row("random", protocol="detection", metric="mAP_a", value=0.05, config_hash="f",
                     extra=json.dumps({"variant": "finetune", "theta": 0.5}))]
    append_rows(store, semi + subsets + det + det_floor)
    _, md = render(store, tmp_path, numbers=(2, 4))
    assert mean_sd(cell(md[2], "USDRL (DSTE)", "ours 1 % (synthetic xsub, cpu)")) == "21.0 ± 1.0 (n=3)"
    assert mean_sd(cell(md[2], "USDRL (DSTE)", "ours 10 % (synthetic xsub, cpu)")) == "41.0 ± 1.0 (n=3)"
    assert cell(md[2], "MoCo-v2 (harness), DSTE", "ours 1 % (synthetic xsub, cpu)") == "20.0 (n=1)"
    # one subset seed for USDRL, three for MoCo: the header gives the range per measure
    assert "protocol seeds per pretraining seed in this table: 1 % 1–3, 10 % 1." in md[2]
    head = md_header(md[2])
    assert head.index("ours 10 % (synthetic xsub, cpu)") == head.index("x-sub 10 % (paper)") + 1
    assert head.index("untrained floor 10 % (xsub)") == head.index("ours 10 % (synthetic xsub, cpu)") + 1
    assert cell(md[4], "USDRL (DSTE)", "ours mAP_a (synthetic xsub, finetune, cpu)") == "31.0 (n=1)"
    assert cell(md[4], "USDRL (DSTE)", "ours mAP_v (synthetic xsub, linear, cpu)") == "12.0 (n=1)"
    assert cell(md[4], "USDRL (DSTE)", "untrained floor mAP_a (xsub, finetune)") == "5.0 (n=1)"
    assert cell(md[4], "USDRL (DSTE)", "untrained floor mAP_a (xsub, linear)") == tables.NOT_RUN
    assert cell(md[4], "USDRL (STTR)", "ours mAP_a (synthetic xsub, finetune, cpu)") == tables.NOT_RUN


def test_a_subset_of_a_paper_dataset_is_labelled_and_gets_the_subset_means(tmp_path):
    store = tmp_path / "res"
    label = "the interaction subset of PKU-MMD I"
    extra = {"variant": "linear", "theta": 0.5, "scorer": "official", "dataset_subset": label}
    det = [row(protocol="detection", dataset="pku-mmd", metric=m, value=v, config_hash="d", extra=json.dumps(extra))
           for m, v in (("mAP_a", 0.05), ("mAP_v", 0.3), ("mAP_a_present", 0.1), ("mAP_a_trained", 0.4))]
    append_rows(store, det)
    _, md = render(store, tmp_path, dataset="pku-mmd", numbers=(4,))
    assert f"**Measured dataset: PKU-MMD ({label})**" in md[4]
    assert f"**Measured on part of PKU-MMD: {label}**" in md[4] and "never the whole dataset" in md[4]
    assert cell(md[4], "USDRL (DSTE)", "ours mAP_a trained (PKU-MMD xsub, linear, cpu)") == "40.0 (n=1)"
    assert cell(md[4], "USDRL (DSTE)", "ours mAP_a present (PKU-MMD xsub, linear, cpu)") == "10.0 (n=1)"
    assert "mAP_a present" in md[4] and "classes with a test action" in md[4]
    # a store without the subset means (the synthetic set, every class everywhere) shows no such column
    plain = tmp_path / "plain"
    append_rows(plain, [row(protocol="detection", metric="mAP_a", value=0.3, extra=json.dumps({"variant": "linear",
                                                                                               "theta": 0.5}))])
    _, md = render(plain, tmp_path, numbers=(4,))
    assert "mAP_a present" not in md[4] and "Measured on part" not in md[4]


@pytest.mark.e2e
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
    assert cell(md[1], "3s-USDRL (DSTE)", OURS) == f"{100 * top1:.1f} (n=1) ‡"
    assert cell(md[1], "3s-USDRL (DSTE)", FLOOR) == tables.NOT_APPLICABLE
    assert cell(md[1], "USDRL (DSTE)", OURS) == tables.NOT_RUN  # a fused top1 is not best-of


def test_contrastive_extra_rows_split_by_encoder(tmp_path):
    store = tmp_path / "res"
    append_rows(store, [row("contrastive", value=0.3, encoder="dste", config_hash="c1"),
                        row("contrastive", value=0.2, encoder="sttr", config_hash="c2")])
    _, md = render(store, tmp_path, numbers=(1, 5))
    assert cell(md[1], "MoCo-v2 (harness), DSTE", OURS) == "30.0 (n=1)"
    assert cell(md[1], "MoCo-v2 (harness), STTR", OURS) == "20.0 (n=1)"
    assert "contrastive · sttr" in md_row(md[1], "MoCo-v2 (harness), STTR")
    assert cell(md[5], "1", "ours Recog. (synthetic xsub, cpu)") == "20.0 (n=1)"
    assert cell(md[5], "4", "ours Recog. (synthetic xsub, cpu)") == "30.0 (n=1)"
    assert not md_rows(md[5], "MoCo-v2 (harness), DSTE")  # in Table 5 they are the paper's rows 1 and 4


def test_an_expanded_extra_row_of_table_5_names_its_encoder(tmp_path):
    store = tmp_path / "res"
    append_rows(store, [row("vicreg", value=0.4, encoder="sttr", config_hash="v1")])
    _, md = render(store, tmp_path, numbers=(5,))
    assert cell(md[5], "VICReg (harness), STTR", "Encoder") == "STTR"


def _committed_stores() -> list[Path]:
    """results/ and every store beside it (results/budget-640/ etc.: the budget study's own stores)."""
    root = REPO / "results"
    return [root] + sorted(p.parent for p in root.glob("*/results.csv"))


def test_committed_tables_match_the_committed_store(tmp_path):
    """Every committed table is what `harness tables` writes from its store today, and the folder holds
    exactly the tables it writes: every table with a measured cell (Table 6 included), no placeholder."""
    checked = 0
    for store in _committed_stores():
        for folder in sorted({p.parent for p in (store / "tables").rglob("table*.md")}):
            committed = sorted(folder.glob("table*.md"))
            markers = {tables.read_marker(p) for p in committed}
            assert None not in markers, f"{folder} holds a table without a `harness tables` marker line"
            (pair,) = {(dataset, preset) for _, dataset, preset in markers}
            dataset, preset = pair
            out = tmp_path / store.name / folder.name
            tables.write_tables(store, out, dataset=dataset, preset=preset, skip_unmeasured=True)
            write_cost_table(store, out, dataset=dataset, preset=preset)  # Table 7, once a row records its cost
            command = (f"re-render with `harness tables --results {store.relative_to(REPO)} --dataset {dataset} "
                       f"--preset {preset}`")
            assert [p.name for p in committed] == sorted(p.name for p in out.glob("table*.md")), (
                f"{folder.relative_to(REPO)}: not the tables the harness writes (a placeholder without a measured "
                f"cell, or a measured table missing): {command}")
            for path in committed:
                assert path.read_text(encoding="utf-8") == (out / path.name).read_text(encoding="utf-8"), (
                    f"{path.relative_to(REPO)} is stale: {command}")
                checked += 1
    if not checked:
        pytest.skip("no committed tables in results/ yet")


def test_committed_index_matches_the_committed_stores():
    """results/README.md is the index `harness tables --index` generates from the committed stores and files."""
    from harness.tables import index

    path = REPO / "results" / index.INDEX_NAME
    assert path.is_file(), "results/README.md is missing: generate it with `harness tables --index`"
    assert path.read_text(encoding="utf-8") == index.index_markdown(REPO / "results"), (
        "results/README.md is stale: regenerate it with `harness tables --index`")


def test_committed_figure4_points_match_the_committed_store():
    from harness import figures

    committed = sorted((REPO / "results" / "figures").glob("*/" + figures.FIGURE4_TABLE))
    if not committed:
        pytest.skip("no Figure 4 in results/figures yet")
    store = tables.load_store(REPO / "results")
    for path in committed:
        dataset, preset = path.parent.name.rsplit("-", 1)
        points = figures.alpha_points(store, dataset, preset, figures.default_alpha(preset))
        assert path.read_text(encoding="utf-8") == figures.alpha_markdown(points, dataset, preset), (
            f"{path.relative_to(REPO)} is stale: re-draw with `harness tables --figures --dataset {dataset}`")


@pytest.mark.e2e
def test_cli_writes_all_tables_atomically(tmp_path, capsys):
    store = tmp_path / "res"
    append_rows(store, [row(value=0.5)])
    assert main(["tables", "--results", str(store)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"table 1: .*table1\.md \(1 of \d+ harness cells measured on synthetic/cpu\)", out)
    assert "table 6: not written: no measured cell on synthetic/cpu" in out
    folder = store / "tables" / "synthetic-cpu"  # one folder per dataset/preset
    written = sorted(p.name for p in folder.iterdir())
    assert written == ["table1.md", "table5.md"]  # the tables a linear top1_best row fills; no temporary files
    # a placeholder an earlier render left (its own marker) is deleted; a file the harness did not write is kept
    tables.write_tables(tmp_path / "empty", folder, dataset="synthetic", preset="cpu", tables=(2,))
    (folder / "table4.md").write_text("my notes\n")
    assert main(["tables", "--results", str(store)]) == 0
    assert f"removed {folder / 'table2.md'}: a placeholder without one measured cell" in capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == ["table1.md", "table4.md", "table5.md"]
    assert main(["tables", "--results", str(store), "--preset", "smok"]) == 2
    assert "unknown preset 'smok'. Did you mean 'smoke'?" in capsys.readouterr().err


def test_cells_of_rows_without_a_recorded_budget_are_marked(tmp_path):
    store = tmp_path / "res"
    append_rows(store, [row(value=0.6, steps=0), row(encoder="sttr", value=0.5, config_hash="h2")])
    _, md = render(store, tmp_path, numbers=(1,))
    col = "ours Recog. (synthetic xsub, cpu)"
    assert cell(md[1], "USDRL (DSTE)", col) == f"60.0 (n=1) {tables.OLD}"  # an older configuration, not re-run
    assert cell(md[1], "USDRL (STTR)", col) == "50.0 (n=1)"
    assert f"`{tables.OLD}`" in md[1]  # explained in the legend


def test_floor_rows_show_every_encoder_and_modality_they_were_measured_with(tmp_path):
    store = tmp_path / "res"
    append_rows(store, [row("random", value=0.6, config_hash="r1"),
                        row("random", value=0.4, modality="bone", config_hash="r2"),
                        row("random", value=0.3, encoder="umurl", modality="jbm", config_hash="r3")])
    _, md = render(store, tmp_path, numbers=(1,))
    col = "ours Recog. (synthetic xsub, cpu)"
    assert cell(md[1], "Random init (harness reference), DSTE", col) == "60.0 (n=1)"
    assert cell(md[1], "Random init (harness reference), DSTE (B)", col) == "40.0 (n=1)"
    assert cell(md[1], "Random init (harness reference), UMURL (J+M+B)", col) == "30.0 (n=1)"
    # each expanded row's Modality column names its own stream, not the method's default
    assert cell(md[1], "Random init (harness reference), DSTE (B)", "Modality") == "B"
    assert cell(md[1], "Random init (harness reference), UMURL (J+M+B)", "Modality") == "J+M+B"
    assert cell(md[1], "Random init (harness reference), DSTE", "Modality") == "J"
    # and a method's floor reads the floor row of its own modality
    assert cell(md[1], "USDRL (DSTE), bone stream (harness)", "untrained floor Recog. (xsub)") == "40.0 (n=1)"


def test_an_encoder_may_name_its_own_rows(tmp_path):
    """The raw-joint baseline (``random`` with the parameter-free ``joints`` encoder) reads as what it is."""
    store = tmp_path / "res"
    append_rows(store, [row("random", encoder="joints", value=0.3), row("random", encoder="dste", value=0.2)])
    _, md = render(store, tmp_path, numbers=(1,))
    assert cell(md[1], "Random init (harness reference), raw joints (no encoder)", OURS) == "30.0 (n=1)"
    assert cell(md[1], "Random init (harness reference), DSTE", OURS) == "20.0 (n=1)"


def test_a_new_protocol_brings_its_own_table_column(tmp_path):
    """A protocol declares the measure its rows fill and the tables that show it: nothing under
    harness/tables changes (the example a third-party protocol follows, docs/extending.md)."""
    from harness.contracts import Measure, Protocol
    from harness.registry import PROTOCOLS

    class Linearity(Protocol):
        name = "linearity"
        measures = (Measure("lin_cka", "cka", "CKA", "linear CKA between two views' features", tables=(6,)),)

    store = tmp_path / "res"
    append_rows(store, [row(protocol="linearity", metric="cka", value=0.42)])
    with PROTOCOLS.temporarily("linearity", Linearity):
        assert tables.MEASURES["lin_cka"].protocol == "linearity"
        _, md = render(store, tmp_path, numbers=(6,))
    assert cell(md[6], "USDRL (DSTE) (harness)", "ours CKA (synthetic xsub, cpu)") == "42.0 (n=1)"
    assert "linear CKA between two views' features" in md[6]
    assert "lin_cka" not in tables.MEASURES  # gone with the plugin
