"""``harness tune``: search a method's loss weights with Optuna; save the best as a config file.

    harness tune --method usdrl --params sim,vac,xcorr --trials 40 [--workers K] [--storage URL]
                 [--study NAME] [--preset P] [--dataset D] [--set ...] [--out best.yaml]

Each weight is sampled log-uniformly in [paper / spread, paper x spread] (spread 10); the paper's
weights are the study's first trial. A trial pretrains on data.split's train part minus a seeded,
class-stratified validation hold-out (--val-fraction, 20 %) and scores kNN-1 accuracy on that
hold-out (the test split is never used); MedianPruner stops weak trials early from the kNN
accuracy measured every --eval-every epochs. Each trial pretrains for the preset's budget
(train.steps, or train.epochs when steps is 0). The study lives in an Optuna storage (SQLite
<workdir>/studies/<study>.db by default; journal:PATH a journal file that workers on machines sharing a
filesystem use at once; a PostgreSQL URL shares it between machines) and resumes:
--trials is the total number of finished (complete or pruned) trials the study should reach.
Parameter names: the aliases the method declares (USDRL: sim, vac, xc|xcorr, var|variance,
cov|covariance, offdiag, domain, instance) or any float field of its options; a wrong name lists
them. --executor local|slurm|debug --jobs N runs the N workers as submitit jobs (docs/campaigns.md);
give them a journal file or a database (--storage journal:PATH). See docs/tuning.md.
"""

from __future__ import annotations

import argparse

from .common import add_config_arguments, config_from_args, print_json
from .executor_args import add_executor_arguments, executor_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="search loss weights with Optuna (validation kNN-1, pruning, resumable)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(p)
    p.add_argument("--params", default="sim,vac,xc", help="comma-separated weights to tune (default sim,vac,xc)")
    p.add_argument("--trials", type=int, required=True,
                   help="finished (complete + pruned) trials the study should have in total")
    p.add_argument("--workers", type=int, default=1, help="worker processes sharing the study (default 1)")
    p.add_argument("--storage", help="an Optuna RDB URL, or journal:PATH (a journal file; 'journal' alone: "
                                     "<workdir>/studies/<study>.journal) (default sqlite:///<workdir>/studies/<study>.db)")
    p.add_argument("--study", help="study name (default <method>-<preset>-<hash of the configuration>)")
    p.add_argument("--out", help="where to write the best config (default <workdir>/studies/<study>-best.yaml)")
    p.add_argument("--spread", type=float, default=10.0,
                   help="sample each weight in [paper/spread, paper*spread], log-uniformly (default 10)")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="validation hold-out per class of the train split (default 0.2)")
    p.add_argument("--val-seed", type=int, default=0, help="seed of the validation hold-out (default 0)")
    p.add_argument("--eval-every", type=int, default=0,
                   help="epochs between intermediate kNN evaluations for pruning (default: a fifth of the "
                        "epochs the budget gives, at least 1)")
    p.add_argument("--pruner", choices=("median", "none"), default="median", help="default median")
    p.add_argument("--startup-trials", type=int, default=3,
                   help="finished trials before the median pruner prunes anything (default 3)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed (mixed with the worker and study size)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_executor_arguments(p, what="worker")
    p.set_defaults(func=_tune)


def _tune(args: argparse.Namespace) -> int:
    # imported here, not at module level: harness.tune brings Optuna and SQLAlchemy, about half a
    # second that every other harness command would pay at start-up
    from ..tune import result_table, run_study

    cfg = config_from_args(args)
    result = run_study(cfg, params=args.params, trials=args.trials, study=args.study, storage=args.storage,
                       workers=args.workers, spread=args.spread, val_fraction=args.val_fraction,
                       val_seed=args.val_seed, eval_every=args.eval_every, pruner=args.pruner,
                       startup_trials=args.startup_trials, seed=args.seed, out=args.out,
                       executor=executor_options(args))
    if args.json:
        print_json(result.to_dict())
        return 0
    print(f"study {result.study} ({result.storage}): {result.complete} complete, {result.pruned} pruned, "
          f"{result.failed} failed trial(s)")
    print(result_table(result))
    if result.paper_value is not None:
        gain = result.best_value - result.paper_value
        verdict = "the paper weights are the best found" if result.best_number == result.paper_number else (
            f"{gain:+.4f} over the paper weights" if gain > 0 else "no better than the paper weights")
        print(verdict)
    print(f"\nbest config: {result.out}  (harness run --preset {cfg.preset} --config {result.out} ...)")
    return 0
