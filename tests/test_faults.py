"""Fault injection: each case of issue 12 replayed as a hostile user or a failing machine would, with
the outcome asserted (results store, run CLI, checkpoints, dataset readers, run folders, file modes).

Cases: 1 a store without its final newline; 2 a read-only or full results folder; 3 torn, short and
overlong rows; 4 tampered checkpoints, bad learning rates, huge size claims; 5 rejected runs leave
nothing; 6 no training budget; 7 file modes; 8 leftovers of killed writes, a corrupt last.pt, NTU
depth/colour columns, float32 overflow, an absurd body count.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import atomic
from harness.cli import main
from harness.engine import checkpoint as ck
from harness.engine.loop import pretrain
from harness.errors import DataError, HarnessError
from harness.registry import METHODS
from harness.results import (COLUMNS, STORE_NAME, ResultRow, StoreError, append_rows, check_store, load_results,
                             read_store, repair_store)

from test_engine import TOY, FloorMethod, ToyMethod, _toy_methods, make_dataset, toy_cfg  # noqa: E402,F401  (the toy methods)
from test_ntu import _lines, random_body  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FLOOR = FloorMethod.name


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("faults-data"))


def row(value=0.5, *, config_hash="h1", date="2026-01-01T00:00:00Z", **kw) -> ResultRow:
    kw = {"encoder": "dste", "split": "xsub", "preset": "cpu", **kw}
    return ResultRow("usdrl", "synthetic", "linear", "top1_best", value, config_hash=config_hash, date=date, **kw)


def run_args(dataset: Path, tmp: Path, method: str = FLOOR, *extra: str) -> list[str]:
    return ["run", "--method", method, "--protocol", "knn", "--dataset", str(dataset), "--preset", "smoke",
            "--workdir", str(tmp / "work"), "--results", str(tmp / "res"), "--no-progress",
            "--set", "data.frames=6", "--set", "train.batch_size=8", "--set", "train.device=cpu",
            "--set", "train.num_threads=1", *extra]


def run_folders(tmp: Path) -> list[Path]:
    runs = tmp / "work" / "runs"
    return sorted(p for p in runs.iterdir() if p.name != ".stale") if runs.is_dir() else []


# --- 1: a store without its final newline; a kill during an append --------------------------------
@pytest.mark.unit
def test_1_append_to_a_store_without_final_newline_starts_a_new_line(tmp_path):
    append_rows(tmp_path, [row(0.5)])
    path = tmp_path / STORE_NAME
    path.write_bytes(path.read_bytes().rstrip(b"\n"))  # a hand edit or a torn write dropped it
    append_rows(tmp_path, [row(0.6, config_hash="h2")])
    read = read_store(tmp_path)
    assert not read.problems and [x.values["value"] for x in read.rows] == ["0.5", "0.6"]
    assert path.read_bytes().endswith(b"\n") and path.read_text().count("\n") == 3
    assert load_results(tmp_path)["value"].tolist() == [0.5, 0.6]


@pytest.mark.e2e
def test_1_glued_rows_are_a_store_problem_not_a_parser_error(tmp_path, capsys):
    """What the old append made of a newline-less store: two rows on one line (33 fields for 17)."""
    append_rows(tmp_path, [row(0.5), row(0.7, seed=1)])
    path = tmp_path / STORE_NAME
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + lines[1].replace("0.5", "0.9") + "\n" + lines[2] + "\n")
    df = load_results(tmp_path)  # no pandas ParserError: the glued line is reported and left out
    assert df["value"].tolist() == [0.7]
    assert [p["line"] for p in df.attrs["store_problems"]] == [2]
    assert "glued" in df.attrs["store_problems"][0]["what"]
    out = tmp_path / "tables"
    assert main(["tables", "--results", str(tmp_path), "--out", str(out), "--table", "1"]) == 0
    err = capsys.readouterr().err
    assert "results.csv line 2 is not read" in err and "glued" in err
    md = (out / "table1.md").read_text()
    assert "**Store problems**" in md and "line 2: not read" in md and "90.0" not in md
    # check lists it (exit 1); --repair moves it aside, never deletes it
    assert main(["results", "check", "--results", str(tmp_path)]) == 1
    assert "line 2:" in capsys.readouterr().out
    glued = path.read_text().splitlines()[1]
    assert main(["results", "check", "--results", str(tmp_path), "--repair"]) == 0
    rejected = (tmp_path / "results.csv.rejected").read_text()
    assert glued in rejected.splitlines() and "results.csv line 2" in rejected
    assert not read_store(tmp_path).problems and load_results(tmp_path)["value"].tolist() == [0.7]
    assert main(["results", "check", "--results", str(tmp_path)]) == 0


KILLED_APPEND = """
import os, sys, time
from harness import atomic
from harness.results import ResultRow, append_rows

