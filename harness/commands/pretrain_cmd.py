"""harness pretrain: train a method's encoder, checkpoint it and export its backbone.

Multi-GPU / multi-node: launch the same command under torchrun, e.g.
  torchrun --nproc_per_node=2 -m harness.cli pretrain --preset paper --dataset DIR
Run folders: <workdir>/runs/<method>-<pretrain_hash>/ (config.yaml, run.json, metrics.jsonl,
checkpoints/last.pt and epoch_NNNN.pt, backbone.pt).
"""

from __future__ import annotations

import argparse

from .common import add_config_arguments, config_from_args, print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="pretrain a method (checkpoints, resume, backbone export)",
                       description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(p)
    p.add_argument("--resume", default="auto", metavar="auto|never|PATH",
                   help="auto: continue this configuration's run from its last checkpoint (default); "
                        "never: start over; PATH: a checkpoint file or run folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.set_defaults(func=_pretrain)


def _pretrain(args: argparse.Namespace) -> int:
    from ..engine import distributed as dd
    from ..engine.loop import pretrain

    cfg = config_from_args(args)
    info = pretrain(cfg, resume=args.resume, progress=not args.no_progress)
    if dd.env_world()[0] != 0:  # under torchrun only rank 0 reports
        return 0
    if args.json:
        print_json(info.to_dict())
        return 0
    loss = info.metrics.get("loss")
    print(f"run: {info.run_dir}")
    print(f"method {info.method}, pretrain_hash {info.pretrain_hash}, {info.epochs} epoch(s), "
          f"{info.global_step} step(s), {info.train_s:.1f} s of training")
    if loss is not None:
        print(f"final loss: {loss:.6g}")
    print(f"checkpoint: {info.checkpoint if info.checkpoint is not None else '(none: method does not pretrain)'}")
    print(f"backbone: {info.backbone}")
    return 0
