"""Semi-supervised evaluation (docs/reference/protocols.md §3): fine-tune the whole network on 1 % / 10 % of labels.

The USDRL paper fine-tunes the entire model on 1 % and 10 % of the training labels (Table 2) but
publishes no code; its unused hook draws an unstratified prefix and applies it to the test split
too. Here:
- the labelled subset is **class-stratified**: per class, max(1, round(p·n_c)) samples drawn
  without replacement with a seeded NumPy generator, so no class is missing at 1 %. Subsets are
  saved (``subsets/<dataset>-<split>-p<fraction>-seed<s>.npy`` in the run folder) and reused;
- the test split is always complete;
- encoder + linear head train together (encoder in train mode, as CMD), SGD as CMD (lr 0.01,
  momentum 0.9, weight decay 1e-4, step decay), with a random temporal crop (ratio U(0.5, 1)) as the
  only augmentation; the test clips are deterministic;
- ``standardize`` (on at ``cpu`` and ``smoke``, off at ``paper``) puts an affine-free BatchNorm before
  the head: DSTE's pooled features share one large direction and, without it, fine-tuned to chance
  (docs/reference-differences.md);
- every fraction runs over ``subset_seeds`` (at least three by default) and rows are written per
  seed; the tables report mean ± std over them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from harness import atomic
from harness.augment import CropResize
from harness.data.prepared.loader import ClipBatches
from harness.data.prepared.format import PreparedDataset
from harness.registry import PROTOCOLS
from harness.results import ResultRow

from harness.contracts import Measure, Protocol, ProtocolContext
from .classifier import EvalHistory, HeadBudget, accuracy, cross_entropy, linear_head, top_classes
from harness.evaluation.features import eval_clips


def stratified_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Positions into `labels`: per class max(1, round(fraction·n_c)), sorted."""
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n = min(len(members), max(1, int(round(fraction * len(members)))))
        chosen.append(rng.choice(members, size=n, replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def subset_indices(ds: PreparedDataset, split: str, fraction: float, seed: int, store: Path) -> np.ndarray:
    """Dataset indices of the labelled subset, drawn once and then read back from `store`."""
    path = store / f"{ds.kind}-{split}-p{fraction:g}-seed{seed}.npy"
    train = ds.indices(split, "train")
    if path.exists():
        idx = np.load(path)
        if np.isin(idx, train).all():
            return idx
    idx = train[stratified_subset(ds.labels[train], fraction, seed)]
    with atomic.atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, idx)
    return idx


@dataclass
class SemiOptions:
    fractions: list[float] = field(default_factory=lambda: [0.01, 0.1])
    subset_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    steps: int = 0  # the budget in optimizer steps per fine-tuning; 0 = ``epochs`` passes over the subset
    epochs: int = 80
    lr: float = 0.01
    milestones: list[float] = field(default_factory=lambda: [0.625, 0.875])  # epochs 50 and 70 of 80
    batch_size: int = 64
    momentum: float = 0.9
    weight_decay: float = 1e-4
    eval_every: int = 5
    crop_low: float = 0.5
    standardize: bool = False  # an affine-free BatchNorm before the head (running statistics at test time)


@PROTOCOLS.register("semi")
class SemiProtocol(Protocol):
    """Fine-tune the whole network on 1 % / 10 % class-stratified labels; mean ± std over subset seeds."""

    name = "semi"

    def describe_seeds(self) -> str:
        return "subset " + ",".join(map(str, self.options.subset_seeds))

    measures = (
        Measure("semi@0.01", "top1_best@0.01", "1 %",
                "semi-supervised top-1, best-of, after fine-tuning the whole model on 1 % / 10 % of the "
                "training labels (class-stratified subsets; docs/reference/protocols.md §3)", proportion=True),
        Measure("semi@0.1", "top1_best@0.1", "10 %", proportion=True),
    )
    Options = SemiOptions
    preset_defaults = {
        # 150 steps per fine-tuning, whatever the subset's size (1 % of a small set is one batch)
        # the small presets z-score the pooled features before the head, as the linear probe does: with a
        # plain head, DSTE fine-tuned to chance (random DSTE, synthetic 10 %: 8.4 %, with it 60.6 %)
        "cpu": {"steps": 150, "epochs": 0, "milestones": [2 / 3, 5 / 6], "batch_size": 32, "standardize": True},
        "smoke": {"epochs": 2, "milestones": [0.5], "batch_size": 16, "eval_every": 1,
                  "fractions": [0.1], "subset_seeds": [0, 1, 2], "standardize": True},
    }

    def run(self, ctx: ProtocolContext) -> list[ResultRow]:
        ds, split, opt = ctx.dataset, ctx.split, self.options
        frames = ctx.cfg.data.frames
        test_idx = ds.indices(split, "test")
        pretrained = ctx.make_backbone()
        rows = []
        for fraction in opt.fractions:
            for seed in opt.subset_seeds:
                labelled = subset_indices(ds, split, fraction, seed, ctx.run_dir / "subsets")
                history = self._finetune(copy.deepcopy(pretrained).to(ctx.device), ds, labelled, test_idx,
                                         frames, seed, ctx)
                extra = f'{{"fraction": {fraction}, "labelled": {len(labelled)}}}'
                # per-sample outputs of the final and the best evaluation, kept beside the store
                preds = history.predictions(test_idx, ds.labels[test_idx], ds, tag=f"@{fraction:g}")
                rows += [ctx.row(f"{metric}@{fraction:g}", value, seed=seed, extra=extra,
                                 predictions=preds.get(metric))
                         for metric, value in history.metrics().items()]
        return rows

    def _finetune(self, backbone, ds, labelled, test_idx, frames, seed, ctx) -> EvalHistory:
        opt = self.options
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        head = linear_head(backbone.feature_dim, ds.num_classes)
        if opt.standardize:  # DSTE's pooled features share one large direction; z-scored, the head sees past it
            head = nn.Sequential(nn.BatchNorm1d(backbone.feature_dim, affine=False), head)
        head = head.to(ctx.device)
        params = list(backbone.parameters()) + list(head.parameters())
        for p in params:
            p.requires_grad_(True)
        sgd = torch.optim.SGD(params, lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay)
        # a trailing one-clip batch is dropped (as the engine does): on subsets of a few dozen clips its
        # extra full-network step per epoch collapsed the fine-tuned features (MSR 10 %: 37 % → 7 %)
        drop_last = len(labelled) > opt.batch_size and len(labelled) % opt.batch_size == 1
        train = ClipBatches(ds, labelled, opt.batch_size, shuffle=True, seed=seed, device=ctx.device,
                            drop_last=drop_last)
        # a random window of U(crop_low, 1) of each clip's valid frames, resampled (the augmentation's crop)
        crop = CropResize(frames, (opt.crop_low, 1.0), min_length=1)
        budget = HeadBudget.make(sgd, steps=opt.steps, epochs=opt.epochs, steps_per_epoch=len(train),
                                 milestones=opt.milestones)
        history = EvalHistory()
        step = 0
        for epoch in range(1, budget.epochs + 1):
            backbone.train()
            head.train()
            train.set_epoch(epoch)
            for batch in train:
                if step == budget.total:
                    break
                budget.scheduler.step_update(step)
                x = crop(batch.x, batch.lengths, gen)
                loss = cross_entropy(head(backbone(x).pooled), batch.labels)
                sgd.zero_grad(set_to_none=True)
                loss.backward()
                sgd.step()
                step += 1
            if epoch % opt.eval_every == 0 or epoch == budget.epochs:
                logits, labels = self._evaluate(backbone, head, ds, test_idx, frames, ctx)
                history.add(epoch, *accuracy(logits, labels), top=top_classes(logits))
        return history

    @torch.no_grad()
    def _evaluate(self, backbone, head, ds, test_idx, frames, ctx) -> tuple[torch.Tensor, torch.Tensor]:
        """The test logits and labels, in ``test_idx`` order."""
        backbone.eval()
        head.eval()
        logits, labels = [], []
        for batch in ClipBatches(ds, test_idx, ctx.cfg.protocol.batch_size, device=ctx.device):
            logits.append(head(backbone(eval_clips(batch, frames)).pooled))
            labels.append(batch.labels)
        return torch.cat(logits), torch.cat(labels)
