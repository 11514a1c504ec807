"""The pretraining optimizer: torch's Adam (coupled L2 weight decay, the USDRL reference), AdamW or
SGD, from ``train.*``.

``train.decay_norm_and_bias=false`` puts biases, norm weights and every other 1-D parameter in a
group without weight decay (timm's ``param_groups_weight_decay``), as the MAE lineage (MAMP) does. On
CUDA the fused implementations are used (one kernel per step instead of one per tensor).
"""

from __future__ import annotations

import torch
from timm.optim import param_groups_weight_decay

from ..config import RunConfig
from ..errors import HarnessError


def build_optimizer(cfg: RunConfig, method: torch.nn.Module, device: torch.device) -> torch.optim.Optimizer:
    t = cfg.train
    groups = getattr(method, "param_groups", lambda: None)()
    if groups is None:
        if t.decay_norm_and_bias:
            groups = [{"params": [p for p in method.parameters() if p.requires_grad], "weight_decay": t.weight_decay}]
        else:
            groups = param_groups_weight_decay(method, t.weight_decay)
    groups = [g for g in groups if any(p.requires_grad for p in g["params"])]
    if not groups:
        raise HarnessError(f"method {cfg.method.name!r} has no trainable parameters")
    fused = {"fused": True} if device.type == "cuda" else {}
    if t.optimizer == "adam":  # weight decay as a coupled L2 penalty (the reference)
        return torch.optim.Adam(groups, lr=t.lr, betas=tuple(t.betas), **fused)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=t.lr, betas=tuple(t.betas), **fused)
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, **fused)
    raise HarnessError(f"unknown optimizer {t.optimizer!r}")  # resolve.check_train names the choices
