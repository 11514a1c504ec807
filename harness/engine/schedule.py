"""Training budgets and learning-rate schedules, shared by pretraining and the protocols' heads.

A budget is a number of optimizer steps: ``steps`` when it is set, else ``epochs`` passes over the
data (``steps_per_epoch`` each). Schedule times are fractions of the budget, so a 284-clip dataset
and a 40,000-clip one follow the same curve at the same budget:

- ``step``: lr × gamma after each fraction in ``milestones`` of the steps (the paper preset's 351/451
  is exactly the reference's epoch 351 of 451);
- ``cosine``: a half-cycle cosine from lr down to ``min_lr``;
- both: a linear warm-up from 0 over the first ``warmup`` fraction (MAMP's 20 of 400 epochs).

The schedulers are timm's (:mod:`timm.scheduler`), stepped once per optimizer update with the number
of updates done so far, so a resumed run picks up the exact learning rate from its step count.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from timm.scheduler import CosineLRScheduler, MultiStepLRScheduler
from timm.scheduler.scheduler import Scheduler

from ..errors import HarnessError


def budget_steps(steps: int, epochs: int, steps_per_epoch: int) -> int:
    """Optimizer steps of a run: ``steps`` if > 0, else ``epochs × steps_per_epoch``."""
    if steps_per_epoch < 1:
        raise HarnessError("the training data gives no optimizer step per epoch")
    return int(steps) if steps > 0 else int(epochs) * int(steps_per_epoch)


def epochs_for(total_steps: int, steps_per_epoch: int) -> int:
    """Passes over the data that hold ``total_steps`` (the last one may stop early)."""
    return math.ceil(total_steps / steps_per_epoch) if total_steps > 0 else 0


def train_budget(train: Any, batches_per_epoch: int) -> tuple[int, int, int]:
    """The pretraining budget of ``train`` (a ``TrainConfig``) on a loader of ``batches_per_epoch``
    batches: ``(steps per epoch, optimizer steps, epochs)``, with ``train.max_steps_per_epoch`` and
    the step budget (``train.steps``) or epoch budget applied. The one rule the trainer and
    ``harness config show`` both use."""
    per_epoch = int(batches_per_epoch)
    if train.max_steps_per_epoch > 0:
        per_epoch = min(per_epoch, int(train.max_steps_per_epoch))
    total = budget_steps(train.steps, train.epochs, per_epoch)
    return per_epoch, total, epochs_for(total, per_epoch)


def milestone_steps(milestones: Sequence[float], total_steps: int) -> list[int]:
    """Fractions of the budget → the number of updates after which each decay applies."""
    return [int(round(float(m) * total_steps)) for m in milestones]


def make_scheduler(optimizer: torch.optim.Optimizer, *, total_steps: int, schedule: str = "step",
                   milestones: Sequence[float] = (), gamma: float = 0.1, warmup: float = 0.0,
                   min_lr: float = 0.0) -> Scheduler:
    """A timm scheduler over ``total_steps`` updates; call ``step_update(updates_done)`` before each
    update (the constructor sets the first update's learning rate)."""
    warm = int(round(warmup * total_steps))
    if schedule == "step":
        # timm applies decay milestone m from schedule index m − 1 on: +1 makes the decay start with
        # update number ``milestone_steps`` (0-based), as torch's MultiStepLR does per epoch
        decay = [s - warm + 1 for s in milestone_steps(milestones, total_steps)]
        return MultiStepLRScheduler(optimizer, decay_t=decay, decay_rate=gamma, warmup_t=warm, warmup_lr_init=0.0,
                                    warmup_prefix=True, t_in_epochs=False)
    if schedule == "cosine":
        return CosineLRScheduler(optimizer, t_initial=max(total_steps - warm, 1), lr_min=min_lr, warmup_t=warm,
                                 warmup_lr_init=0.0, warmup_prefix=True, cycle_limit=1, t_in_epochs=False)
    raise HarnessError(f"unknown schedule {schedule!r}: expected step or cosine")
