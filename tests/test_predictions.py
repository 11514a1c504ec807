"""Per-sample predictions kept beside the results store (harness/results/predictions.py) and the
per-class results rendered from them (harness/tables/per_class.py).

Round trip; verification of torn, tampered, renamed and foreign files; a failed predictions write
that keeps the rows; the semi and detection protocols' predictions recompute their rows exactly; and
``harness run`` on the synthetic smoke preset records rows whose predictions recompute the rows'
accuracies, which ``harness tables`` turns into per_class.md and confusion matrices.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.evaluation import pku_scorer as S
from harness.registry import PROTOCOLS
from harness.results import (Predictions, PredictionsError, ResultRow, load_predictions, load_results,
                             read_predictions, record_rows)
from harness.results.predictions import FOLDER
from harness.results.prediction_files import predictions_name
from harness.tables.per_class import NO_PREDICTIONS, write_per_class

from protocol_helpers import MeanPoseBackbone, context, toy_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


def _rows(pred: Predictions, **kw) -> list[ResultRow]:
    base = {"encoder": "dste", "split": "xsub", "preset": "smoke", "config_hash": "h1", "pretrain_seed": 0, "seed": 0,
            **kw}
    return [ResultRow("usdrl", "synthetic", "linear", "top1", pred.accuracy(), predictions=pred, **base),
            ResultRow("usdrl", "synthetic", "linear", "top5", pred.topk_accuracy(5), predictions=pred, **base)]


def _classification(seed: int = 0, n: int = 60, classes: int = 6) -> Predictions:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    topk = np.stack([rng.permutation(classes)[:5] for _ in range(n)])
    topk[: n // 2, 0] = labels[: n // 2]  # half right at top-1
    return Predictions.classification(np.arange(100, 100 + n), labels, topk=topk, group="final",
                                      num_classes=classes, class_names=[f"c{i}" for i in range(classes)])


@pytest.mark.unit
def test_round_trip_keys_the_file_by_the_row_and_verifies_it(tmp_path, capsys):
    pred = _classification()
    rows = _rows(pred)
    record_rows(tmp_path, rows)
    names = {predictions_name(r) for r in rows}
    assert len(names) == 1 and next(iter(names)).startswith(f"{FOLDER}/")  # the two rows share one file
    assert "predictions" not in rows[0].as_dict() and "predictions" in json.loads(rows[0].extra)
    store = load_results(tmp_path)
    assert list(store["metric"]) == ["top1", "top5"]
    for _, row in store.iterrows():
        got = load_predictions(tmp_path, row)
        for name in ("index", "label", "pred", "topk"):
            np.testing.assert_array_equal(got[name], pred[name])
        assert got["label"].dtype == np.int16 and got["index"].dtype == np.int32
        assert got.class_names == [f"c{i}" for i in range(6)] and got.header["identity"]["config_hash"] == "h1"
    assert load_predictions(tmp_path, store.iloc[0]).accuracy() == store.iloc[0]["value"]
    assert load_predictions(tmp_path, store.iloc[1]).topk_accuracy(5) == store.iloc[1]["value"]
    # the same measurement recorded again names the same file; another seed's predictions get their own
    again = _rows(pred)
    record_rows(tmp_path, again)
    assert predictions_name(again[0]) in names
    other = _rows(_classification(seed=1), seed=1)
    record_rows(tmp_path, other)
    assert predictions_name(other[0]) not in names
    assert len(list((tmp_path / FOLDER).glob("*.npz"))) == 2
    assert not capsys.readouterr().err


def _rewrite(path: Path, change) -> None:
    """Rewrite an npz with ``change(arrays)`` applied (the header is kept as it is)."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    path.write_bytes(buf.getvalue())


