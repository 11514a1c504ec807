"""Reference points for every table: a supervised upper bound and a random-initialisation floor.

``supervised`` — the configured encoder (``cfg.encoder``, DSTE by default, with the method's modality
inside the backbone) + a linear head Linear(feature_dim, num_classes), trained with cross-entropy on
the labels (``needs_labels = True``: the engine passes ``batch.labels``). Light augmentation: a
temporal crop-resize with scale U(0.5, 1) to T frames and a shear with off-diagonals U(−0.5, 0.5)
(``method.options``: ``crop_min``, ``shear``; ``label_smoothing`` 0 by default). The exported backbone
is the trained encoder; protocols put their own heads on it (a linear probe on it is then close to
the supervised accuracy, the upper bound the self-supervised rows are read against).

``random`` — ``pretrains = False``: nothing is trained; the engine exports an untrained encoder of
the same shape (any registered encoder: DSTE/STTR, MAMP's ViT, UmURL's fusion encoder, with its
reference initialisation and the same ``encoder.options`` a method trains it with, seeded by
``train.seed``). It is every backbone's floor: ``random`` with ``encoder=<the method's backbone>``
is what a probe gets from that backbone before any training, and the tables put each method beside it.

Both use the registered encoders, so they bracket the method rows with the same architecture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from harness.augment import Compose, CropResize, Shear
from harness.config import RunConfig
from harness.contracts import FUSED_MODALITY, DataInfo, Method, ModalityBackbone, TableRow, build_encoder
from harness.transforms.modality import MODALITIES
from harness.transforms.resample import resample
from harness.errors import HarnessError, UnknownNameError
from harness.registry import METHODS


def _backbone(cfg: RunConfig, info: DataInfo, method: type[Method]) -> ModalityBackbone:
    """The configured encoder with its reference initialisation, on the run's modality."""
    encoder = build_encoder(cfg, info, reference_init=True)
    return ModalityBackbone(encoder, method.modality_name(cfg), info.topology)


@dataclass
class SupervisedOptions:
    crop_min: float = 0.5  # crop-resize scale U(crop_min, 1)
    shear: float = 0.5  # shear off-diagonals U(−shear, shear); 0 = none
    label_smoothing: float = 0.0


@METHODS.register("supervised")
class Supervised(Method):
    """Supervised upper bound: the shared encoder + a linear head, cross-entropy on the labels."""

    name: ClassVar[str] = "supervised"
    label: ClassVar[str] = "Supervised"
    paradigm: ClassVar[str] = "reference"
    table_rows = (TableRow("Supervised (harness reference)", tables=(1, 2, 3, 4, 6)),)
    table_order: ClassVar[float] = 90
    Options: ClassVar[type] = SupervisedOptions
    variants: ClassVar[dict[str, dict[str, Any]]] = {"default": {}, "no_aug": {"crop_min": 1.0, "shear": 0.0}}
    num_views: ClassVar[int] = 1
    needs_labels: ClassVar[bool] = True

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        if info.num_classes < 2:
            raise HarnessError(f"supervised needs a labelled dataset with at least 2 classes, got {info.num_classes}")
        self.net = _backbone(cfg, info, type(self))
        self.fc = nn.Linear(self.net.feature_dim, info.num_classes)

    def make_views(self, x: torch.Tensor, lengths: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
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

    def backbone(self) -> ModalityBackbone:
        return self.net


@METHODS.register("random")
class RandomInit(Method):
    """Random-initialisation floor: an untrained encoder of the same shape (nothing is pretrained)."""

    name: ClassVar[str] = "random"
    label: ClassVar[str] = "Random init"
    paradigm: ClassVar[str] = "reference"
    table_rows = (TableRow("Random init (harness reference)", modality=None, tables=(1, 2, 3, 4, 6)),)
    table_order: ClassVar[float] = 100
    modalities: ClassVar[tuple[str, ...]] = MODALITIES + (FUSED_MODALITY,)
    is_floor: ClassVar[bool] = True
    Options: ClassVar[type | None] = None
    variants: ClassVar[dict[str, dict[str, Any]]] = {"default": {}}
    num_views: ClassVar[int] = 1
    pretrains: ClassVar[bool] = False

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        if cfg.method.variant != "default":
            raise UnknownNameError("random variant", cfg.method.variant, ["default"])
        self.net = _backbone(cfg, info, type(self))

    def make_views(self, x: torch.Tensor, lengths: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        return resample(x, lengths.to(x.device), self.info.frames)

    def forward(self, views: Any, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        raise HarnessError("the random-init floor has nothing to train (pretrains = False)")

    def backbone(self) -> ModalityBackbone:
        return self.net
