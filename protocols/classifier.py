"""Training and scoring a classification head; shared by the linear and semi-supervised protocols."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


def linear_head(in_dim: int, num_classes: int) -> nn.Linear:
    """The references' probe: weight ~ N(0, 0.01), bias 0 (usdrl.md §10)."""
    fc = nn.Linear(in_dim, num_classes)
    nn.init.normal_(fc.weight, 0.0, 0.01)
    nn.init.zeros_(fc.bias)
    return fc


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[int, int]:
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hit = top == labels[:, None]
    return {k: int(hit[:, :k].any(dim=1).sum()) for k in ks}


@dataclass
class EvalHistory:
    """Accuracies at each evaluation; ``final`` is the last, ``best`` the maximum top-1 (best-of)."""

    epochs: list[int] = field(default_factory=list)
    top1: list[float] = field(default_factory=list)
    top5: list[float] = field(default_factory=list)

    def add(self, epoch: int, top1: float, top5: float) -> None:
        self.epochs.append(epoch), self.top1.append(top1), self.top5.append(top5)

    @property
    def best_index(self) -> int:
        return max(range(len(self.top1)), key=lambda i: (self.top1[i], -i))

    def metrics(self) -> dict[str, float]:
        b = self.best_index
        return {"top1": self.top1[-1], "top5": self.top5[-1], "top1_best": self.top1[b],
                "top5_at_best": self.top5[b]}


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    n = max(len(labels), 1)
    c = topk_correct(logits, labels)
    return c[1] / n, c[5] / n


def step_lr(optimizer: torch.optim.Optimizer, milestones: list[int], gamma: float = 0.1):
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=gamma)


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), labels)
