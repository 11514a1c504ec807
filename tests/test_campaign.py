"""harness reproduce as jobs (docs/campaigns.md): the plan grouped into jobs, the SLURM array it
would submit, the jobs' side files under many writers, and smoke campaigns on submitit's local and
debug executors (rows equal to the in-process run's, a preempted and a killed job resumed, four
jobs finishing together, DDP in a two-task job), with ``--status`` after each.

Everything trains for real at the smoke preset on the built-in synthetic data, in temporary
folders; nothing is mocked but the cluster (the SLURM test renders the sbatch file only).
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import reproduce as R
from harness.cli import main
from harness.floors import floor_method
from harness.reproduce.executors import ExecutorOptions, sbatch_script, slurm_parameters, timeout_minutes
from harness.reproduce.jobs import campaign_dir, group_jobs, job_state
from harness.results import ResultRow, load_results, read_store
from harness.results.pending import fold_pending, load_with_pending, pending_files, write_pending

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[1]
SETS = ["train.steps=2", "train.batch_size=16", "encoder.options.layers=1", "data.max_train_samples=32",
        "train.num_threads=1"]
FAST = ["--preset", "smoke", "--dataset", "synthetic", "--seeds", "0", "--no-progress",
        *[a for s in SETS for a in ("--set", s)]]
TWO_JOBS = ["reproduce", "--table", "3", "--methods", "vicreg", "--pretrain-seeds", "0", *FAST]  # vicreg + its floor
VOLATILE = ("code_version", "hardware", "date")  # and extra.cost: timings


def dirs(root: Path) -> list[str]:
    return ["--workdir", str(root / "work"), "--results", str(root / "res")]


def comparable(store: Path) -> list[dict]:
    rows = []
    for r in csv.DictReader(io.StringIO((store / "results.csv").read_text())):
        extra = json.loads(r["extra"]) if r["extra"] else {}
        extra.pop("cost", None)
        rows.append({**{k: v for k, v in r.items() if k not in VOLATILE}, "extra": extra})
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def status(args: list[str], capsys) -> dict[str, str]:
    """``--status``: the state column of every planned run, by target."""
    capsys.readouterr()
    assert main([*args, "--status"]) == 0
    out = capsys.readouterr().out
    states = {}
    for line in out.splitlines():
        cells = line.split()
        if cells and cells[0].isdigit():
            for state in ("done", "running", "queued", "failed", "to run", "not installed"):
                if f"  {state}  " in line or line.rstrip().endswith(f"  {state}"):
                    states[cells[0]] = state
                    break
    return states | {"_out": out}


# --- the plan as jobs -------------------------------------------------------------------------------
@pytest.mark.unit
def test_the_plan_is_grouped_by_pretraining_floors_are_jobs_fused_items_are_not():
    settings = R.Settings(preset="smoke", workdir="w", results="r")
    items = R.plan(table=1, methods=["usdrl"], pretrain_seeds=(0, 1))
    grouping = group_jobs(items, settings)
    runs = [i for i in items if isinstance(i, R.PlannedRun)]
    assert sorted(r.target for j in grouping.jobs for r in j.items) == sorted(r.target for r in runs)
    for job in grouping.jobs:  # one pretraining per job, its protocol runs with it
        assert {settings.config(r).pretrain_hash for r in job.items} == {job.pretrain_hash}
        assert job.key == f"{job.method}-{job.pretrain_hash}" and {r.pretrain_seed for r in job.items} == {
            job.pretrain_seed}
    hashes = {settings.config(r).pretrain_hash for r in runs}
    assert len(grouping.jobs) == len(hashes) < len(runs)  # linear and features of one backbone: one job
    floors = [j for j in grouping.jobs if j.method == floor_method()]
    assert floors and all(not j.pretrains for j in floors) and all(j.pretrains for j in grouping.jobs
                                                                   if j not in floors)
    assert [f.target for f in grouping.fused] == [f"Table 1: 3s-USDRL (DSTE) [pretrain seed {s}]" for s in (0, 1)]
    assert not grouping.missing
    ghost = group_jobs([R.PlannedRun("ghost", "no_such_method", "knn")], settings)
    assert [m.method for m in ghost.missing] == ["no_such_method"] and not ghost.jobs


@pytest.mark.unit
def test_slurm_array_script_for_a_plan_without_a_cluster(tmp_path, capsys):
    assert [timeout_minutes(t) for t in ("90", "30:30", "2:00:00", "1-12", "1-00:00:01")] == [90, 31, 120, 2160, 1441]
    opts = ExecutorOptions(kind="slurm", jobs=8, slurm_partition="gpu", slurm_time="12:00:00", gpus_per_job=4,
                           cpus_per_job=32, slurm_options={"account": "proj", "qos": "high", "mail-user": "a@b.c"})
    text = sbatch_script(tmp_path / "submitit" / "%j", slurm_parameters(opts, name="harness-table5"), 42)
    flags = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in text.splitlines() if "=" in line
             and line.startswith("#SBATCH")}
    assert flags["#SBATCH --array"] == "0-41%8"  # 42 jobs, 8 at once
    assert (flags["#SBATCH --ntasks-per-node"], flags["#SBATCH --gpus-per-node"]) == ("4", "4")  # a DDP rank per GPU
    assert flags["#SBATCH --cpus-per-task"] == "8" and flags["#SBATCH --time"] == "720"
    assert (flags["#SBATCH --partition"], flags["#SBATCH --account"], flags["#SBATCH --qos"]) == ("gpu", "proj", "high")
    assert flags["#SBATCH --mail-user"] == "a@b.c" and flags["#SBATCH --signal"] == "USR2@120"  # time to requeue
    assert "-m submitit.core._submit" in text and "srun" in text
    floors = dict(line.split("=", 1) for line in sbatch_script(
        tmp_path, slurm_parameters(opts, name="f", pretrains=False), 3).splitlines() if line.startswith("#SBATCH --") and "=" in line)
    assert (floors["#SBATCH --ntasks-per-node"], floors["#SBATCH --gpus-per-node"]) == ("1", "1")
    # the CLI writes the arrays it would submit (the jobs still to run) and submits nothing
    args = ["reproduce", "--table", "5", "--methods", "usdrl", "--preset", "smoke", *dirs(tmp_path), "--dry-run",
            "--executor", "slurm", "--gpus-per-job", "2", "--slurm-partition", "p", "--slurm-time", "4:00:00",
            "--array-parallelism", "3", "--slurm-option", "account=x"]
    assert main(args) == 0
    out = capsys.readouterr().out
    camp = tmp_path / "work" / "campaigns" / "table5-smoke"
    pre, flo = (camp / "slurm-pretraining.sbatch").read_text(), (camp / "slurm-floors.sbatch").read_text()
    assert "#SBATCH --array=0-14%3" in pre and "#SBATCH --ntasks-per-node=2" in pre  # 5 variants × 3 seeds
    assert "#SBATCH --array=0-5%3" in flo and "#SBATCH --gpus-per-node=1" in flo  # 2 floors × 3 seeds
    assert "#SBATCH --partition=p" in pre and "#SBATCH --time=240" in pre and "#SBATCH --account=x" in pre
    assert f"an array of 15 job(s): {camp / 'slurm-pretraining.sbatch'}" in out
    assert not (tmp_path / "res").exists() and not (tmp_path / "work" / "runs").exists()


# --- the side files under many writers ---------------------------------------------------------------
def _rows(job: int, k: int) -> list[ResultRow]:
    return [ResultRow("m", "synthetic", "knn", metric, 0.1 * k + 0.01 * job, config_hash=f"h{job}-{k}",
                      pretrain_seed=k % 2) for metric in ("knn1", "knn20")]


def _writer(store: str, job: int, start: float) -> None:
    while time.time() < start:
        pass
    for k in range(4):
        write_pending(store, _rows(job, k), job=f"job{job}")
    write_pending(store, _rows(99, 0), job=f"job{job}")  # every job races on one shared recording


@pytest.mark.unit
def test_four_jobs_writing_at_once_while_folds_run_lose_nothing_and_record_once(tmp_path):
    store = tmp_path / "res"
    ctx = multiprocessing.get_context("fork")
    start = time.time() + 1.0
    procs = [ctx.Process(target=_writer, args=(str(store), j, start)) for j in range(4)]
    for p in procs:
        p.start()
    folds = 0
    while any(p.is_alive() for p in procs) or folds < 3:  # folding while the jobs write
        fold_pending(store)
        seen = load_with_pending(store)
        keys = list(zip(seen["config_hash"], seen["metric"]))
        assert len(keys) == len(set(keys)), "a recording is read twice"
        folds += 1
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    fold_pending(store)
    assert not pending_files(store)
    read = read_store(store)
    assert not read.problems
    got = sorted((x.values["config_hash"], x.values["metric"]) for x in read.rows)
    want = sorted((f"h{j}-{k}", m) for j in range(4) for k in range(4) for m in ("knn1", "knn20"))
    assert got == sorted(want + [("h99-0", "knn1"), ("h99-0", "knn20")])  # 16 recordings + the raced one, once
    fold_pending(store)  # nothing left: nothing changes
    assert len(read_store(store).rows) == len(got)


@pytest.mark.unit
def test_a_fold_killed_after_its_append_does_not_record_twice(tmp_path):
    store = tmp_path / "res"
    path = write_pending(store, _rows(1, 1), job="j")
    kept = path.read_bytes()
    assert fold_pending(store).added == 2
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(kept)  # as if the fold died before it removed the file
    assert len(load_with_pending(store)) == 2
    report = fold_pending(store)
    assert (report.added, report.files, report.redundant) == (0, 1, 1) and not pending_files(store)
    assert len(load_results(store)) == 2


# --- campaigns on submitit's executors ------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.e2e
def test_local_campaign_rows_equal_the_in_process_run(tmp_path, capsys):
    inproc, local = tmp_path / "inproc", tmp_path / "local"
    assert main([*TWO_JOBS, *dirs(inproc)]) == 0
    args = [*TWO_JOBS, *dirs(local)]
    states = status(args, capsys)
    assert (states["1"], states["2"]) == ("to run", "to run")
    assert main([*args, "--executor", "local", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 job(s) to run with --executor local (at most 2 at once)" in out
    assert "folded 4 row(s) from 2 job side file(s)" in out and "Table 3: 2 ran" in out
    assert comparable(local / "res") == comparable(inproc / "res")  # seeded: the same numbers, the same predictions
    assert sorted(p.name for p in (local / "res" / "predictions").iterdir()) == \
        sorted(p.name for p in (inproc / "res" / "predictions").iterdir())
    assert (local / "res" / "tables" / "synthetic-smoke" / "table3.md").read_text() == \
        (inproc / "res" / "tables" / "synthetic-smoke" / "table3.md").read_text()
    states = status(args, capsys)
    assert (states["1"], states["2"]) == ("done", "done")
    camp = campaign_dir(R.Settings(preset="smoke", workdir=str(local / "work")), "table3")
    recs = [json.loads(p.read_text()) for p in sorted((camp / "jobs").glob("*.json")) if ".submitted" not in p.name]
    assert [r["state"] for r in recs] == ["done", "done"] and all(Path(r["log"]).is_file() for r in recs)
    # again: every job's rows are recorded, nothing is submitted
    before = (local / "res" / "results.csv").read_text()
    assert main([*args, "--executor", "local", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("every run recorded — skipped") == 2 and "Table 3: 2 recorded" in out
    assert (local / "res" / "results.csv").read_text() == before


def _wait_for(what, timeout: float = 180.0, poll: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(poll)
    raise AssertionError("timed out waiting")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


@pytest.mark.slow
@pytest.mark.e2e
def test_a_preempted_job_is_requeued_a_killed_one_resumes_on_rerun_and_its_rows_appear_once(tmp_path, capsys):
    long = ["--set", "train.steps=200", "--set", "train.max_steps_per_epoch=4", "--set", "train.checkpoint_every=4"]
    args = ["reproduce", "--table", "3", "--methods", "vicreg", "--no-floors", "--pretrain-seeds", "0", *FAST, *long,
            *dirs(tmp_path)]
    settings = R.Settings(preset="smoke", dataset="synthetic", workdir=str(tmp_path / "work"),
                          results=str(tmp_path / "res"), overrides=[*SETS, *long[1::2]])
    (job,) = group_jobs(R.plan(table=3, methods=["vicreg"], pretrain_seeds=(0,), floors=False, seeds=[0]),
                        settings).jobs
    camp = campaign_dir(settings, "table3")
    run_json = tmp_path / "work" / "runs" / job.key / "run.json"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    submitter = subprocess.Popen([sys.executable, "-m", "harness.cli", *args, "--executor", "local"], cwd=tmp_path,
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = _wait_for(lambda: (s := job_state(camp, job.key)) and s.get("pid") and s)
        _wait_for(lambda: _read_json(run_json).get("epochs", 0) >= 8)
        os.kill(first["pid"], signal.SIGUSR2)  # what SLURM sends before preempting or at the time limit
        second = _wait_for(lambda: (s := job_state(camp, job.key)) and s.get("attempt") == 2 and s.get("pid") and s)
        assert second["pid"] != first["pid"]  # requeued: a new process of the same job
        _wait_for(lambda: _read_json(run_json).get("resumed_from") and _read_json(run_json).get("epochs", 0) >= 16)
        resumed_at = _read_json(run_json)["epochs"]
        assert resumed_at < 50, "the job finished before it could be killed"
        os.kill(second["pid"], signal.SIGKILL)  # a kill -9 mid-pretraining: no word from the job
        out, _ = submitter.communicate(timeout=120)
    finally:
        if submitter.poll() is None:
            submitter.kill()
    assert submitter.returncode == 1, out
    assert f"job {job.key}: failed" in out and "(log: " in out and "FAILED Table 3: VICReg" in out
    states = status(args, capsys)
    assert states["1"] == "failed" and ".err" in states["_out"]  # the log file
    assert not load_results(tmp_path / "res").shape[0]
    # the same command again: the job resumes from the last checkpoint, its rows are recorded once
    assert main([*args, "--executor", "local"]) == 0
    assert "Table 3: 1 ran" in capsys.readouterr().out
    info = _read_json(run_json)
    assert info["status"] == "finished" and info["global_step"] == 200 and info["resumed_from"]
    steps = [json.loads(x)["step"] for x in (run_json.parent / "metrics.jsonl").read_text().splitlines()
             if json.loads(x).get("kind") == "epoch"]
    assert steps == sorted(set(steps)) and steps[-1] == 200  # each epoch logged once across the three attempts
    rows = load_results(tmp_path / "res")
    assert sorted(rows["metric"]) == ["knn1", "knn20_weighted"]  # once each
    assert status(args, capsys)["1"] == "done"


@pytest.mark.slow
@pytest.mark.e2e
def test_four_local_jobs_finishing_together_record_every_row_once(tmp_path, capsys):
    args = ["reproduce", "--table", "3", "--methods", floor_method(), "--pretrain-seeds", "0,1,2,3", *FAST,
            *dirs(tmp_path)]
    assert main([*args, "--executor", "local", "--jobs", "4"]) == 0
    out = capsys.readouterr().out
    assert "4 job(s) to run" in out and "folded 8 row(s) from 4 job side file(s)" in out
    rows = load_results(tmp_path / "res")
    assert sorted(zip(rows["pretrain_seed"], rows["metric"])) == sorted(
        (s, m) for s in range(4) for m in ("knn1", "knn20_weighted"))
    states = status(args, capsys)
    states.pop("_out")
    assert set(states.values()) == {"done"}


@pytest.mark.slow
@pytest.mark.e2e
def test_debug_executor_runs_the_jobs_in_this_process_and_a_failing_job_stops_no_other(tmp_path, capsys,
                                                                                        monkeypatch):
    from harness.reproduce import run as run_module

    real = run_module.evaluate

    def flaky(cfg, **kw):  # the floor's evaluation fails; the other job goes on
        if cfg.method.name == floor_method():
            raise RuntimeError("evaluation exploded")
        return real(cfg, **kw)

    monkeypatch.setattr(run_module, "evaluate", flaky)
    args = [*TWO_JOBS, *dirs(tmp_path)]
    assert main([*args, "--executor", "debug"]) == 1
    out = capsys.readouterr()
    assert "RuntimeError: evaluation exploded" in out.out and "Table 3: 1 failed, 1 ran" in out.out
    states = status(args, capsys)
    assert (states["1"], states["2"]) == ("done", "failed") and "evaluation exploded" in states["_out"]
    monkeypatch.setattr(run_module, "evaluate", real)
    assert main([*args, "--executor", "debug"]) == 0
    assert "Table 3: 1 ran, 1 recorded" in capsys.readouterr().out
    states = status(args, capsys)
    states.pop("_out")
    assert set(states.values()) == {"done"}


@pytest.mark.slow
@pytest.mark.e2e
def test_a_two_task_job_pretrains_under_ddp_and_evaluates_once(tmp_path):
    """What ``--gpus-per-job 2`` gives on SLURM (two tasks, ``TorchDistributedEnvironment``), on CPU with Gloo."""
    import submitit

    from harness.data.prepared.kinds import resolve_dataset
    from harness.reproduce.worker import JobTask

    settings = R.Settings(preset="smoke", dataset="synthetic", workdir=str(tmp_path / "work"),
                          results=str(tmp_path / "res"), overrides=[*SETS, "train.steps=4"])
    (job,) = group_jobs(R.plan(table=3, methods=["vicreg"], pretrain_seeds=(0,), floors=False, seeds=[0]),
                        settings).jobs
    cfg = settings.config(job.items[0])
    resolve_dataset(cfg.data, cfg.workdir)
    ex = submitit.LocalExecutor(tmp_path / "submitit" / "%j")
    ex.update_parameters(timeout_min=10, tasks_per_node=2)
    results = ex.submit(JobTask(job, settings, str(tmp_path / "camp"), "t")).results()
    assert [r["state"] for r in results] == ["done", "done"] and "outcomes" in results[0] and "rank" in results[1]
    info = _read_json(tmp_path / "work" / "runs" / job.key / "run.json")
    assert info["world_size"] == 2 and info["status"] == "finished" and info["global_step"] == 4
    assert fold_pending(settings.base().results).added == 2  # rank 0 alone evaluated
