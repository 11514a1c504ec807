import pytest

from harness import atomic
from harness.results import ResultRow, append_rows, load_results


def test_atomic_write_keeps_old_content_on_failure(tmp_path):
    target = tmp_path / "f.txt"
    atomic.write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_results_append_and_load(tmp_path):
    append_rows(tmp_path, [ResultRow("usdrl", "synthetic", "knn", "knn1", 0.5)])
    append_rows(tmp_path, [ResultRow("usdrl", "synthetic", "linear", "top1", 0.7, seed=1)])
    df = load_results(tmp_path)
    assert df["metric"].tolist() == ["knn1", "top1"] and df["value"].tolist() == [0.5, 0.7]
    assert (tmp_path / "results.csv").read_text().count("method,") == 1
