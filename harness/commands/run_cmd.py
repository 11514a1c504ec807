"""``harness run``: pretrain (or reuse the checkpoint with the same config hash), then evaluate.

    harness run --method usdrl --protocol linear|knn|semi|detection [--dataset D] [--preset P]

The pretrained run is found by its ``pretrain_hash`` under ``<workdir>/runs``; an unfinished one is
resumed. The protocol evaluates on ``protocol.dataset`` (default: the pretraining dataset; another
one gives a transfer evaluation, e.g. NTU-60 → PKU-MMD I). Result rows are appended to the results
store (``results/results.csv``) and printed as a table (``--json``: a JSON list of rows).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from tabulate import tabulate

from ..config import RunConfig
from ..errors import HarnessError
from ..results import ResultRow, append_rows
from .common import add_config_arguments, config_from_args, print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="pretrain (or reuse) and evaluate with a protocol",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(p)
    p.add_argument("--protocol", help="linear, knn, semi, detection (--set protocol.name=...)")
    p.add_argument("--eval-dataset", help="evaluate on another dataset (transfer; --set protocol.dataset=...)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-record", action="store_true", help="do not append rows to the results store")
    p.add_argument("--json", action="store_true", help="print the result rows as a JSON list")
    p.set_defaults(func=_run)


def evaluate(cfg: RunConfig, *, progress: bool = True, record: bool = True) -> list[ResultRow]:
    """Pretrain or reuse ``cfg``'s run, evaluate it with ``cfg.protocol`` and record the rows."""
    import torch

    from ..data.kinds import resolve_dataset
    from ..engine.checkpoint import load_backbone
    from ..engine.loop import find_or_pretrain, resolve_device, torch_threads
    from ..registry import METHODS, PROTOCOLS
    from harness.protocols.base import ProtocolContext

    # check names and options of both plugins before any data is built or any training starts
    METHODS.get(cfg.method.name).resolve_options(cfg)
    protocol_cls = PROTOCOLS.get(cfg.protocol.name)
    protocol = protocol_cls(cfg)
    info = find_or_pretrain(cfg, progress=progress)
    device = resolve_device(cfg.train.device)
    eval_data = protocol.eval_data(dataclasses.replace(cfg.data, dataset=cfg.protocol.dataset or cfg.data.dataset))
    ds = resolve_dataset(eval_data, cfg.workdir, untrimmed=protocol_cls.untrimmed)
    _check_compatible(info.backbone, ds)

    def make_backbone() -> torch.nn.Module:
        return load_backbone(info.backbone, device)[0]

    base_row = dict(method=cfg.method.name, variant=cfg.method.variant, encoder=cfg.encoder.name,
                    modality=cfg.method.modality, dataset=ds.kind, protocol=cfg.protocol.name,
                    preset=cfg.preset, epochs=cfg.train.epochs, config_hash=cfg.config_hash)
    run_dir = Path(info.run_dir) / "eval" / f"{cfg.protocol.name}-{cfg.config_hash}"
    ctx = ProtocolContext(cfg=cfg, dataset=ds, make_backbone=make_backbone, device=device, run_dir=run_dir,
                          base_row=base_row)
    with torch_threads(cfg.train.num_threads):
        rows = protocol.run(ctx)
    if record and rows:
        append_rows(cfg.results, rows)
    return rows


def _check_compatible(backbone_path: Path, ds) -> None:
    import torch

    meta = torch.load(backbone_path, map_location="cpu", weights_only=True)["data_info"]
    joints = len(meta["topology"]["joint_names"])
    if joints != ds.num_joints or meta["persons"] != ds.num_persons:
        raise HarnessError(f"{ds.root}: the encoder was pretrained on {joints} joints × {meta['persons']} "
                           f"person(s) but this dataset has {ds.num_joints} × {ds.num_persons}")


def _run(args: argparse.Namespace) -> int:
    if args.eval_dataset:
        args.overrides.append(f"protocol.dataset={args.eval_dataset}")
    cfg = config_from_args(args)
    rows = evaluate(cfg, progress=not args.no_progress, record=not args.no_record)
    if args.json:
        print_json([r.as_dict() for r in rows])
        return 0
    table = [(r.method, r.variant, r.encoder, r.dataset, r.split, r.protocol, r.metric, r.seed, f"{r.value:.4f}")
             for r in rows]
    print(tabulate(table, headers=["method", "variant", "encoder", "dataset", "split", "protocol", "metric",
                                   "seed", "value"]))
    if not args.no_record:
        print(f"\nappended {len(rows)} row(s) to {Path(cfg.results) / 'results.csv'}")
    return 0
