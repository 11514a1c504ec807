"""kNN retrieval (docs/reference/protocols.md §2): frozen encoder, L2-normalised pooled features, gallery = train split.

``knn1`` is what every reference reports (scikit-learn ``KNeighborsClassifier(n_neighbors=1,
metric="cosine")``): the label of the most cosine-similar training sample. ``knn20_weighted`` is
the temperature-weighted k = 20 vote of the instance-discrimination literature (weights
exp(sim / 0.07)), reported under its own metric name. Both run as batched matrix products on the
device, query chunk by query chunk, so NTU-120 sizes (63k × 51k) need no per-query loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.contracts import Measure, Protocol, ProtocolContext
from harness.evaluation.features import extract_features
from harness.evaluation.nearest import knn_predict
from harness.registry import PROTOCOLS
from harness.results import Predictions, ResultRow
from harness.evaluation.scores import save_scores

from .classifier import top_classes


@dataclass
class KnnOptions:
    k: int = 20  # neighbours of the weighted vote (k = 1 is always reported too)
    temperature: float = 0.07


@PROTOCOLS.register("knn")
class KnnProtocol(Protocol):
    """kNN retrieval: k = 1 cosine on L2-normalised features (the papers' metric) and weighted k = 20."""

    name = "knn"
    seeded = False  # deterministic: no head, no seeds
    measures = (Measure("retrieval", "knn1", "Retrieval",
                        "kNN retrieval top-1 (k = 1, cosine on L2-normalised features; gallery = train split, "
                        "queries = test split; docs/reference/protocols.md §2)", proportion=True),)
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
        pred1, pred_w = nn1.argmax(1), weighted.argmax(1)
        acc1 = (pred1 == ql).float().mean().item()
        acc_w = (pred_w == ql).float().mean().item()
        extra = f'{{"k": {self.options.k}, "temperature": {self.options.temperature}}}'
        # per-sample outputs, kept beside the store: the predicted class, and the weighted vote's top 5
        p1 = Predictions.classification(test_idx, ql, pred=pred1, group="knn1", dataset=ds)
        pw = Predictions.classification(test_idx, ql, pred=pred_w, topk=top_classes(weighted),
                                        group=f"knn{self.options.k}_weighted", dataset=ds)
        return [ctx.row("knn1", acc1, predictions=p1),
                ctx.row(f"knn{self.options.k}_weighted", acc_w, extra=extra, predictions=pw)]
