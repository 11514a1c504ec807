"""harness tune across machines: a study in a journal file (``--storage journal:PATH``) shared by
worker jobs (``--executor local --jobs 2``), and the heartbeat the journal storage gets from the
harness (a dead worker's trial is failed and retried with the same weights)."""

from __future__ import annotations

import time
import warnings

import optuna
import pytest
from optuna.trial import TrialState

from harness.cli import main
from harness.tune import make_storage
from harness.tune.journal import BEAT_ATTR, HeartbeatJournalStorage

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = ["train.max_steps_per_epoch=2", "train.batch_size=16", "train.device=cpu", "train.num_threads=1"]


@pytest.mark.slow
@pytest.mark.e2e
def test_two_local_worker_jobs_share_one_journal_file(tmp_path, capfd):
    journal = tmp_path / "shared" / "study.journal"
    args = ["tune", "--method", "usdrl", "--params", "sim,vac", "--preset", "smoke", "--dataset", "synthetic",
            "--workdir", str(tmp_path / "wd"), "--study", "s", "--trials", "3", "--storage", f"journal:{journal}",
            "--executor", "local", "--jobs", "2"] + [a for s in FAST for a in ("--set", s)]
    assert main(args) == 0
    captured = capfd.readouterr()
    assert "2 worker job(s) with --executor local" in captured.err and "3 complete" in captured.out
    assert journal.is_file()
    study = optuna.load_study(study_name="s", storage=make_storage(f"journal:{journal}"))
    counted = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(counted) == 3
    assert all(t.user_attrs.get("over_budget") for t in study.trials if t not in counted)
    paper = {"sim_weight": 5.0, "vac_weight": 1.0}
    assert [t.number for t in study.trials if t.params == paper] == [0]  # enqueued once, run once
    logs = "".join(p.read_text() for p in (tmp_path / "wd" / "studies" / "s" / "jobs").rglob("*_log.err"))
    assert "[worker 1] trial" in logs and "[worker 2] trial" in logs  # both jobs took trials
    assert all(BEAT_ATTR in t.system_attrs for t in counted)  # heart-beaten while they ran
    assert (tmp_path / "wd" / "studies" / "s-best.yaml").is_file()
    # the same command again: the study has its trials, nothing runs
    assert main(args) == 0
    assert len(optuna.load_study(study_name="s", storage=make_storage(f"journal:{journal}")).trials) == \
        len(study.trials)


@pytest.mark.unit
def test_a_dead_workers_trial_in_a_journal_is_failed_and_retried(tmp_path):
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    retry_cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) \
        or optuna.storages.RetryFailedTrialCallback  # the name make_storage uses
    retry = retry_cls(max_retry=3)
    storage = HeartbeatJournalStorage(str(tmp_path / "j.journal"), heartbeat_interval=1, grace_period=1,
                                      stale_callback=retry)
    study = optuna.create_study(study_name="s", storage=storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "heartbeat is meant for Study.optimize": ask() by hand here
        dead = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        alive = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    storage.record_heartbeat(dead._trial_id)
    time.sleep(1.5)
    storage.record_heartbeat(alive._trial_id)  # this worker is still beating
    optuna.storages.fail_stale_trials(study)
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states[dead.number] == TrialState.FAIL and states[alive.number] == TrialState.RUNNING
    (retried,) = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.WAITING]
    assert retried.params == dead.params  # re-queued with the same weights
    assert retried.system_attrs["failed_trial"] == dead.number
    # another process reading the same file sees the same study
    other = optuna.load_study(study_name="s", storage=make_storage(f"journal:{tmp_path / 'j.journal'}"))
    assert [t.state for t in other.trials] == [t.state for t in study.trials]
