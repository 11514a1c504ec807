"""harness tune: parameter names, the validation hold-out, a 2-worker SQLite study on MSR Action3D
(paper weights first, exact trial count, resume), pruning from the epoch hook, the best config."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState

from harness.cli import main

from harness.data.prepared.format import open_prepared
from harness.engine.loop import split_holdout, train_indices
from harness.errors import HarnessError, UnknownNameError
from harness.contracts import Method
from harness.methods.umurl import UmURL
from harness.methods.usdrl import USDRL
from harness.tune import (OverBudget, Objective, TuneResult, TuneSpec, best_yaml, budget_used, create_study,
                          make_spec, open_study, paper_weights, planned_epochs, resolve_params, run_worker,
                          search_space, validation_indices)
from harness.tune.report import changed_keys
from harness.config import load_config
from harness.resolve import resolved

# the paper's loss weights: LOSS = 5·SIM + 1·VAC + 1e-3·XC; VAC = 5·V + 1·AC; XC off-diagonal 0.005; domains 0.5
PAPER = {"sim_weight": 5.0, "vac_weight": 1.0, "xc_weight": 1e-3, "variance_weight": 5.0,
         "covariance_weight": 1.0, "offdiag_weight": 0.005, "domain_weight": 0.5}
# smoke preset, made a little smaller still so a trial takes seconds on a shared CPU
FAST = ["train.max_steps_per_epoch=2", "train.batch_size=16", "train.device=cpu", "train.num_threads=1"]


@pytest.fixture(scope="module")
def msr(real_data, tmp_path_factory) -> Path:
    from harness.data.readers.msr import prepare_msr

    return prepare_msr(real_data / "msr_action3d", tmp_path_factory.mktemp("msr") / "prepared")


def smoke_cfg(dataset: Path, workdir: Path, *extra: str):
    return load_config("smoke", overrides=["method.name=usdrl", f"data.dataset={dataset}", "data.split=xsub",
                                       f"workdir={workdir}", *FAST, *extra])


# --- names and the search space --------------------------------------------------------------
def test_param_aliases_map_to_usdrl_options():
    assert resolve_params(USDRL, "sim,vac,xcorr,var,cov,offdiag,domain") == [
        "sim_weight", "vac_weight", "xc_weight", "variance_weight", "covariance_weight", "offdiag_weight",
        "domain_weight"]
    assert resolve_params(USDRL, "xc, xc_weight ,variance") == ["xc_weight", "variance_weight"]
    with pytest.raises(UnknownNameError, match="Did you mean 'sim'"):
        resolve_params(USDRL, "simm")
    with pytest.raises(UnknownNameError, match="num_views"):  # an int option is not a weight
        resolve_params(USDRL, "num_views")


def test_aliases_are_declared_by_the_method():
    assert resolve_params(UmURL, "sim,vac,var,cov") == ["sim_weight", "vac_weight", "variance_weight",
                                                         "covariance_weight"]
    with pytest.raises(UnknownNameError, match="tuning parameter of umurl 'xc'"):  # UmURL has no XC term
        resolve_params(UmURL, "xc")

    @dataclasses.dataclass
    class Opts:
        alpha_weight: float = 1.0
        beta: float = 0.5
        steps: int = 3

    class Toy(Method):
        name = "toy"
        Options = Opts
        tunable = {"alpha": "alpha_weight"}

    assert resolve_params(Toy, "alpha,beta,alpha_weight") == ["alpha_weight", "beta"]
    with pytest.raises(UnknownNameError) as err:
        resolve_params(Toy, "gamma")
    assert err.value.known == ["alpha", "alpha_weight", "beta"]  # aliases and float fields, not the int one
    assert "Known: alpha, alpha_weight, beta." in str(err.value)

    class Broken(Toy):
        name = "broken"
        tunable = {"n": "steps", "alpha": "alpha_weight"}

    with pytest.raises(HarnessError, match="method 'broken' declares tunable aliases .*'n' → 'steps'"):
        resolve_params(Broken, "alpha")


def test_paper_weights_and_log_range():
    cfg = load_config("smoke", overrides=["method.name=usdrl"])
    paper = paper_weights(USDRL, cfg, list(PAPER))
    assert paper == PAPER
    space = search_space(paper, 10.0)
    assert space["xc_weight"] == pytest.approx((1e-4, 1e-2))
    assert space["sim_weight"] == pytest.approx((0.5, 50.0))
    single = load_config("smoke", overrides=["method.name=usdrl", "method.variant=single_grained"])
    with pytest.raises(HarnessError, match="domain_weight is 0.0"):
        paper_weights(USDRL, single, ["domain_weight"])


def test_bad_param_name_fails_before_any_work(tmp_path, capsys):
    code = main(["tune", "--method", "usdrl", "--params", "sim,vca", "--trials", "2", "--preset", "smoke",
                 "--workdir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown tuning parameter of usdrl 'vca'. Did you mean" in err and "'vac'?" in err
    assert not (tmp_path / "studies").exists() and not (tmp_path / "datasets").exists()


# --- the validation split --------------------------------------------------------------------
def test_validation_split_is_stratified_and_disjoint(msr, tmp_path):
    ds = open_prepared(msr)
    train, test = ds.indices("xsub", "train"), ds.indices("xsub", "test")
    cfg = smoke_cfg(msr, tmp_path, "data.options.holdout={fraction: 0.2, seed: 0}")
    pretrain_idx, val = validation_indices(ds, cfg)
    assert len(np.intersect1d(val, test)) == 0
    assert len(np.intersect1d(val, pretrain_idx)) == 0
    assert np.array_equal(np.union1d(val, pretrain_idx), train)
    labels = ds.samples["label"].to_numpy()
    for c in np.unique(labels[train]):
        n = int((labels[train] == c).sum())
        assert int((labels[val] == c).sum()) == min(round(0.2 * n), n - 1), c
    assert 0.18 < len(val) / len(train) < 0.22
    # seeded: the same seed gives the same split, another seed another one
    assert np.array_equal(split_holdout(ds, train, {"fraction": 0.2, "seed": 0})[1], val)
    assert not np.array_equal(split_holdout(ds, train, {"fraction": 0.2, "seed": 1})[1], val)
    # a max_train_samples cap thins the pretraining part only; the validation part stays
    capped = smoke_cfg(msr, tmp_path, "data.options.holdout={fraction: 0.2, seed: 0}", "data.max_train_samples=100")
    pre_c, val_c = validation_indices(ds, capped)
    assert np.array_equal(val_c, val) and len(pre_c) == 100 and np.isin(pre_c, pretrain_idx).all()
    assert np.array_equal(train_indices(ds, cfg), pretrain_idx)
    with pytest.raises(HarnessError, match="fraction must lie in"):
        split_holdout(ds, train, {"fraction": 1.5})


def test_budget_gives_the_epochs_and_the_default_eval_every(msr, tmp_path):
    ds = open_prepared(msr)
    hold = "data.options.holdout={fraction: 0.2, seed: 0}"
    # 226 kept samples in batches of 16: 15 steps per epoch (the last batch has 2), capped at 2 by FAST
    assert planned_epochs(ds, smoke_cfg(msr, tmp_path, hold), np.arange(226)) == 3  # 6 steps
    uncapped = smoke_cfg(msr, tmp_path, hold, "train.max_steps_per_epoch=0", "train.steps=31")
    assert planned_epochs(ds, uncapped, np.arange(226)) == 3  # 15 + 15 + 1 steps
    by_epochs = smoke_cfg(msr, tmp_path, hold, "train.steps=0", "train.epochs=7")
    assert planned_epochs(ds, by_epochs, np.arange(226)) == 7
    # --eval-every defaults to a fifth of the planned epochs (at least 1)
    assert make_spec(smoke_cfg(msr, tmp_path), params="sim", trials=1, study="e1")[0].eval_every == 1
    spec = make_spec(smoke_cfg(msr, tmp_path, "train.steps=40"), params="sim", trials=1, study="e2")[0]
    assert spec.eval_every == 4  # 20 epochs of 2 steps
    spec = make_spec(smoke_cfg(msr, tmp_path, "train.steps=0", "train.epochs=10"), params="sim", trials=1,
                     study="e3")[0]
    assert spec.eval_every == 2
    assert make_spec(smoke_cfg(msr, tmp_path), params="sim", trials=1, eval_every=3)[0].eval_every == 3
    with pytest.raises(HarnessError, match="train.steps=0 and train.epochs=0"):
        make_spec(smoke_cfg(msr, tmp_path, "train.steps=0", "train.epochs=0"), params="sim", trials=1)


def test_best_yaml_names_the_changed_keys_as_set_arguments(tmp_path):
    sets = ["encoder.options.hidden=48", "train.steps=9", "train.milestones=[0.25, 0.75]", "data.frames=12"]
    cfg = load_config("smoke", overrides=["method.name=usdrl", "method.options.vac_weight=2.0", *sets])
    plain = load_config("smoke", overrides=["method.name=usdrl"])
    changed = dict(changed_keys(plain.to_dict(), cfg.to_dict()))
    assert changed == {"encoder.options.hidden": "48", "train.steps": "9", "train.milestones": "[0.25, 0.75]",
                       "data.frames": "12", "method.options.vac_weight": "2.0"}
    spec = TuneSpec(base={"data": {"options": {"holdout": {"fraction": 0.2, "seed": 0}}}},
                    space={"sim_weight": [0.5, 50.0]}, paper={"sim_weight": 5.0}, trials=2, study="y",
                    storage="sqlite:///y.db", trials_dir=str(tmp_path), eval_every=1)
    result = TuneResult(study="y", storage=spec.storage, params=["sim_weight"], paper=spec.paper, space=spec.space,
                        complete=2, pruned=0, failed=0, best_number=1, best_value=0.5,
                        best_params={"sim_weight": 7.0}, paper_number=0, paper_value=0.4, paper_state="complete")
    text = best_yaml(cfg, result, spec)
    assert "encoder dste" in text and "modality joint" in text  # the method's defaults, resolved
    (line,) = [ln for ln in text.splitlines() if ln.startswith("# tuned with: ")]
    items = line.removeprefix("# tuned with: ").split(" --set ")
    items[0] = items[0].removeprefix("--set ")
    assert sorted(items) == sorted(sets)  # the method's own section is the file's body, not a comment
    out = tmp_path / "best.yaml"
    out.write_text(text)
    again = load_config("smoke", out, overrides=items)
    assert resolved(again).to_dict() == resolved(load_config("smoke", overrides=[
        "method.name=usdrl", "method.options.vac_weight=2.0", "method.options.sim_weight=7.0", *sets]
    )).to_dict()
    # a method's own training defaults (MAMP's AdamW, cosine) are not changes the user made
    mamp = load_config("smoke", overrides=["method.name=mamp"])
    spec.space, spec.paper = {"mask_ratio": [0.5, 0.95]}, {"mask_ratio": 0.9}
    result.params, result.paper, result.space = ["mask_ratio"], spec.paper, spec.space
    result.best_params = {"mask_ratio": 0.8}
    text = best_yaml(mamp, result, spec)
    assert "# tuned with" not in text and "encoder mamp-vit" in text


# --- SQLite storage: one waiting trial goes to one worker ---------------------------------------
def _ask_at(url: str, start_at: float, numbers) -> None:
    import time
    import warnings

    from harness.tune import make_storage

    warnings.filterwarnings("ignore")  # "heartbeat is meant for Study.optimize": ask() is enough here
    study = optuna.load_study(study_name="s", storage=make_storage(url))
    while time.time() < start_at:  # all processes pop at the same moment
        pass
    numbers.put(study.ask().number)


def test_sqlite_waiting_trial_is_popped_by_one_process_only(tmp_path):
    """Without BEGIN IMMEDIATE, 4 processes racing for 2 enqueued trials got the same one in 10 of
    15 rounds here; with it, never."""
    import multiprocessing
    import time

    ctx = multiprocessing.get_context("fork")
    for r in range(6):
        url = f"sqlite:///{tmp_path / f'race{r}.db'}"
        study = optuna.create_study(study_name="s", storage=url)
        study.enqueue_trial({"x": 1.0})
        study.enqueue_trial({"x": 2.0})
        numbers = ctx.Queue()
        start_at = time.time() + 2
        procs = [ctx.Process(target=_ask_at, args=(url, start_at, numbers)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        got = sorted(numbers.get(timeout=5) for _ in procs)
        assert got == [0, 1, 2, 3], f"round {r}: trials handed out {got}"


# --- a study with two workers, then resumed --------------------------------------------------
def test_two_workers_then_resume(msr, tmp_path, capfd):
    wd, out = tmp_path / "wd", tmp_path / "best.yaml"
    args = ["tune", "--method", "usdrl", "--params", "sim,vac,xcorr", "--preset", "smoke", "--dataset", str(msr),
            "--workdir", str(wd), "--study", "s", "--out", str(out)] + [a for s in FAST for a in ("--set", s)]
    assert main(args + ["--trials", "3", "--workers", "2"]) == 0
    captured = capfd.readouterr()
    assert "[worker 1] trial" in captured.err and "[worker 2] trial" in captured.err  # both ran trials

    db = wd / "studies" / "s.db"
    assert db.is_file()
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    counted = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(counted) == 3
    assert all(t.user_attrs.get("over_budget") for t in study.trials if t not in counted)
    first = study.trials[0]
    want = {"sim_weight": 5.0, "vac_weight": 1.0, "xc_weight": 1e-3}
    assert first.number == 0 and first.params == want and first.user_attrs["harness_paper"]
    assert [t.number for t in study.trials if t.params == want] == [0]

    # every trial pretrained in its own folder on the kept samples; its run config has the trial's weights
    ds = open_prepared(msr)
    folders = set()
    for t in counted:
        run = next((Path(t.user_attrs["workdir"]) / "runs").iterdir())
        folders.add(run)
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        assert {k: cfg["method"]["options"][k] for k in want} == t.params
        assert cfg["data"]["options"]["holdout"] == {"fraction": 0.2, "seed": 0}
        info = json.loads((run / "run.json").read_text())
        assert info["train_samples"] == 226  # 284 xsub/train samples minus the 58 held out
        assert info["total_steps"] == 6 and info["epochs_planned"] == 3  # smoke: 6 steps, 2 per epoch (FAST)
        trial_cfg = load_config("smoke", run / "config.yaml")
        assert planned_epochs(ds, trial_cfg, validation_indices(ds, trial_cfg)[0]) == 3  # as the engine counts
        if t.state == TrialState.COMPLETE:
            # epochs 1 and 2 are reported to the pruner; the last one (the budget spent) is the value
            assert info["epochs"] == 3 and sorted(t.intermediate_values) == [1, 2]
            by_epoch = t.user_attrs["val_knn1_by_epoch"]
            assert sorted(by_epoch) == ["1", "2", "3"] and by_epoch["3"] == t.value
    assert len(folders) == 3

    # the best config loads with the preset and holds the best trial's weights
    best = max((t for t in counted if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    cfg = load_config("smoke", out)
    assert cfg.method.name == "usdrl"
    assert {k: cfg.method.options[k] for k in want} == best.params
    assert USDRL.resolve_options(cfg).sim_weight == best.params["sim_weight"]
    assert f"best (trial {best.number})" in captured.out and "paper (trial 0)" in captured.out
    assert f"{first.value:.4f}" in captured.out and f"{best.value:.4f}" in captured.out
    print(f"\nsmoke study: paper weights val kNN-1 {first.value:.4f}, best {best.value:.4f} "
          f"(trial {best.number}: {best.params})")

    # resuming with a higher --trials runs only the missing trial; the paper trial is not enqueued again
    assert main(args + ["--trials", "4"]) == 0
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    counted = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(counted) == 4
    assert [t.number for t in study.trials if t.params == want] == [0]
    assert main(args + ["--trials", "4"]) == 0  # already there: nothing runs
    assert len(optuna.load_study(study_name="s", storage=f"sqlite:///{db}").trials) == len(study.trials)

    # the same study with another search space is refused
    capfd.readouterr()
    assert main(args + ["--trials", "5", "--spread", "5"]) == 2
    assert "different configuration (differs in: space)" in capfd.readouterr().err


# --- pruning from the epoch hook; the budget gate --------------------------------------------
def test_pruned_trial_leaves_a_failed_run_with_checkpoints(msr, tmp_path):
    cfg = smoke_cfg(msr, tmp_path)
    spec, identity = make_spec(cfg, params="sim", trials=1, study="p", eval_every=1)
    create_study(spec, identity)
    # every accuracy is below 1.01: the first intermediate report (epoch 1 of 2) prunes the trial
    ran = run_worker(spec, pruner=optuna.pruners.ThresholdPruner(lower=1.01), log=lambda m: None)
    assert ran == 1
    (trial,) = open_study(spec).trials
    assert trial.state == TrialState.PRUNED and trial.user_attrs["pruned_at_epoch"] == 1
    acc = trial.intermediate_values[1]
    assert 0.0 <= acc <= 1.0 and trial.user_attrs["val_knn1_by_epoch"] == {"1": acc}
    run = next((Path(trial.user_attrs["workdir"]) / "runs").iterdir())
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed" and info["error"].startswith("TrialPruned") and info["epochs"] == 1
    state = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert state["epoch"] == 1
    assert not (run / "backbone.pt").exists()


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # study.ask() by hand, on purpose
def test_no_trial_beyond_the_budget(msr, tmp_path):
    cfg = smoke_cfg(msr, tmp_path)
    spec, identity = make_spec(cfg, params="sim", trials=1, study="b")
    study = create_study(spec, identity)
    create_study(spec, identity)  # opened again (a resumed study): the paper trial is not enqueued twice
    assert len(study.trials) == 1 and study.trials[0].state == TrialState.WAITING  # enqueued once
    running = study.ask()  # a worker takes the paper trial...
    assert running.number == 0 and budget_used(study) == 1
    assert run_worker(spec) == 0  # ...so another worker finds the budget of 1 spent and stops
    late = study.ask()  # a worker that raced past that check created one more trial
    with pytest.raises(OverBudget):
        Objective(spec, log=lambda m: None)(late)
