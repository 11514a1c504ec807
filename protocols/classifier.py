"""Training and scoring a classification head; shared by the linear and semi-supervised protocols."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.engine.schedule import budget_steps, epochs_for, make_scheduler
from harness.results.predictions import Predictions


def linear_head(in_dim: int, num_classes: int) -> nn.Linear:
    """The references' probe: weight ~ N(0, 0.01), bias 0 (docs/reference/usdrl.md §10)."""
    fc = nn.Linear(in_dim, num_classes)
    nn.init.normal_(fc.weight, 0.0, 0.01)
    nn.init.zeros_(fc.bias)
    return fc


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[int, int]:
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hit = top == labels[:, None]
    return {k: int(hit[:, :k].any(dim=1).sum()) for k in ks}


def top_classes(logits: torch.Tensor, k: int = 5) -> torch.Tensor:
    """(N, min(k, C)) classes by descending score, on the CPU: the same ``topk`` as :func:`topk_correct`,
    so accuracies recomputed from them equal the reported ones."""
    return logits.topk(min(k, logits.shape[1]), dim=1).indices.cpu()


@dataclass
class EvalHistory:
    """Accuracies at each evaluation; ``final`` is the last, ``best`` the maximum top-1 (best-of).
    With ``top`` (:func:`top_classes` of the evaluation's logits) it also keeps the predictions of
    the final and the best evaluation (:meth:`predictions`)."""

    epochs: list[int] = field(default_factory=list)
    top1: list[float] = field(default_factory=list)
    top5: list[float] = field(default_factory=list)
    final_top: Any = None
    best_top: Any = None

    def add(self, epoch: int, top1: float, top5: float, top: Any = None) -> None:
        self.epochs.append(epoch), self.top1.append(top1), self.top5.append(top5)
        if top is not None:
            self.final_top = top
            if self.best_index == len(self.top1) - 1:
                self.best_top = top

    @property
    def best_index(self) -> int:
        return max(range(len(self.top1)), key=lambda i: (self.top1[i], -i))

    def metrics(self) -> dict[str, float]:
        b = self.best_index
        return {"top1": self.top1[-1], "top5": self.top5[-1], "top1_best": self.top1[b],
                "top5_at_best": self.top5[b]}

    def predictions(self, index: Any, labels: Any, dataset: Any = None, tag: str = "") -> dict[str, Any]:
        """metric of :meth:`metrics` → the :class:`~harness.results.predictions.Predictions` behind it
        (final: top1, top5; best: top1_best, top5_at_best); empty without ``top``."""
        if self.final_top is None:
            return {}
        final, best = (Predictions.classification(index, labels, topk=top, group=group + tag, dataset=dataset,
                                                  epoch=epoch)
                       for top, group, epoch in ((self.final_top, "final", self.epochs[-1]),
                                                 (self.best_top, "best", self.epochs[self.best_index])))
        return {"top1": final, "top5": final, "top1_best": best, "top5_at_best": best}


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    n = max(len(labels), 1)
    c = topk_correct(logits, labels)
    return c[1] / n, c[5] / n


@dataclass
class HeadBudget:
    """A head's training budget: ``total`` optimizer steps over ``epochs`` passes of
    ``steps_per_epoch`` (the last pass may stop early), with its step-decay scheduler."""

    total: int
    epochs: int
    steps_per_epoch: int
    scheduler: Any

    @classmethod
    def make(cls, optimizer: torch.optim.Optimizer, *, steps: int, epochs: int, steps_per_epoch: int,
             milestones: list[float], gamma: float = 0.1) -> "HeadBudget":
        """``steps`` > 0 is the budget in optimizer steps, else ``epochs`` passes; ``milestones`` are
        fractions of it (lr × gamma after each)."""
        total = budget_steps(steps, epochs, steps_per_epoch)
        sched = make_scheduler(optimizer, total_steps=total, schedule="step", milestones=milestones, gamma=gamma)
        return cls(total, epochs_for(total, steps_per_epoch), steps_per_epoch, sched)


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), labels)