def torn(target, data):  # write half of the new store, then wait to be killed
    with atomic.atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data[: len(data) // 2])
            fh.flush()
            os.fsync(fh.fileno())
        print("half written", flush=True)
        time.sleep(60)

atomic.write_bytes = torn
append_rows(sys.argv[1], [ResultRow("usdrl", "synthetic", "knn", "knn1", 0.99, date="2026-02-02T00:00:00Z")])
"""


@pytest.mark.e2e
@pytest.mark.slow
def test_1_a_kill_during_an_append_leaves_the_old_store_and_a_removable_leftover(tmp_path, capsys):
    append_rows(tmp_path, [row(0.5), row(0.6, seed=1)])
    before = (tmp_path / STORE_NAME).read_bytes()
    child = subprocess.Popen([sys.executable, "-c", KILLED_APPEND, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "half written"
        child.send_signal(signal.SIGKILL)  # kill -9 in the middle of the write
        child.wait(timeout=30)
    finally:
        child.kill()
    assert (tmp_path / STORE_NAME).read_bytes() == before  # the old store, whole
    leftovers = list(tmp_path.glob(".results.csv.*.tmp"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0
    os.utime(leftovers[0], (time.time() - 120,) * 2)
    assert main(["results", "check", "--results", str(tmp_path)]) == 1
    assert "leftover temporary file" in capsys.readouterr().out
    append_rows(tmp_path, [row(0.7, seed=2)])  # the next writer (holding the lock) removes it
    assert not list(tmp_path.glob(".results.csv.*.tmp"))
    assert load_results(tmp_path)["value"].tolist() == [0.5, 0.6, 0.7]
    assert check_store(tmp_path).clean


# --- 2: a read-only or full results folder -------------------------------------------------------
def make_unwritable(folder: Path, monkeypatch) -> None:
    """No file can be created in ``folder``: chmod for a normal user; root ignores modes, so there
    creating a file in it fails with EACCES (os.open, which mkstemp uses, and open)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return
    inside = str(folder.resolve())
    real_os_open, real_open = os.open, builtins.open

    def refuse(path) -> None:
        if os.path.abspath(os.fspath(path)).startswith(inside + os.sep):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))

    def os_open(path, flags, *a, **kw):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *a, **kw)

    def open_(file, mode="r", *a, **kw):
        if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+"):
            refuse(file)
        return real_open(file, mode, *a, **kw)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)


@pytest.mark.e2e
def test_2_read_only_results_folder_fails_before_training(dataset, tmp_path, monkeypatch, capsys):
    make_unwritable(tmp_path / "res", monkeypatch)
    try:
        assert main(run_args(dataset, tmp_path, TOY)) == 2
    finally:
        (tmp_path / "res").chmod(0o755)
    err = capsys.readouterr().err
    assert f"results folder {tmp_path / 'res'} cannot be written" in err and "nothing was trained" in err
    assert run_folders(tmp_path) == []  # not one step trained


def _fill_the_disk(monkeypatch) -> None:
    """Every write of results.csv fails as on a full disk (the folder check itself still passes)."""
    for name in ("write_bytes", "write_text"):
        real = getattr(atomic, name)

        def full(target, data, _real=real):
            if Path(target).name == STORE_NAME:
                raise OSError(errno.ENOSPC, "No space left on device", str(target))
            return _real(target, data)

        monkeypatch.setattr(atomic, name, full)


