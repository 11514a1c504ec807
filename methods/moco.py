"""Shared MoCo machinery: EMA key encoders, FIFO key queues and InfoNCE (docs/reference/methods.md §1, §3).

Used by ``contrastive`` (MoCo-v2 / SkeletonCLR) and ``scdnet`` (SCD-Net). The pieces follow the
reference implementations (Levigty/AimCLR ``net/skeletonclr.py``, cong-wu/SCD-Net ``scd/builder.py``):

- :func:`key_copy` — the key encoder: a deep copy of the query module with ``requires_grad`` off.
- :func:`momentum_update_` — θ_k ← m·θ_k + (1 − m)·θ_q over the parameters (buffers untouched, as in
  the references). The methods call it inside ``forward`` under ``no_grad``, after the queries and
  **before** computing the keys: the reference order.
- :class:`KeyQueue` — a (dim, K) ring of L2-normalised keys, initialised as column-normalised
  Gaussian noise; ``queue`` and ``ptr`` are registered buffers, so checkpoints carry them and a
  resumed run continues exactly. Keys are all-gathered across DDP ranks before they are enqueued
  (the reference's ``concat_all_gather``).
- :func:`info_nce` — logits ``[q·k, q·Queue] / τ`` (B, 1 + K) and cross-entropy with target 0
  (:mod:`harness.methods.losses.info_nce_term`, re-exported here).
- :func:`derive_queue_and_momentum` — the queue length and EMA momentum follow the data and the
  budget by stated rules (:func:`queue_rule`, :func:`momentum_rule`) that give the references' exact
  values (K 32,768 / 8,192, m 0.999) at the ``paper`` preset on NTU-60 xsub; at small budgets on
  small sets a fixed K and m cannot learn (a queue larger than the training set, a key encoder that
  keeps most of its initial weights).

Departures: the references assert ``K % batch == 0`` and write ``queue[:, ptr:ptr + B]``; the engine
keeps a short last batch, so :meth:`KeyQueue.enqueue` writes at ``(ptr + i) mod K`` (identical whenever
the batch divides K). The divisibility rule is therefore dropped — the ``paper`` preset's batch of 356
divides neither 32,768 nor 8,192 — and only ``K >= batch`` is required, so one batch never overwrites
its own keys. The logits are
computed in float32 with autocast off (the references run them in fp16 under AMP).
"""

from __future__ import annotations

import copy
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from harness.engine.distributed import gather_with_grad  # the identity in one process
from harness.errors import HarnessError, UnknownNameError

from .losses import info_nce  # re-exported: the loss lives in methods/losses/info_nce_term.py

__all__ = ["projection_head", "key_copy", "momentum_update_", "KeyQueue", "info_nce", "check_queue_size", "queue_rule",
           "momentum_rule", "derive_queue_and_momentum"]


def projection_head(in_features: int, hidden: int, out_features: int, batch_norm: bool = True) -> nn.Sequential:
    """The MoCo / SCD-Net head Linear → [BatchNorm1d] → ReLU → Linear (the references: no BatchNorm).

    The references' encoders (ST-GCN, CTR-GCN) end in BatchNorm; DSTE's and STTR's max-pooled
    LayerNorm tokens share a large common direction instead (untrained DSTE: mean cosine 0.999
    between clips), and without a normalisation the head maps every clip to nearly the same key, so
    InfoNCE sat at ln(K + 1) and the features collapsed (docs/reference-differences.md). The BatchNorm
    after the first layer is the one of MoCo v3's head for transformer encoders."""
    layers: list[nn.Module] = [nn.Linear(in_features, hidden)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(hidden))
    layers += [nn.ReLU(inplace=True), nn.Linear(hidden, out_features)]
    return nn.Sequential(*layers)


def key_copy(module: nn.Module) -> nn.Module:
    """A frozen deep copy of ``module`` (the key encoder starts as the query encoder)."""
    key = copy.deepcopy(module)
    for p in key.parameters():
        p.requires_grad_(False)
    return key


def _params(modules: nn.Module | Iterable[nn.Module]) -> list[torch.Tensor]:
    if isinstance(modules, nn.Module):
        modules = [modules]
    return [p for m in modules for p in m.parameters()]


@torch.no_grad()
def momentum_update_(key: nn.Module | Sequence[nn.Module], query: nn.Module | Sequence[nn.Module],
                     m: float) -> None:
    """θ_k ← m·θ_k + (1 − m)·θ_q for every parameter pair (same module structure required)."""
    kp, qp = _params(key), _params(query)
    if len(kp) != len(qp) or any(a.shape != b.shape for a, b in zip(kp, qp)):
        raise HarnessError("momentum update: key and query modules differ in structure")
    for k, q in zip(kp, qp):
        k.mul_(m).add_(q.detach(), alpha=1.0 - m)


# The reference sizes the rules below are derived from (docs/reference-differences.md, "Rules"):
REFERENCE_TRAIN_CLIPS = 40_091  # NTU-60 xsub training clips, the data the references' queues were sized for
REFERENCE_STEPS = 451 * 113  # optimizer steps of the paper preset on NTU-60 xsub (451 epochs, batch 356)
MOMENTUM_RULES = ("budget", "constant")


def transformer_recipe(batch_size: int) -> dict:
    """MoCo v3's optimiser for transformer encoders (Chen, Xie, He, ICCV 2021): AdamW, lr 1.5e-4 ×
    batch / 256, weight decay 0.1, linear warm-up over 40 of 300 epochs, then cosine. The queue-based
    methods train DSTE/STTR with it: with USDRL's Adam 1e-3, SGD 0.1 (SkeletonCLR's) or SGD 0.01
    (SCD-Net's), MoCo on DSTE at the cpu budget ended below its untrained floor (measured,
    docs/reference-differences.md)."""
    return {"optimizer": "adamw", "lr": 1.5e-4 * batch_size / 256, "weight_decay": 0.1, "betas": [0.9, 0.999],
            "warmup": 40 / 300, "schedule": "cosine", "min_lr": 0.0, "milestones": []}


