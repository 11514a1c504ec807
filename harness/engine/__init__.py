"""The training engine: loop, AMP, checkpoints, resume, DDP, logs.

Public entry points::

    pretrain(cfg, resume="auto"|"never"|PATH, progress=True) -> RunInfo
    find_or_pretrain(cfg) -> RunInfo              # reuse a finished run with the same pretrain_hash
    load_backbone(path_or_run_dir, device) -> (Backbone in eval mode, RunConfig)
    gather_with_grad(t)                           # autograd-aware all-gather for batch statistics
"""

from .checkpoint import load_backbone
from .distributed import gather_with_grad
from .loop import NonFiniteLossError, find_or_pretrain, pretrain
from .runs import RunInfo, run_dir_for

__all__ = ["pretrain", "find_or_pretrain", "load_backbone", "gather_with_grad", "RunInfo", "run_dir_for",
           "NonFiniteLossError"]
