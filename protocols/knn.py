"""kNN retrieval (protocols.md §2): frozen encoder, L2-normalised pooled features, gallery = train split.

``knn1`` is what every reference reports (scikit-learn ``KNeighborsClassifier(n_neighbors=1,
metric="cosine")``): the label of the most cosine-similar training sample. ``knn20_weighted`` is
the temperature-weighted k = 20 vote of the instance-discrimination literature (weights
exp(sim / 0.07)), reported under its own metric name. Both run as batched matrix products on the
device, query chunk by query chunk, so NTU-120 sizes (63k × 51k) need no per-query loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from harness.registry import PROTOCOLS
from harness.results import ResultRow

from .base import Protocol, ProtocolContext
from .features import extract_features
from .scores import save_scores


def knn_predict(gallery: torch.Tensor, gallery_labels: torch.Tensor, queries: torch.Tensor, *, k: int,
                num_classes: int, temperature: float | None = None, chunk: int = 4096) -> torch.Tensor:
    """Class scores (Q, num_classes) from the k most cosine-similar gallery items.

    temperature None: plain majority vote (k = 1 → the nearest neighbour's label). Exactly equal
    similarities are broken by ``topk``'s order, which may differ from scikit-learn's.
    """
    g = F.normalize(gallery.float(), dim=1)
    q = F.normalize(queries.float(), dim=1)
    k = min(k, len(g))
    out = []
    for start in range(0, len(q), chunk):
        sim = q[start:start + chunk] @ g.T  # (q, G)
        top_sim, top_idx = sim.topk(k, dim=1)  # sorted, ties keep the lower index first
        votes = torch.ones_like(top_sim) if temperature is None else (top_sim / temperature).exp()
        scores = torch.zeros(len(top_idx), num_classes, device=q.device)
        scores.scatter_add_(1, gallery_labels[top_idx], votes)
        out.append(scores)
    return torch.cat(out) if out else torch.zeros(0, num_classes, device=q.device)


@dataclass
class KnnOptions:
    k: int = 20  # neighbours of the weighted vote (k = 1 is always reported too)
    temperature: float = 0.07


@PROTOCOLS.register("knn")
class KnnProtocol(Protocol):
    """kNN retrieval: k = 1 cosine on L2-normalised features (the papers' metric) and weighted k = 20."""

    name = "knn"
    Options = KnnOptions

    def run(self, ctx: ProtocolContext) -> list[ResultRow]:
        ds, split = ctx.dataset, ctx.split
        backbone = ctx.make_backbone().to(ctx.device)
        common = dict(frames=ctx.cfg.data.frames, batch_size=ctx.cfg.protocol.batch_size, device=ctx.device)
        train_idx, test_idx = ds.indices(split, "train"), ds.indices(split, "test")
        g, gl = extract_features(backbone, ds, train_idx, **common)
        q, ql = extract_features(backbone, ds, test_idx, **common)
        nn1 = knn_predict(g, gl, q, k=1, num_classes=ds.num_classes)
        weighted = knn_predict(g, gl, q, k=self.options.k, num_classes=ds.num_classes,
                               temperature=self.options.temperature)
        save_scores(ctx.run_dir / "scores" / f"knn-{ds.kind}-{split}.npz", weighted, ql, test_idx)
        acc1 = (nn1.argmax(1) == ql).float().mean().item()
        acc_w = (weighted.argmax(1) == ql).float().mean().item()
        extra = f'{{"k": {self.options.k}, "temperature": {self.options.temperature}}}'
        return [ctx.row("knn1", acc1), ctx.row(f"knn{self.options.k}_weighted", acc_w, extra=extra)]
