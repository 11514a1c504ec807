"""Linear evaluation (docs/reference/protocols.md §1): a frozen encoder in eval mode and a linear head on y_i.

The backbone is frozen and in eval mode (BatchNorm statistics and DropPath frozen), and the
evaluation clips are deterministic (whole valid range resampled). The pooled features are therefore
identical in every epoch, so they are computed once and the head trains on the cached features.
That gives the reference's numbers at a fraction of its cost (it re-encodes every epoch).

``standardize`` (on at the ``cpu`` and ``smoke`` presets, off at ``paper`` as in the reference) z-scores the
features with the training split's mean and std before the head: the affine-free BatchNorm head of
the MAE lineage (MAMP) in closed form. Methods give features of very different scales (max-pooled
tokens, MoCo heads, ViT means), and without it one SGD learning rate under- or over-shoots some of
them; with it the short ``cpu`` schedule probes every method fairly.

Reported metrics: ``top1`` / ``top5`` after the final epoch, and ``top1_best`` — the maximum test
top-1 over evaluations every ``eval_every`` epochs, which is what every reference reports (there is
no validation split in any of them). ``top5_at_best`` is the top-5 at that evaluation.

A second readout, labelled ``top1_whitened`` / ``top5_whitened`` (``whitened``, on by default), tells
"no information" from "badly scaled information": the training features are PCA-whitened (centred,
rotated onto the covariance's eigenvectors, each direction scaled to unit variance; directions with
an eigenvalue below 1e-6 of the largest are dropped) and a full-batch multinomial logistic
regression (scikit-learn, L-BFGS, C = 1) is fitted on them; the test features get the same
transform. It is deterministic (one row, with the first probe seed) and needs no learning rate, so
a collapsed-looking feature whose information lies in low-variance directions still reads well.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import math
from pathlib import Path

import torch
from sklearn.linear_model import LogisticRegression

from harness.registry import PROTOCOLS
from harness.results import Predictions, ResultRow

from harness.contracts import Measure, Protocol, ProtocolContext
from .classifier import EvalHistory, HeadBudget, accuracy, cross_entropy, linear_head, top_classes
from harness.evaluation.features import extract_features
from harness.evaluation.scores import save_scores


@dataclass
class LinearOptions:
    steps: int = 0  # the budget in optimizer steps; 0 = ``epochs`` passes over the training features
    epochs: int = 160  # USDRL: the loop runs 10 + 150
    lr: float = 0.006  # USDRL NTU-60 xsub (0.03 for xview, 0.01 for PKU-II)
    milestones: list[float] = field(default_factory=lambda: [0.75, 0.875])  # epochs 120 and 140 of 160
    batch_size: int = 512
    momentum: float = 0.9
    weight_decay: float = 0.0
    eval_every: int = 5
    standardize: bool = False  # z-score features with training statistics (affine-free BN head)
    whitened: bool = True  # also report the PCA-whitened full-batch logistic-regression readout


def standardize(train_x: torch.Tensor, test_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Z-score both with the training features' statistics (a constant feature stays 0)."""
    mean, std = train_x.mean(0), train_x.std(0)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return (train_x - mean) / std, (test_x - mean) / std


def whitened_readout(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor
                     ) -> tuple[float, float]:
    """(top-1, top-5) of a logistic regression on PCA-whitened features (see the module docstring)."""
    return accuracy(whitened_logits(train_x, train_y, test_x, test_y), test_y.cpu())


def whitened_logits(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor
                    ) -> torch.Tensor:
    """The test class probabilities of :func:`whitened_readout` (−inf for classes absent from training)."""
    x = train_x.double().cpu()
    mean = x.mean(0)
    xc = x - mean
    evals, evecs = torch.linalg.eigh(xc.T @ xc / max(len(x) - 1, 1))
    keep = evals > evals.max().clamp(min=1e-30) * 1e-6
    w = evecs[:, keep] / evals[keep].sqrt()
    z_train, z_test = (xc @ w).numpy(), ((test_x.double().cpu() - mean) @ w).numpy()
    clf = LogisticRegression(max_iter=2000, C=1.0).fit(z_train, train_y.cpu().numpy())
    proba = torch.from_numpy(clf.predict_proba(z_test))
    logits = torch.full((len(z_test), int(max(int(train_y.max()), int(test_y.max())) + 1)), -math.inf,
                        dtype=torch.float64)
    logits[:, torch.as_tensor(clf.classes_)] = proba
    return logits