@pytest.mark.unit
def test_verification_catches_torn_tampered_renamed_and_foreign_files(tmp_path):
    rows = _rows(_classification())
    record_rows(tmp_path, rows)
    store = load_results(tmp_path)
    row = store.iloc[0]
    path = tmp_path / predictions_name(row)
    good = path.read_bytes()

    def fails(what: str, target=row) -> None:
        with pytest.raises(PredictionsError) as err:
            load_predictions(tmp_path, target)
        assert str(path) in str(err.value) and what in str(err.value), str(err.value)
        path.write_bytes(good)

    path.write_bytes(good[: len(good) // 2])
    fails("torn or not a predictions file")
    _rewrite(path, lambda a: a["label"].__setitem__(0, (a["label"][0] + 1) % 6))  # one label changed
    fails("does not match its checksum")
    _rewrite(path, lambda a: a.pop("topk"))
    fails("where the header lists")

    def edit_header(a):
        h = json.loads(a["header"].tobytes())
        h["identity"]["seed"] = 7
        a["header"] = np.frombuffer(json.dumps(h).encode(), dtype=np.uint8)
    _rewrite(path, edit_header)
    fails("edited or renamed")
    fails("made for another row", _with(row, seed=3))
    fails("does not back metric", _with(row, metric="top1_best"))
    fails("records top1", _with(row, value=0.99))
    copy = path.with_name("0" * 24 + ".npz")
    copy.write_bytes(good)
    with pytest.raises(PredictionsError, match="edited or renamed"):
        read_predictions(copy)
    path.unlink()
    with pytest.raises(PredictionsError, match="missing"):
        load_predictions(tmp_path, row)
    no_pred = ResultRow("usdrl", "synthetic", "linear", "top1", 0.5)
    with pytest.raises(PredictionsError, match="no per-sample predictions recorded"):
        load_predictions(tmp_path, no_pred)
    assert zipfile.is_zipfile(io.BytesIO(good))


def _with(row, **changes):
    out = row.copy()
    for k, v in changes.items():
        out[k] = v
    return out


@pytest.mark.unit
def test_a_failed_predictions_write_keeps_the_rows(tmp_path, capsys):
    (tmp_path / FOLDER).write_text("a file where the folder should be")
    rows = _rows(_classification())
    record_rows(tmp_path, rows)
    err = capsys.readouterr().err
    assert "per-sample predictions of 2 row(s) (top1, top5) were not written" in err
    store = load_results(tmp_path)
    assert len(store) == 2 and not any("predictions" in e for e in store["extra"])


@pytest.mark.unit
def test_semi_predictions_recompute_final_and_best_of(tmp_path):
    ds = toy_dataset(tmp_path / "ds")
    ctx = context(ds, tmp_path, lambda: MeanPoseBackbone(identity=True), protocol="semi",
                  overrides=["protocol.options.fractions=[0.5]", "protocol.options.epochs=3",
                             "protocol.options.subset_seeds=[0]"])
    rows = PROTOCOLS.get("semi")(ctx.cfg).run(ctx)
    record_rows(tmp_path / "res", rows)
    store = load_results(tmp_path / "res")
    assert len(store) == 4
    for _, row in store.iterrows():
        p = load_predictions(tmp_path / "res", row)
        got = p.topk_accuracy(5) if row["metric"].startswith("top5") else p.accuracy()
        assert got == row["value"], row["metric"]
        np.testing.assert_array_equal(p["index"], ds.indices("xsub", "test"))
        assert p.group == ("best@0.5" if "best" in row["metric"] else "final@0.5")


@pytest.mark.unit
def test_detection_predictions_recompute_the_official_scores_and_per_class_ap(tmp_path):
    from test_detection_protocol import FAST, PoseBackbone, make_ctx, untrimmed_dataset

    ds = untrimmed_dataset(tmp_path / "toy")
    ctx = make_ctx(ds, tmp_path / "run", lambda: PoseBackbone(), {**FAST, "epochs": 2})
    rows = PROTOCOLS.get("detection")(ctx.cfg).run(ctx)
    for r in rows:
        r.split, r.config_hash = "xsub", "hd"
    res = tmp_path / "res"
    record_rows(res, rows)
    store = load_results(res)
    by = {m: r for m, r in zip(store["metric"], store.to_dict("records"))}
    p = load_predictions(res, by["mAP_a"])
    assert p.kind == "intervals" and len(p["index"]) == 5 and p["frame_offsets"][-1] == int(ds.lengths[p["index"]].sum())
    props, gts = p.detections()
    scores = S.evaluate_all(props, gts, p.meta["theta"], p.num_classes, sweep=[])
    for key in ("mAP_a", "mAP_v", "mAP_a_voc", "F1", "AP", "2DAP"):
        assert scores[key] == by[key]["value"], key
    assert load_predictions(res, by["mAP_v"]).path == p.path
    assert sum(S.map_action(props, gts, 0.5, p.num_classes)[1]) / p.num_classes == by["mAP_a"]["value"]
    rep = write_per_class(res, tmp_path / "tables", dataset="toy-untrimmed", preset="smoke")
    assert [(s.protocol, s.metric, s.kind) for s in rep.sections] == [("detection", "mAP_a", "intervals")]
    col = rep.sections[0].columns[0]
    assert col.overall == pytest.approx(by["mAP_a"]["value"]) and rep.figures == []
    text = rep.path.read_text()
    assert "per-class AP (official, θ = 0.5)" in text and "0 c0" in text


@pytest.mark.e2e
@pytest.mark.slow
def test_harness_run_records_predictions_that_recompute_the_rows(tmp_path, capsys):
    common = ["run", "--method", "random", "--dataset", "synthetic", "--preset", "smoke", "--workdir",
              str(tmp_path / "work"), "--results", str(tmp_path / "res"), "--no-progress", "--json",
              "--set", "train.num_threads=1"]
    for protocol in ("knn", "linear"):
        assert main([*common, "--protocol", protocol]) == 0
    capsys.readouterr()
    res = tmp_path / "res"
    store = load_results(res)
    assert len(store) == 8 and all(predictions_name(r) for _, r in store.iterrows())
    for _, row in store.iterrows():
        p = load_predictions(res, row)
        assert (res / predictions_name(row)).is_file() and p.meta["dataset_kind"] == "synthetic"
        got = p.topk_accuracy(5) if row["metric"].startswith("top5") else p.accuracy()
        # kNN averages in float32 on the device: equal to the row to float32 precision; the probes exactly
        assert got == (pytest.approx(row["value"], abs=1e-6) if row["protocol"] == "knn" else row["value"])
    assert sum(f.stat().st_size for f in (res / FOLDER).iterdir()) < 64 * 1024
    out = tmp_path / "tables"
    assert main(["tables", "--results", str(res), "--dataset", "synthetic", "--preset", "smoke", "--out", str(out),
                 "--table", "3"]) == 0
    printed = capsys.readouterr().out
    assert "per-class: " + str(out / "per_class.md") in printed
    text = (out / "per_class.md").read_text()
    for section in ("## knn `knn1`: per-class accuracy", "## linear `top1_best`: per-class accuracy",
                    "## linear `top1_whitened`"):
        assert section in text
    assert "0 wave_right" in text and "random (dste) (n=1)" in text
    for name in ("confusion-knn-knn1.png", "confusion-linear-top1_best.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({name})" in text
    knn1 = store[store["metric"] == "knn1"]["value"].iloc[0]
    assert f"({100 * knn1:.1f})" in text  # the recorded value beside the recomputed one
    # a tampered file is listed, never read
    path = res / predictions_name(store[store["metric"] == "knn1"].iloc[0])
    path.write_bytes(path.read_bytes()[:100])
    assert main(["tables", "--results", str(res), "--dataset", "synthetic", "--preset", "smoke", "--out", str(out),
                 "--table", "3"]) == 0
    captured = capsys.readouterr()
    assert "torn or not a predictions file" in captured.err and str(path) in captured.err
    text = (out / "per_class.md").read_text()
    assert "## knn" not in text and "## Predictions problems" in text


@pytest.mark.e2e
def test_tables_say_when_the_rows_recorded_no_predictions(tmp_path, capsys):
    from harness.results import append_rows

    append_rows(tmp_path, [ResultRow("usdrl", "synthetic", "linear", "top1_best", 0.5, encoder="dste", split="xsub",
                                     preset="cpu")])
    assert main(["tables", "--results", str(tmp_path), "--out", str(tmp_path / "t"), "--table", "1"]) == 0
    assert f"per-class: skipped: {NO_PREDICTIONS}" in capsys.readouterr().out
    assert not (tmp_path / "t" / "per_class.md").exists()