@pytest.mark.e2e
def test_2_full_disk_at_the_end_prints_and_saves_the_rows(dataset, tmp_path, monkeypatch, capsys):
    with monkeypatch.context() as m:
        _fill_the_disk(m)
        assert main(run_args(dataset, tmp_path)) == 2
    captured = capsys.readouterr()
    assert "No space left on device" in captured.err and "2 measured row(s) not recorded" in captured.err
    assert captured.err.count(f"{FLOOR},toy,knn,knn") == 2  # the rows themselves, printed
    side = Path(captured.err.split("saved in ")[1].split(";")[0])
    assert side.is_file() and side.parent.parent == run_folders(tmp_path)[0] / "eval"  # in the run folder
    assert not (tmp_path / "res" / STORE_NAME).exists()
    # once the disk has room: the saved rows go into the store, once
    assert main(["results", "add", str(side), "--results", str(tmp_path / "res")]) == 0
    store = load_results(tmp_path / "res")
    assert sorted(store["metric"]) == ["knn1", "knn20_weighted"] and (store["method"] == FLOOR).all()
    assert main(["results", "add", str(side), "--results", str(tmp_path / "res")]) == 0
    assert "added 0 row(s)" in capsys.readouterr().out and len(load_results(tmp_path / "res")) == 2


@pytest.mark.e2e
def test_2_reproduce_checks_the_folder_first_and_keeps_rows_it_cannot_write(dataset, tmp_path, monkeypatch):
    from harness.reproduce import PlannedRun, Settings, execute

    settings = Settings(preset="smoke", dataset=str(dataset), workdir=str(tmp_path / "work"),
                        results=str(tmp_path / "res"),
                        overrides=["data.frames=6", "train.device=cpu", "train.num_threads=1"])
    plan = [PlannedRun("t", FLOOR, "knn")]
    with monkeypatch.context() as m:
        make_unwritable(tmp_path / "res", m)
        with pytest.raises(HarnessError, match="cannot be written"):
            execute(plan, settings, progress=False, log=lambda s: None)
        (tmp_path / "res").chmod(0o755)
    assert run_folders(tmp_path) == []
    with monkeypatch.context() as m:
        _fill_the_disk(m)
        (out,) = execute(plan, settings, progress=False, log=lambda s: None)
    assert out.status == "failed" and "harness results add" in out.message
    side = Path(out.message.split("saved in ")[1].split(";")[0])
    assert side.is_file() and "knn20_weighted" in side.read_text()


# --- 3: torn, short and overlong rows ------------------------------------------------------------
@pytest.mark.e2e
def test_3_a_cut_last_row_is_listed_and_never_fills_a_cell(tmp_path, capsys):
    append_rows(tmp_path, [row(0.5, config_hash="old")])
    with open(tmp_path / STORE_NAME, "a") as fh:
        fh.write("usdrl,synthetic,linear,top1_best,0.31")  # a newer run's row, cut after its value
    df = load_results(tmp_path)
    assert df["value"].tolist() == [0.5]
    (problem,) = df.attrs["store_problems"]
    assert problem["line"] == 3 and "torn or cut row" in problem["what"]
    out = tmp_path / "tables"
    assert main(["tables", "--results", str(tmp_path), "--out", str(out), "--table", "1"]) == 0
    assert "results.csv line 3 is not read" in capsys.readouterr().err
    md = (out / "table1.md").read_text()
    assert "line 3: not read" in md and "31.0" not in md
    append_rows(tmp_path, [row(0.6, config_hash="new", seed=1)])  # goes on a line of its own
    assert [p.line for p in read_store(tmp_path).problems] == [3] and len(load_results(tmp_path)) == 2