def train_linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                       test_y: torch.Tensor, num_classes: int, opt: LinearOptions,
                       seed: int) -> tuple[EvalHistory, torch.Tensor]:
    """SGD on cached features; returns the evaluation history and the final test logits."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    fc = linear_head(train_x.shape[1], num_classes).to(train_x.device)
    sgd = torch.optim.SGD(fc.parameters(), lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay)
    n = len(train_x)
    budget = HeadBudget.make(sgd, steps=opt.steps, epochs=opt.epochs, steps_per_epoch=-(-n // opt.batch_size),
                             milestones=opt.milestones)
    history = EvalHistory()
    step = 0
    for epoch in range(1, budget.epochs + 1):
        order = torch.randperm(n, generator=gen).to(train_x.device)
        for start in range(0, n, opt.batch_size):
            if step == budget.total:
                break
            budget.scheduler.step_update(step)
            idx = order[start:start + opt.batch_size]
            loss = cross_entropy(fc(train_x[idx]), train_y[idx])
            sgd.zero_grad(set_to_none=True)
            loss.backward()
            sgd.step()
            step += 1
        if epoch % opt.eval_every == 0 or epoch == budget.epochs:
            with torch.no_grad():
                logits = fc(test_x)
                history.add(epoch, *accuracy(logits, test_y), top=top_classes(logits))
    with torch.no_grad():
        return history, fc(test_x)


@PROTOCOLS.register("linear")
class LinearProtocol(Protocol):
    """Linear probe on the frozen pooled feature; final and best-of top-1/top-5."""

    name = "linear"
    plan_seeds = (0, 1, 2)  # three heads per backbone: probes are cheap
    fuses_streams = True  # 3s rows fuse the J/B/M streams' saved test scores (harness fuse)
    measures = (
        Measure("recog", "top1_best", "Recog.",
                "linear-evaluation top-1 accuracy, **best-of** (the maximum test top-1 over the probe's "
                "evaluations, which is what the papers report; docs/reference/protocols.md §1)", fused_metric="top1",
                proportion=True),
        Measure("recog_final", "top1", "Recog. final",
                "the same probe's **final-epoch** top-1 (its last evaluation: no choice made on the test set)",
                fused_metric="top1", proportion=True, beside="recog", tables=(1, 5)),
        Measure("recog_white", "top1_whitened", "Recog. whitened",
                "a second linear readout, **whitened**: a full-batch logistic regression on PCA-whitened "
                "features (no learning rate; tells no information from badly scaled information)", proportion=True),
    )
    Options = LinearOptions
    preset_defaults = {
        # 200 steps whatever the dataset's size (100 epochs of synthetic's 1,000 clips, 200 of MSR's 284)
        "cpu": {"steps": 200, "epochs": 0, "lr": 0.3, "milestones": [0.6, 0.8], "standardize": True},
        "smoke": {"epochs": 5, "lr": 0.3, "milestones": [0.8], "eval_every": 1, "standardize": True},
    }

    @staticmethod
    def score_file(run_dir: Path, dataset: str, split: str, seed: int) -> Path:
        return run_dir / "scores" / f"linear-{dataset}-{split}-seed{seed}.npz"

    def run(self, ctx: ProtocolContext) -> list[ResultRow]:
        ds, split = ctx.dataset, ctx.split
        backbone = ctx.make_backbone().to(ctx.device)
        common = dict(frames=ctx.cfg.data.frames, batch_size=ctx.cfg.protocol.batch_size, device=ctx.device)
        test_idx = ds.indices(split, "test")
        train_x, train_y = extract_features(backbone, ds, ds.indices(split, "train"), **common)
        test_x, test_y = extract_features(backbone, ds, test_idx, **common)
        raw_train_x, raw_test_x = train_x, test_x
        if self.options.standardize:
            train_x, test_x = standardize(train_x, test_x)
        rows = []
        for seed in ctx.cfg.protocol.seeds:
            history, logits = train_linear_probe(train_x, train_y, test_x, test_y, ds.num_classes,
                                                 self.options, seed)
            save_scores(self.score_file(ctx.run_dir, ds.kind, split, seed), logits, test_y, test_idx)
            preds = history.predictions(test_idx, test_y, ds)  # per-sample outputs, kept beside the store
            rows += [ctx.row(metric, value, seed=seed, predictions=preds.get(metric))
                     for metric, value in history.metrics().items()]
        if self.options.whitened:
            logits = whitened_logits(raw_train_x, train_y, raw_test_x, test_y)
            top1, top5 = accuracy(logits, test_y.cpu())
            pred = Predictions.classification(test_idx, test_y, topk=top_classes(logits), group="whitened",
                                              dataset=ds)
            extra = '{"readout": "PCA-whitened logistic regression"}'
            seed = ctx.cfg.protocol.seeds[0] if ctx.cfg.protocol.seeds else 0
            rows += [ctx.row("top1_whitened", top1, seed=seed, extra=extra, predictions=pred),
                     ctx.row("top5_whitened", top5, seed=seed, extra=extra, predictions=pred)]
        return rows
