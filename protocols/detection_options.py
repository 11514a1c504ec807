"""The detection protocol's options (:class:`DetectionOptions`, ``protocol.options``), the variants'
schedules (SSD's Protocol A for ``linear``, USDRL+'s Protocol B for ``finetune``; docs/reference/
protocols.md §5) with the small presets' departures, and :func:`resolve_options`, which fills them in
and checks them. :mod:`.detection` documents what every option does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.errors import HarnessError, UnknownNameError
from harness.evaluation.intervals import PKU_PAD_FRAMES, SEGMENT_RULES

VARIANT_DEFAULTS: dict[str, dict[str, Any]] = {
    # SSD (Protocol A): SGD 0.01, Nesterov, ×0.1 at 40, 60 epochs, batch 64
    "linear": {"epochs": 60, "lr": 0.01, "batch_size": 64, "milestones": [40 / 60], "nesterov": True},
    # USDRL+ (Protocol B): SGD 0.005 for fc and backbone, constant lr, batch 512, 150 epochs
    "finetune": {"epochs": 150, "lr": 0.005, "batch_size": 512, "milestones": [], "nesterov": False},
}
# The small presets z-score the frame features (``standardize``) and train 1,000 steps: a linear head
# then wants a larger step, fine-tuning twice USDRL+'s. Both decay ×0.1 for the last quarter (as SSD
# at 40 of 60, and as USDRL+'s never-called (120, 140) schedule meant to), so the final reading is
# not a noisy constant-lr snapshot (docs/reference-differences.md, Detection)
SMALL_PRESET_SCHEDULE = {"linear": {"lr": 0.1, "milestones": [0.75]}, "finetune": {"lr": 0.01, "milestones": [0.75]}}
PRESET_VARIANT_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {"cpu": SMALL_PRESET_SCHEDULE,
                                                                 "smoke": SMALL_PRESET_SCHEDULE}


@dataclass
class DetectionOptions:
    variant: str = "linear"  # linear | finetune
    steps: int = 0  # the budget in optimizer steps; 0 = ``epochs`` passes over the training windows
    epochs: int | None = None  # None: the variant's default (60 / 150)
    lr: float | None = None  # None: 0.01 (linear) / 0.005 (finetune)
    batch_size: int | None = None  # windows per step; None: 64 / 512
    milestones: list[float] | None = None  # lr × 0.1 after these fractions of the budget; None: [2/3] / []
    nesterov: bool | None = None  # None: True (linear, SSD) / False (finetune)
    momentum: float = 0.9
    weight_decay: float = 0.0
    windows_per_video: int = 16  # random training windows per video and epoch (SSD draws 16)
    frame_step: int = 1  # a window reads every frame_step-th frame, spanning frames·frame_step; 0 = from the data
    stride: int = 0  # test window stride in video frames; 0 = half a window's span
    segments: str = "naive"  # naive (§5.1) | split (§5.1 cut at lasting class changes) | class_threshold (§5.2)
    min_split: int = 20  # split: a class change must last this many frames to start a new interval
    smooth_k: int = 10  # mean-filter half-width: window 2k frames (k = 10 → 20 frames)
    threshold: float = 0.4  # activity 1 - P(bg) >= threshold
    pad_to: int = PKU_PAD_FRAMES  # pad posteriors with background to this length (0 = none)
    standardize: bool = False  # z-score frame features before the head (running training statistics)
    class_threshold: float = 0.02  # §5.2 per-class threshold
    min_train_actions: int = 5  # mAP_a_trained: classes with at least this many training actions
    theta: float = 0.5
    thetas: list[float] = field(default_factory=lambda: [0.1, 0.3, 0.5])
    eval_every: int = 0  # 0: score only after the last epoch
    num_videos: int = 0  # a generated untrimmed set (synthetic): videos to make; 0 = its default
    max_test_videos: int = 0  # 0 = all; a cap for quick runs


@dataclass
class Resolved:
    """Options with the variant defaults filled in and checked."""

    variant: str
    epochs: int
    lr: float
    batch_size: int
    milestones: list[float]  # fractions of the budget
    nesterov: bool
    opt: DetectionOptions
    auto_step: bool = False  # frame_step came from the training actions' median length (option 0)


def resolve_options(opt: DetectionOptions, preset: str = "paper") -> Resolved:
    """Fill the variant's defaults (the reference's, with ``preset``'s departures) into ``opt``."""
    if opt.variant not in VARIANT_DEFAULTS:
        raise UnknownNameError("detection variant", opt.variant, list(VARIANT_DEFAULTS))
    if opt.segments not in SEGMENT_RULES:
        raise UnknownNameError("detection segments rule", opt.segments, list(SEGMENT_RULES))
    d = {**VARIANT_DEFAULTS[opt.variant], **PRESET_VARIANT_DEFAULTS.get(preset, {}).get(opt.variant, {})}
    try:
        r = Resolved(
            variant=opt.variant,
            epochs=int(d["epochs"] if opt.epochs is None else opt.epochs),
            lr=float(d["lr"] if opt.lr is None else opt.lr),
            batch_size=int(d["batch_size"] if opt.batch_size is None else opt.batch_size),
            milestones=[float(m) for m in (d["milestones"] if opt.milestones is None else opt.milestones)],
            nesterov=bool(d["nesterov"] if opt.nesterov is None else opt.nesterov),
            opt=opt,
        )
    except (TypeError, ValueError) as exc:
        raise HarnessError(f"protocol.options (detection): {exc}") from None
    if (r.epochs < 1 and opt.steps < 1) or r.batch_size < 1 or opt.windows_per_video < 1:
        raise HarnessError("protocol.options (detection): epochs (or steps), batch_size and windows_per_video "
                           "must be >= 1")
    if opt.frame_step < 0:
        raise HarnessError("protocol.options (detection): frame_step must be >= 1, or 0 (from the training "
                           f"actions' median length), got {opt.frame_step}")
    for t in [opt.theta, *opt.thetas]:
        if not 0 < t <= 1:
            raise HarnessError(f"protocol.options (detection): θ must lie in (0, 1], got {t}")
    if r.nesterov and opt.momentum <= 0:
        r.nesterov = False  # torch refuses Nesterov without momentum
    return r
