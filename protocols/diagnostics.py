"""``features``: collapse diagnostics of a backbone's pooled features on the evaluation split's test part.

Rows ``eff_rank``, ``top1_share``, ``mean_cos`` and ``mean_std`` (:mod:`harness.evaluation.collapse`)
on the features linear probing and kNN read (frozen backbone, eval mode, the whole valid range
resampled). They are shown in the diagnostics table and beside Table 1, so a reader can tell a
representation that collapsed (all variance in one direction) from one a probe scores badly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from harness.contracts import Measure, Protocol, ProtocolContext
from harness.evaluation.collapse import collapsed, feature_statistics
from harness.evaluation.features import extract_features
from harness.registry import PROTOCOLS

METRICS = ("eff_rank", "top1_share", "mean_cos", "mean_std")


@dataclass
class FeaturesOptions:
    part: str = "test"  # the split part whose features are measured
    max_samples: int = 0  # 0 = all; a cap (the first samples of the part)


@PROTOCOLS.register("features")
class FeaturesProtocol(Protocol):
    """Collapse diagnostics of the pooled features: effective rank, top direction share, cosine, std."""

    name = "features"
    seeded = False
    measures = (
        Measure("erank", "eff_rank", "eff. rank",
                "the effective rank of the pooled test features (exp of the entropy of the normalised "
                "singular values; 1 = collapsed to one direction)", scale=1.0),
        Measure("top1_share", "top1_share", "top direction %",
                "share of the feature variance in the first principal direction"),
        Measure("mean_cos", "mean_cos", "mean cosine ×100", "mean cosine similarity between distinct test samples"),
        Measure("mean_std", "mean_std", "std ×100",
                "mean per-dimension std of the L2-normalised features (1/√D when isotropic)"),
    )
    Options = FeaturesOptions

    def run(self, ctx: ProtocolContext) -> list:
        ds, opt = ctx.dataset, self.options
        idx = ds.indices(ctx.split, opt.part)
        if opt.max_samples:
            idx = idx[: opt.max_samples]
        backbone = ctx.make_backbone().to(ctx.device)
        x, _ = extract_features(backbone, ds, idx, frames=ctx.cfg.data.frames, batch_size=ctx.cfg.protocol.batch_size,
                                device=ctx.device)
        stats = feature_statistics(x)
        extra = json.dumps({"part": opt.part, "samples": int(len(idx)), "dims": int(stats["dims"]),
                            "collapsed": collapsed(stats)}, sort_keys=True)
        return [ctx.row(m, stats[m], extra=extra) for m in METRICS]
