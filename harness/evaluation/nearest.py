"""Cosine k-nearest-neighbour prediction on L2-normalised features (docs/reference/protocols.md §2),
as batched matrix products on the features' device, query chunk by query chunk."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