@pytest.mark.unit
@pytest.mark.parametrize("edit, what", [
    (lambda cells: cells + ["x", "y"], "fields where the header has"),  # too many fields
    (lambda cells: [*cells[:4], "0.3x", *cells[5:]], "is not a number"),
    (lambda cells: [*cells[:9], "one", *cells[10:]], "not an integer"),
    (lambda cells: [*cells[:-2], "2026-01-0", cells[-1]], "not an ISO date"),
    (lambda cells: [*cells[:-1], '{"fraction": 0.'], "not valid JSON"),
    (lambda cells: ["", *cells[1:]], "column 'method' is empty"),
])
def test_3_malformed_rows_are_reported_with_their_line(tmp_path, edit, what):
    append_rows(tmp_path, [row(0.5), row(0.6, seed=1)])
    path = tmp_path / STORE_NAME
    lines = path.read_text().splitlines()
    cells = lines[2].split(",")
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(edit(cells))
    path.write_text("\n".join(lines[:2]) + "\n" + buf.getvalue())
    df = load_results(tmp_path)
    assert df["value"].tolist() == [0.5]
    (problem,) = df.attrs["store_problems"]
    assert problem["line"] == 3 and what in problem["what"]


@pytest.mark.unit
def test_3_a_repeated_header_and_a_blank_store(tmp_path):
    append_rows(tmp_path, [row(0.5)])
    path = tmp_path / STORE_NAME
    path.write_text(path.read_text() * 2)  # two stores put one after the other
    assert [(p.line, "the header again" in p.what) for p in read_store(tmp_path).problems] == [(3, True)]
    assert len(load_results(tmp_path)) == 2
    path.write_text("\n\n")
    append_rows(tmp_path, [row(0.6)])
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS) and load_results(tmp_path)["value"].tolist() == [0.6]


@pytest.mark.e2e
def test_3_an_unknown_header_refuses_writes_and_repairs(tmp_path, dataset, capsys):
    path = tmp_path / "res" / STORE_NAME
    path.parent.mkdir()
    path.write_text("name,score\nfoo,1\n")
    assert load_results(tmp_path / "res").empty
    with pytest.raises(StoreError, match="line 1 is not a results header"):
        append_rows(tmp_path / "res", [row()])
    with pytest.raises(StoreError, match="fix line 1 by hand"):
        repair_store(tmp_path / "res")
    assert path.read_text() == "name,score\nfoo,1\n"  # nothing lost
    assert main(["results", "check", "--results", str(tmp_path / "res")]) == 1
    assert "header: UNKNOWN" in capsys.readouterr().out
    assert main(run_args(dataset, tmp_path)) == 2  # refused before the run, not after it
    assert "not a results header" in capsys.readouterr().err and run_folders(tmp_path) == []


@pytest.mark.unit
def test_3_the_old_column_set_is_still_read_and_upgraded(tmp_path):
    old = [c for c in COLUMNS if c not in ("pretrain_seed", "steps")]
    values = {**row(0.5).as_dict(), "method": "mamp", "encoder": "dste"}
    (tmp_path / STORE_NAME).write_text(",".join(old) + "\n" + ",".join(str(values[c]) for c in old) + "\n")
    df = load_results(tmp_path)
    assert df["pretrain_seed"].tolist() == [0] and df["steps"].tolist() == [0]
    assert df["encoder"].tolist() == ["mamp-vit"]  # MAMP trains its own backbone
    append_rows(tmp_path, [row(0.6)])
    assert (tmp_path / STORE_NAME).read_text().splitlines()[0] == ",".join(COLUMNS)
    assert load_results(tmp_path)["value"].tolist() == [0.5, 0.6] and not read_store(tmp_path).problems


