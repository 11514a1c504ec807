"""Reference points for every table: a supervised upper bound and a random-initialisation floor.

``supervised`` — the configured encoder (``cfg.encoder``, DSTE by default, with the method's modality
inside the backbone) + a linear head Linear(feature_dim, num_classes), trained with cross-entropy on
the labels (``needs_labels = True``: the engine passes ``batch.labels``). Light augmentation: a
temporal crop-resize with scale U(0.5, 1) to T frames and a shear with off-diagonals U(−0.5, 0.5)
(``method.options``: ``crop_min``, ``shear``; ``label_smoothing`` 0 by default). The exported backbone
is the trained encoder; protocols put their own heads on it (a linear probe on it is then close to
the supervised accuracy, the upper bound the self-supervised rows are read against).

``random`` — ``pretrains = False``: nothing is trained; the engine exports an untrained encoder of
the same shape (DSTE/STTR with their reference initialisation, the point every pretraining method
starts from, seeded by ``train.seed``). It is the floor: what a probe gets from random features.

Both use the shared encoders, so they bracket the method rows with the same architecture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from harness.config import RunConfig
from harness.data.modality import MODALITIES
from harness.errors import HarnessError, UnknownNameError
from harness.registry import METHODS

from .base import DataInfo, Method
from .encoders.base import build_encoder
from .usdrl import USDRLBackbone


def _backbone(cfg: RunConfig, info: DataInfo, who: str) -> USDRLBackbone:
    if cfg.method.modality not in MODALITIES:
        raise UnknownNameError(f"{who} modality", cfg.method.modality, list(MODALITIES))
    encoder = build_encoder(cfg.encoder, frames=info.frames, joints=info.joints, persons=info.persons,
                            reference_init=True)
    return USDRLBackbone(encoder, cfg.method.modality, info.topology)


@dataclass
class SupervisedOptions:
    crop_min: float = 0.5  # crop-resize scale U(crop_min, 1)
    shear: float = 0.5  # shear off-diagonals U(−shear, shear); 0 = none
    label_smoothing: float = 0.0


@METHODS.register("supervised")
class Supervised(Method):
    """Supervised upper bound: the shared encoder + a linear head, cross-entropy on the labels."""

    name: ClassVar[str] = "supervised"
    Options: ClassVar[type] = SupervisedOptions
    variants: ClassVar[dict[str, dict[str, Any]]] = {"default": {}, "no_aug": {"crop_min": 1.0, "shear": 0.0}}
    num_views: ClassVar[int] = 1
    needs_labels: ClassVar[bool] = True

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        if info.num_classes < 2:
            raise HarnessError(f"supervised needs a labelled dataset with at least 2 classes, got {info.num_classes}")
        self.net = _backbone(cfg, info, "supervised")
        self.fc = nn.Linear(self.net.feature_dim, info.num_classes)

    def make_views(self, x: torch.Tensor, lengths: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        from harness.data.augment import Compose, CropResize, Shear

        o: SupervisedOptions = self.options
        steps: list = [CropResize(self.info.frames, (o.crop_min, 1.0))]
        if o.shear > 0:
            steps.append(Shear(o.shear, p=1.0))
        return Compose(*steps)(x, lengths, generator)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.net(x).pooled)

    def forward(self, views: torch.Tensor | Sequence[torch.Tensor],
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if labels is None:
            raise HarnessError("supervised needs labels (method.needs_labels)")
        x = views if isinstance(views, torch.Tensor) else views[0]
        logits = self.logits(x).float()
        labels = labels.to(logits.device).long()
        loss = F.cross_entropy(logits, labels, label_smoothing=self.options.label_smoothing)
        acc = (logits.argmax(dim=1) == labels).float().mean()
        return {"loss": loss, "acc": acc.detach()}

    def backbone(self) -> USDRLBackbone:
        return self.net


@METHODS.register("random")
class RandomInit(Method):
    """Random-initialisation floor: an untrained encoder of the same shape (nothing is pretrained)."""

    name: ClassVar[str] = "random"
    Options: ClassVar[type | None] = None
    variants: ClassVar[dict[str, dict[str, Any]]] = {"default": {}}
    num_views: ClassVar[int] = 1
    pretrains: ClassVar[bool] = False

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        if cfg.method.variant != "default":
            raise UnknownNameError("random variant", cfg.method.variant, ["default"])
        self.net = _backbone(cfg, info, "random")

    def make_views(self, x: torch.Tensor, lengths: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        from harness.data.resample import resample

        return resample(x, lengths.to(x.device), self.info.frames)

    def forward(self, views: Any, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        raise HarnessError("the random-init floor has nothing to train (pretrains = False)")

    def backbone(self) -> USDRLBackbone:
        return self.net
