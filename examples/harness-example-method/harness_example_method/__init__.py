"""An example third-party method: SimSiam on the harness's shared encoders.

SimSiam (Chen & He, CVPR 2021): two augmented views, one encoder + projector f, a predictor h, and
the symmetric negative cosine similarity with a stop-gradient on the target branch::

    z1, z2 = f(x1), f(x2);   p1, p2 = h(z1), h(z2)
    L = −½·cos(p1, sg(z2)) − ½·cos(p2, sg(z1))

Everything the harness needs is here:

- ``Options`` (checked against ``method.options``), ``variants`` and ``preset_defaults``;
- ``make_views`` (batched, on the training device, from the step generator);
- ``forward`` returning ``{"loss": ..., other terms}``;
- ``backbone()`` returning a :class:`Backbone` (clip → :class:`EncoderOutput`) that the engine exports
  and the protocols evaluate.

The harness discovers the class through the ``harness.methods`` entry point in this package's
``pyproject.toml``; the entry point's name (``example_simsiam``) is the method's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from harness.contracts import Backbone, DataInfo, Method, ModalityBackbone, build_encoder

__all__ = ["SimSiam", "SimSiamOptions"]


@dataclass
class SimSiamOptions:
    proj_dim: int = 0  # projector output width; 0 = the encoder's feature_dim
    pred_hidden: int = 0  # predictor bottleneck; 0 = proj_dim // 4
    crop_min: float = 0.1  # crop-resize scale U(crop_min, 1)


class SimSiam(Method):
    """SimSiam (example plugin): stop-gradient siamese learning without negatives."""

    name: ClassVar[str] = "example_simsiam"
    label: ClassVar[str] = "SimSiam (example plugin)"
    paradigm: ClassVar[str] = "feature decorrelation"
    Options: ClassVar[type] = SimSiamOptions
    variants: ClassVar[dict[str, dict[str, Any]]] = {"default": {}, "light_crop": {"crop_min": 0.5}}
    preset_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    num_views: ClassVar[int] = 2

    def __init__(self, cfg, info: DataInfo):
        super().__init__(cfg, info)
        o: SimSiamOptions = self.options
        encoder = build_encoder(cfg, info)  # the configured encoder: --set encoder=sttr works
        self.net = ModalityBackbone(encoder, self.modality_name(cfg), info.topology)
        f = encoder.feature_dim
        p = o.proj_dim or f
        self.projector = nn.Sequential(
            nn.Linear(f, f, bias=False), nn.BatchNorm1d(f), nn.ReLU(inplace=True),
            nn.Linear(f, p, bias=False), nn.BatchNorm1d(p, affine=False))
        h = o.pred_hidden or max(1, p // 4)
        self.predictor = nn.Sequential(nn.Linear(p, h, bias=False), nn.BatchNorm1d(h), nn.ReLU(inplace=True),
                                       nn.Linear(h, p))

    def make_views(self, x: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None = None):
        from harness.methods.views import usdrl_views  # USDRL's view recipe (shared), built on harness.augment

        return usdrl_views(x, lengths, num_views=2, frames=self.info.frames, generator=generator,
                           ratio=(self.options.crop_min, 1.0))

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        z1, z2 = (self.projector(self.net(v).pooled) for v in views)
        p1, p2 = self.predictor(z1), self.predictor(z2)
        loss = -(F.cosine_similarity(p1, z2.detach(), dim=1).mean()
                 + F.cosine_similarity(p2, z1.detach(), dim=1).mean()) / 2
        return {"loss": loss, "z_std": F.normalize(z1.detach(), dim=1).std(dim=0).mean()}

    def backbone(self) -> Backbone:
        return self.net