# --- 4: tampered checkpoints, bad learning rates, huge size claims ---------------------------------
class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = Path("/tmp") / f"harness-test-faults-payload-{os.getpid()}"


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data[: len(data) // 2])


def _drop_key(path: Path) -> None:
    obj = torch.load(path, weights_only=True)
    del obj["data_info"]
    path.unlink()
    torch.save(obj, path)


def _payload(path: Path) -> None:
    path.unlink()
    with open(path, "wb") as fh:
        pickle.dump({"format": ck.BACKBONE_FORMAT, "version": ck.VERSION, "x": _Payload()}, fh, protocol=2)


@pytest.mark.e2e
@pytest.mark.parametrize("tamper, message", [(_truncate, "cannot read checkpoint"),
                                             (_drop_key, "a damaged harness-backbone file: data_info (missing)"),
                                             (_payload, "cannot read checkpoint")],
                         ids=["truncated", "missing-key", "pickle-payload"])
def test_4_a_tampered_backbone_is_a_message(dataset, tmp_path, capsys, tamper, message):
    assert main(run_args(dataset, tmp_path)) == 0
    (run,) = run_folders(tmp_path)
    capsys.readouterr()
    tamper(run / "backbone.pt")
    MARKER.unlink(missing_ok=True)
    assert main(run_args(dataset, tmp_path)) == 2  # the finished run is reused: its export is read
    err = capsys.readouterr().err
    assert f"{run / 'backbone.pt'}: {message}" in err and "Traceback" not in err
    with pytest.raises(HarnessError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ck.load_backbone(run)
    assert not MARKER.exists()  # the payload never ran


@pytest.mark.e2e
@pytest.mark.parametrize("lr", ["-1", "nan", "0", "inf"])
def test_4_a_bad_learning_rate_is_a_message(dataset, tmp_path, capsys, lr):
    assert main(run_args(dataset, tmp_path, TOY, "--set", f"train.lr={lr}")) == 2
    assert "config key 'train.lr' must be a finite number > 0" in capsys.readouterr().err
    assert not (tmp_path / "work" / "runs").exists()


@pytest.mark.unit
def test_4_an_ntu_file_claiming_a_trillion_frames(tmp_path):
    from harness.data.readers.ntu import ntu_rgbd as ntu

    lines = _lines([[random_body(np.random.default_rng(0))]])
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_bytes("\r\n".join(["1000000000000", *lines[1:]]).encode("ascii"))
    with pytest.raises(DataError, match="of the 1000000000000 that line 1 claims") as err:  # not a MemoryError
        ntu.read_skeleton(path)
    assert err.value.path == str(path) and err.value.line is not None


def _npy_claiming(path: Path, shape: tuple[int, ...], dtype: str = "<f4") -> Path:
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": dtype, "fortran_order": False, "shape": shape})
        fh.write(b"\0" * 4096)
    return path


@pytest.mark.unit
def test_4_a_generic_npy_whose_header_claims_60_gb(tmp_path):
    from harness.data.readers.generic import SequenceFile, prepare_generic, read_sequence

    raw = tmp_path / "raw"
    (raw / "sequences").mkdir(parents=True)
    huge = _npy_claiming(raw / "sequences" / "a.npy", (200_000_000, 25, 3))  # 55.9 GiB of float32
    (raw / "labels.csv").write_text("name,label\na,0\n")
    with pytest.raises(DataError, match=r"header claims an array of shape \(200000000, 25, 3\) of float32 "
                                        r"\(55.9 GiB\), but the file holds only 4.0 KiB") as err:
        read_sequence(SequenceFile("a", huge), 25)
    assert err.value.path == str(huge)
    with pytest.raises(DataError, match="header claims"):
        prepare_generic(raw, tmp_path / "out", topology="ntu25")
    assert not (tmp_path / "out").exists()


@pytest.mark.unit
def test_4_agcn_and_ctrgcn_arrays_whose_headers_lie(tmp_path):
    import zipfile

    from harness.data.readers.ntu.agcn_readers import NpzStream, _load_npy

    with pytest.raises(DataError, match="header claims"):
        _load_npy(_npy_claiming(tmp_path / "train_num_frame.npy", (10**11,), "<i8"), mmap=False)
    member = _npy_claiming(tmp_path / "x.npy", (10**9, 300, 150))
    with zipfile.ZipFile(tmp_path / "ntu.npz", "w") as z:
        z.write(member, "x_train.npy")
    with pytest.raises(DataError, match="its member x_train.npy holds only"):
        NpzStream(tmp_path / "ntu.npz", "x_train")


# --- 5: rejected configurations leave nothing on disk ----------------------------------------------
class _Unbuildable(ToyMethod):
    name = "_faults_unbuildable"

    def __init__(self, cfg, info):
        raise HarnessError("this method cannot be built on this data")


@pytest.fixture(autouse=True, scope="module")
def _unbuildable_method():
    with METHODS.temporarily(_Unbuildable.name, _Unbuildable):
        yield


@pytest.mark.e2e
@pytest.mark.parametrize("command", ["run", "pretrain"])
@pytest.mark.parametrize("method, extra, message", [
    ("_no_such_method", [], "unknown method"),
    (TOY, ["--set", "method.options.bogus=1"], "bogus"),
    (TOY, ["--set", "train.lr=-1"], "train.lr"),
    (_Unbuildable.name, [], "cannot be built"),
], ids=["unknown-method", "bad-option", "bad-lr", "fails-to-build"])
def test_5_rejected_runs_leave_no_run_folder(dataset, tmp_path, capsys, command, method, extra, message):
    args = run_args(dataset, tmp_path, method, *extra)
    if command == "pretrain":
        args = ["pretrain", *[a for a in args[1:] if a not in ("--protocol", "knn", "--results", str(tmp_path / "res"))]]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert run_folders(tmp_path) == []


@pytest.mark.e2e
def test_5_a_failure_inside_the_run_lock_removes_the_folder_it_made(dataset, tmp_path, monkeypatch):
    import harness.engine.trainer as trainer

    def no_optimizer(*a, **kw):
        raise HarnessError("optimizer refused")

    monkeypatch.setattr(trainer, "build_optimizer", no_optimizer)
    cfg = toy_cfg(dataset, tmp_path / "work")
    with pytest.raises(HarnessError, match="optimizer refused"):
        pretrain(cfg, progress=False)
    assert not (tmp_path / "work" / "runs").exists()  # not the run folder, its .lock or config.yaml
    monkeypatch.undo()
    info = pretrain(cfg, progress=False)  # the same configuration trains normally afterwards
    assert info.status == "finished"


@pytest.mark.e2e
def test_5_a_run_that_started_keeps_its_folder(dataset, tmp_path):
    cfg = toy_cfg(dataset, tmp_path / "work")

    def stop(epoch, step, terms):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pretrain(cfg, progress=False, on_step_end=stop)
    (run,) = run_folders(tmp_path)
    assert json.loads((run / "run.json").read_text())["status"] == "failed"  # the record of what happened


# --- 6: no training budget -----------------------------------------------------------------------
@pytest.mark.e2e
@pytest.mark.parametrize("preset, sets", [("paper", ["train.epochs=0"]),
                                          ("smoke", ["train.steps=0", "train.epochs=0"]),
                                          ("cpu", ["train.steps=0", "train.epochs=0"])])
def test_6_a_method_that_pretrains_needs_a_budget(dataset, tmp_path, capsys, preset, sets):
    args = run_args(dataset, tmp_path, TOY, *[x for s in sets for x in ("--set", s)])
    args[args.index("--preset") + 1] = preset
    assert main(args) == 2
    assert "no training at all" in capsys.readouterr().err and run_folders(tmp_path) == []


@pytest.mark.e2e
def test_6_a_method_that_does_not_pretrain_needs_none(dataset, tmp_path, capsys):
    assert main(run_args(dataset, tmp_path, FLOOR, "--set", "train.steps=0", "--set", "train.epochs=0")) == 0


# --- 7: file modes -------------------------------------------------------------------------------
@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.unit
def test_7_new_files_follow_the_umask_and_replaced_ones_keep_their_mode(tmp_path, umask):
    umask(0o002)
    atomic.write_text(tmp_path / "a.txt", "x")
    assert mode(tmp_path / "a.txt") == 0o664
    append_rows(tmp_path / "res", [row()])
    assert mode(tmp_path / "res" / STORE_NAME) == 0o664
    (tmp_path / "res" / STORE_NAME).chmod(0o644)
    append_rows(tmp_path / "res", [row(0.6)])  # an append keeps the store's mode
    assert mode(tmp_path / "res" / STORE_NAME) == 0o644
    umask(0o077)
    atomic.write_text(tmp_path / "b.txt", "x")
    assert mode(tmp_path / "b.txt") == 0o600
    umask(0o022)
    with atomic.atomic_dir(tmp_path / "folder") as d:
        (d / "f").write_text("x")
    assert mode(tmp_path / "folder") == 0o755
    ck.save({"a": torch.zeros(1)}, tmp_path / "c.pt")
    assert mode(tmp_path / "c.pt") == 0o644


# --- 8: smaller ones -------------------------------------------------------------------------------
@pytest.mark.unit
def test_8_leftover_temporary_files_of_killed_writes_are_removed(tmp_path):
    target = tmp_path / "f.txt"
    stale, fresh = tmp_path / ".f.txt.abcd1234.tmp", tmp_path / ".f.txt.efgh5678.tmp"
    other = tmp_path / ".f.txt.old.abcd1234.tmp"  # another file's (f.txt.old), never touched
    for p in (stale, fresh, other):
        p.write_text("torn")
    old = time.time() - atomic.STALE_TMP_S - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    atomic.write_text(target, "new")
    assert not stale.exists() and fresh.exists() and other.exists() and target.read_text() == "new"


@pytest.mark.e2e
def test_8_a_corrupt_last_pt_names_an_intact_numbered_checkpoint(dataset, tmp_path):
    cfg = toy_cfg(dataset, tmp_path)
    info = pretrain(cfg, progress=False)
    last = info.run_dir / "checkpoints" / "last.pt"
    _truncate(last)  # (last.pt is a hard link of epoch_0003.pt: replaced, not cut in place)
    with pytest.raises(HarnessError) as err:
        pretrain(cfg, progress=False)
    intact = info.run_dir / "checkpoints" / "epoch_0003.pt"
    assert f"{last}: cannot read checkpoint" in str(err.value) and f"--resume {intact}" in str(err.value)
    assert pretrain(cfg, progress=False, resume=str(intact)).status == "finished"


@pytest.mark.unit
def test_8_ntu_depth_and_colour_columns_must_be_numbers(tmp_path):
    from harness.data.readers.ntu import ntu_rgbd as ntu

    lines = _lines([[random_body(np.random.default_rng(0))]])
    path = tmp_path / "S001C001P001R001A001.skeleton"
    lines[6] = lines[6].replace(" 514.1 ", " x514 ")  # colorY
    path.write_bytes("\r\n".join(lines).encode("ascii"))
    with pytest.raises(DataError, match="colorY 'x514' is not a number") as err:
        ntu.read_skeleton(path)
    assert err.value.line == 7


@pytest.mark.unit
def test_8_values_beyond_float32_name_the_file(tmp_path):
    from harness.data.readers.ntu import ntu_rgbd as ntu
    from harness.data.readers.generic import SequenceFile, read_sequence

    lines = _lines([[random_body(np.random.default_rng(0))]])
    lines[7] = "1e300" + lines[7][lines[7].index(" "):]
    skel = tmp_path / "S001C001P001R001A001.skeleton"
    skel.write_bytes("\r\n".join(lines).encode("ascii"))
    with pytest.raises(DataError, match="x coordinate: value 1e\\+300 is beyond float32's range") as err:
        ntu.read_skeleton(skel)
    assert err.value.path == str(skel) and err.value.line == 8
    arr = np.zeros((4, 25, 3))
    arr[2, 7, 1] = -1e300
    np.save(tmp_path / "b.npy", arr)
    with pytest.raises(DataError, match=r"frame 2 \(0-based\), person 0, joint 7: value -1e\+300") as err:
        read_sequence(SequenceFile("b", tmp_path / "b.npy"), 25)
    assert err.value.path == str(tmp_path / "b.npy")
    text = tmp_path / "c.txt"
    text.write_text("\n".join(" ".join(["0.5"] * 75) for _ in range(3)).replace("0.5", "3e39", 1) + "\n")
    with pytest.raises(DataError, match="beyond float32") as err:
        read_sequence(SequenceFile("c", text), 25)
    assert err.value.path == str(text) and err.value.line == 1


@pytest.mark.unit
def test_8_an_absurd_body_count_says_what_is_wrong(tmp_path):
    from harness.data.readers.ntu import ntu_rgbd as ntu

    lines = _lines([[random_body(np.random.default_rng(0))], [random_body(np.random.default_rng(1))]])
    lines[1] = "1000"
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_bytes("\r\n".join(lines).encode("ascii"))
    with pytest.raises(DataError, match="frame 1 claims 1000 bodies.*the body count is corrupt") as err:
        ntu.read_skeleton(path)
    assert err.value.line == 2
