import pytest

from harness import atomic
from harness.results import ResultRow, append_rows, load_results

pytestmark = pytest.mark.unit


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


def _append_many(args):
    store, worker = args
    for i in range(20):
        append_rows(store, [ResultRow("m", "d", "p", f"w{worker}", float(i))])


@pytest.mark.slow
def test_concurrent_appends_lose_no_rows(tmp_path):
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(3) as pool:
        pool.map(_append_many, [(str(tmp_path), w) for w in range(3)])
    df = load_results(tmp_path)
    assert len(df) == 60 and sorted(df["metric"].value_counts().tolist()) == [20, 20, 20]


def test_append_text_starts_a_line_of_its_own(tmp_path):
    target = tmp_path / "log.txt"
    target.write_text("a\nb")  # no final newline
    atomic.append_text(target, "c\n")
    assert target.read_text() == "a\nb\nc\n"
    atomic.append_text(target, "d\n")
    assert target.read_text() == "a\nb\nc\nd\n"


def test_replacing_a_folder_keeps_its_mode(tmp_path):
    target = tmp_path / "prepared"
    with atomic.atomic_dir(target) as d:
        (d / "x").write_text("1")
    target.chmod(0o750)
    with atomic.atomic_dir(target, overwrite=True) as d:
        (d / "x").write_text("2")
    assert (target.stat().st_mode & 0o777) == 0o750 and (target / "x").read_text() == "2"


def test_leftover_temporaries_are_only_those_of_the_name(tmp_path):
    names = [".f.txt.abcd1234.tmp", ".f.txt.abcd123.tmp", ".g.txt.abcd1234.tmp", "f.txt.abcd1234.tmp"]
    for n in names:
        (tmp_path / n).write_text("x")
    assert [p.name for p in atomic.leftover_temporaries(tmp_path / "f.txt", older_than=None)] == [names[0]]