# train_defaults of the queue-based methods: the recipe at each preset's batch size
TRANSFORMER_TRAIN_DEFAULTS = {"paper": transformer_recipe(356), "cpu": transformer_recipe(64),
                              "smoke": transformer_recipe(32)}


def queue_rule(ratio: float, train_samples: int, batch_size: int) -> int:
    """Queue length from the training-set size: the reference's K / N_ref times this set's N, at least
    one batch (SkeletonCLR 32,768 / 40,091 ≈ 0.82; SCD-Net 8,192 / 40,091 ≈ 0.20). A queue longer than
    the set would hold each clip's own stale keys as its negatives."""
    return max(batch_size, int(round(ratio * train_samples)))


def momentum_rule(reference: float, total_steps: int) -> float:
    """EMA momentum for a budget of ``total_steps``: m = m_ref^(T_ref / T), so the key encoder keeps the
    same share of its initial weights at the end of training (m^T) as the paper configuration
    (0.999 over 50,963 steps); T_ref / T = 1 gives m_ref exactly. Unknown budgets keep m_ref."""
    if total_steps <= 0:
        return reference
    return float(reference ** (REFERENCE_STEPS / total_steps))


def derive_queue_and_momentum(where: str, *, queue_size: int, queue_ratio: float, momentum: float,
                              rule: str, train_samples: int, batch_size: int, total_steps: int
                              ) -> tuple[int, float]:
    """(K, m) of a queue-based method: ``queue_size`` > 0 and ``rule`` "constant" keep the given values,
    else the rules above; then checked."""
    if rule not in MOMENTUM_RULES:
        raise UnknownNameError(f"{where} momentum_rule", rule, list(MOMENTUM_RULES))
    size = queue_size if queue_size > 0 else queue_rule(queue_ratio, train_samples or REFERENCE_TRAIN_CLIPS,
                                                        batch_size)
    m = momentum if rule == "constant" else momentum_rule(momentum, total_steps)
    check_moco_options(where, m, 1.0, size, batch_size)
    return size, m


def derive_for(where: str, options: Any, info: Any, batch_size: int) -> tuple[int, float]:
    """(K, m) of a queue-based method from its options (queue_size, queue_ratio, momentum,
    momentum_rule, temperature) and its DataInfo; every value checked."""
    check_moco_options(where, options.momentum, options.temperature, max(options.queue_size, 1), 1)
    return derive_queue_and_momentum(where, queue_size=options.queue_size, queue_ratio=options.queue_ratio,
                                     momentum=options.momentum, rule=options.momentum_rule,
                                     train_samples=info.train_samples, batch_size=info.batch_size or batch_size,
                                     total_steps=info.total_steps)


def check_moco_options(where: str, momentum: float, temperature: float, queue_size: int, batch_size: int) -> None:
    """The checks every queue-based method makes: 0 ≤ momentum ≤ 1, temperature > 0, and a queue that
    holds a batch."""
    if not 0.0 <= momentum <= 1.0 or temperature <= 0:
        raise HarnessError(f"{where}: need 0 ≤ momentum ≤ 1 and temperature > 0, got {momentum} and {temperature}")
    check_queue_size(queue_size, batch_size, where)


def check_queue_size(size: int, batch_size: int, where: str) -> None:
    """The queue must hold at least one (global) batch of keys (the ring wraps, so K need not divide)."""
    if size < 1:
        raise HarnessError(f"{where}: queue_size must be positive, got {size}")
    if size < batch_size:
        raise HarnessError(f"{where}: queue_size {size} is smaller than train.batch_size {batch_size}: a batch "
                           f"would overwrite its own keys; set method.options.queue_size >= {batch_size}")


class KeyQueue(nn.Module):
    """FIFO ring of ``size`` keys of width ``dim``: buffers ``queue`` (dim, size) and ``ptr`` (1,)."""

    def __init__(self, dim: int, size: int):
        super().__init__()
        if size < 1 or dim < 1:
            raise HarnessError(f"key queue needs positive dim and size, got {dim} × {size}")
        self.dim, self.size = dim, size
        self.register_buffer("queue", F.normalize(torch.randn(dim, size), dim=0))
        self.register_buffer("ptr", torch.zeros(1, dtype=torch.long))

    def snapshot(self) -> torch.Tensor:
        """The current queue as a new tensor (it is overwritten in place by :meth:`enqueue`)."""
        return self.queue.detach().clone()

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, *, gather: bool = True) -> None:
        """Write ``keys`` (B, dim) at ``ptr``, ``ptr + 1``, ... (mod size) and advance ``ptr``.

        Under DDP the keys of all ranks are gathered first (rank order), as the references do.
        """
        if gather:
            keys = gather_with_grad(keys.detach().contiguous())
        b = keys.shape[0]
        if keys.dim() != 2 or keys.shape[1] != self.dim:
            raise HarnessError(f"key queue of width {self.dim} got keys of shape {tuple(keys.shape)}")
        if b > self.size:
            raise HarnessError(f"a batch of {b} keys does not fit a queue of {self.size}")
        idx = (self.ptr + torch.arange(b, device=self.ptr.device)) % self.size
        self.queue.index_copy_(1, idx, keys.detach().T.to(self.queue.dtype))
        self.ptr.copy_((self.ptr + b) % self.size)
