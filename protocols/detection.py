"""Action detection on untrimmed sequences (PKU-MMD I; docs/reference/protocols.md §5): dense
frame-wise prediction. This module holds the registered protocol, scoring, the saved files and the
rows; the options and schedules are :mod:`.detection_options`, windows and targets
:mod:`.detection_data`, the head, its training epoch and the test posteriors :mod:`.detection_head`,
subset means and diagnostics :mod:`.detection_report` (the names are re-exported here).

A per-frame linear head with ``C + 1`` outputs (0 = background, c = class c, i.e. dataset label
c − 1) is trained on ``backbone.frame_features`` of ``cfg.data.frames``-frame windows:

* a window reads T frames, every ``frame_step``-th one (1 = consecutive, as USDRL+'s 64-frame
  windows; SSD's Protocol A reads every 3rd–5th), so it spans S = T·frame_step video frames;
  ``frame_step = 0`` takes round(median training action length / T), so a window spans about one
  action, as the pretraining clips do (a fixed step that spans under 2/3 or over 3/2 of that gets a
  note on stderr);
* training: ``windows_per_video`` random windows per training video and epoch (start uniform in
  [0, L − S]); per-frame targets are label + 1 on every interval [start, end) of ``intervals.csv``
  and 0 elsewhere, taken at the frames read; frames past a short video's end are zero-padded and
  ignored by the loss;
* test: sliding windows with ``stride`` (≤ S, default S/2; the last window ends at the video's end)
  cover every frame; window output k stands for the ``frame_step`` frames from the k-th frame read,
  and each frame's posterior is the mean softmax over the windows covering it.

Variants (option ``variant``):

* ``linear``: the encoder is frozen and kept in eval mode; only the head trains (SSD's Protocol A
  optimiser: SGD lr 0.01, momentum 0.9, Nesterov, decay ×0.1 after 40 of 60 epochs (milestone
  40/60), batch 64);
* ``finetune``: the whole network trains with the encoder in eval mode (BatchNorm statistics and
  DropPath frozen), as USDRL+'s Protocol B: SGD lr 0.005, momentum 0.9, constant lr, batch 512,
  150 epochs.

The budget is ``steps`` optimizer steps, or ``epochs`` passes over the training windows when
``steps`` is 0; ``milestones`` are fractions of it.

Frames → intervals (``segments``): ``naive`` is §5.1 — pad the posteriors to ``pad_to`` frames with
P(bg) = 1 (9,000 in the reference; 0 = no padding), mean filter with half-width ``smooth_k``
(window = 2·smooth_k frames: k before, the frame, k − 1 after; the default k = 10 is the 20-frame
window), activity 1 − P(bg) ≥ ``threshold`` (0.4), one interval per active run with the class and
score of the run-mean posterior. ``split`` cuts those runs where the most likely class changes for
at least ``min_split`` frames (neighbouring actions behind short gaps). ``class_threshold`` is §5.2:
runs of p_c > ``class_threshold``.

Scores (every test video has a prediction file, so the official, SSD and USDRL+ mAP_v agree; a test
video without GT scores 0 in mAP_v, as in the official ``ap``):
``mAP_a`` / ``mAP_v`` / ``F1`` / ``AP`` / ``2DAP`` from the official PKU-MMD scorer (mAP_a summed over
the dataset's C classes and divided by C), and ``mAP_a_voc`` from the community VOC-style scorer,
at θ = ``theta``; ``mAP_a@θ``, ``mAP_v@θ`` and ``mAP_a_voc@θ`` for every θ in ``thetas`` (θ also in
the row's ``extra``); ``mAP_a_present`` / ``mAP_a_trained`` (and ``@θ``) average the same per-class
AP over the classes in the test ground truth / those with ``min_train_actions`` training actions too
(:mod:`.detection_report`); ``frame_acc_action`` / ``frame_acc_background`` are the per-frame argmax
accuracies on action and background frames. With ``eval_every`` > 0 the test split is also scored every that many epochs
and ``*_best`` rows hold each metric's maximum over evaluations (the references' best-of).

Files under ``run_dir/detection/<variant>-<dataset>-<split>-seed<k>/``: ``pred/<video>.txt``
(``label,start,end,score``), ``gt/<video>.txt`` (the GT from intervals.csv, ``label,start,end,1``),
``posteriors.npz`` (per-video (L, C + 1) float32 frame posteriors), ``diagnostics.csv`` (per video:
frame accuracies, true / predicted / merged interval counts; a collapsed or merging head is also
warned about on stderr) and ``metrics.json``;
``harness eval-detection --pred .../pred --gt .../gt --num-classes C`` rescores them exactly. The rows
of the final evaluation also carry its scored intervals, ground truth and per-frame argmax as
per-sample predictions, kept beside the results store (:mod:`harness.results.predictions`).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import atomic
from harness.config import DataConfig
from harness.data.prepared.format import PreparedDataset
from harness.errors import DataError
from harness.registry import PROTOCOLS
from harness.results import Predictions, ResultRow

from harness.contracts import Measure, Protocol, ProtocolContext, ReproduceFlag
from harness.evaluation import pku_scorer as S
from harness.evaluation.intervals import segments_by_rule

from .classifier import HeadBudget
# the data and model halves live in their own modules; their names stay importable from here
from .detection_data import frame_targets, read_window, window_frames, window_starts
from .detection_head import IGNORE, FrameHead, frame_posteriors, train_epoch
from .detection_options import (PRESET_VARIANT_DEFAULTS, VARIANT_DEFAULTS, DetectionOptions, Resolved,
                                resolve_options)
from . import detection_report as report

__all__ = ["IGNORE", "PRESET_VARIANT_DEFAULTS", "VARIANT_DEFAULTS", "DetectionOptions", "DetectionProtocol",
           "FrameHead", "Resolved", "frame_posteriors", "frame_targets", "read_window", "resolve_options",
           "train_epoch", "window_frames", "window_starts"]


def _safe_name(name: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]", "_", str(name)) or "video"
    out, k = base, 1
    while out in used:
        k += 1
        out = f"{base}~{k}"
    used.add(out)
    return out


@PROTOCOLS.register("detection")
class DetectionProtocol(Protocol):
    """Frame-wise action detection on untrimmed videos (PKU-MMD I): official and VOC-style mAP."""

    name = "detection"
    reproduce_flags = (ReproduceFlag("--detection-variant", "variant", ("finetune", "linear"), "finetune",
                                     "Table 4: fine-tune the whole model as in the paper (finetune) or train the "
                                     "frame head on the frozen encoder (linear)"),)
    _theta = (("theta", 0.5),)
    measures = (
        Measure("mAP_a", "mAP_a", "mAP_a",
                "action-detection mAP_a / mAP_v at θ = 0.5 from the official PKU-MMD scorer "
                "(docs/reference/protocols.md §5–6), frame-wise head on the pretrained encoder",
                sub_key="variant", sub_default="finetune", extra_equals=_theta),
        Measure("mAP_v", "mAP_v", "mAP_v", sub_key="variant", sub_default="finetune", extra_equals=_theta),
        Measure("mAP_a_present", "mAP_a_present", "mAP_a present",
                "on a subset of a dataset also **mAP_a present**: the same per-class AP averaged over the "
                "classes with a test action, and **mAP_a trained**: over those with at least 5 training "
                "actions too (the official mAP_a divides by every class of the dataset)",
                sub_key="variant", sub_default="finetune", extra_equals=_theta, optional=True, tables=(4,)),
        Measure("mAP_a_trained", "mAP_a_trained", "mAP_a trained", sub_key="variant", sub_default="finetune",
                extra_equals=_theta, optional=True, tables=(4,)),
    )
    Options = DetectionOptions
    variants = ("linear", "finetune")
    untrimmed = True
    moved_options = {"dataset": "protocol.dataset (or --eval-dataset)"}
    # cpu: 32-frame windows read every 4th frame (128 frames, about one synthetic action), as the
    # pretraining clips, resampled to 32 frames from 40-300, see an action at a similar time scale;
    # frame_step 0 fits the step to the data's actions (2 on PKU-MMD I, whose median action is 77
    # frames; run() says so when a fixed step spans far more or less than one action)
    preset_defaults = {
        "cpu": {"steps": 1000, "batch_size": 64, "windows_per_video": 32, "frame_step": 4, "standardize": True},
        "smoke": {"epochs": 2, "batch_size": 16, "windows_per_video": 2, "frame_step": 2, "standardize": True},
    }

    # --- dataset ---------------------------------------------------------------------------------
    def eval_data(self, data: DataConfig) -> DataConfig:
        if not self.options.num_videos:
            return data
        return dataclasses.replace(data, options={**data.options, "num_videos": self.options.num_videos})

    @classmethod
    def resolve_options(cls, cfg) -> DetectionOptions:
        """The options with the variant's (and the preset's) schedule filled in, so the configuration
        hash covers the values that run."""
        opt = super().resolve_options(cfg)
        r = resolve_options(opt, cfg.preset)
        return dataclasses.replace(opt, epochs=r.epochs, lr=r.lr, batch_size=r.batch_size, milestones=r.milestones,
                                   nesterov=r.nesterov)

    def dataset(self, ctx: ProtocolContext) -> PreparedDataset:
        ds = ctx.dataset
        if not ds.untrimmed or ds.intervals is None:
            raise DataError(ds.root, "detection needs an untrimmed dataset (with intervals.csv)")
        return ds

    # --- run -------------------------------------------------------------------------------------
    def run(self, ctx: ProtocolContext) -> list[ResultRow]:
        r = resolve_options(self.options, self.cfg.preset)
        ds = self.dataset(ctx)
        split = ctx.split
        train_idx = ds.indices(split, "train")
        test_idx = ds.indices(split, "test")
        train_idx = train_idx[ds.lengths[train_idx] > 0]  # an empty video has no frame to learn from
        cap = ctx.cfg.data.max_train_samples
        if cap and cap < len(train_idx):
            train_idx = train_idx[:cap]
        if r.opt.max_test_videos and r.opt.max_test_videos < len(test_idx):
            test_idx = test_idx[: r.opt.max_test_videos]
        if not r.opt.frame_step:
            step = report.auto_frame_step(ds, train_idx, ctx.cfg.data.frames)
            r = dataclasses.replace(r, opt=dataclasses.replace(r.opt, frame_step=step), auto_step=True)
        else:
            note = report.time_scale_note(ds, train_idx, ctx.cfg.data.frames, r.opt.frame_step)
            if note:
                print(f"harness: note: detection: {note}", file=sys.stderr)
        subsets = report.class_subsets(ds, train_idx, test_idx, r.opt.min_train_actions)
        rows: list[ResultRow] = []
        for seed in ctx.cfg.protocol.seeds:
            rows += self._run_seed(ctx, ds, split, train_idx, test_idx, r, seed, subsets)
        return rows

    def _run_seed(self, ctx: ProtocolContext, ds: PreparedDataset, split: str, train_idx: np.ndarray,
                  test_idx: np.ndarray, r: Resolved, seed: int, subsets: dict[str, list[int]]) -> list[ResultRow]:
        frames = ctx.cfg.data.frames
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        backbone = ctx.make_backbone().to(ctx.device)
        model = FrameHead(backbone, ds.num_classes + 1, frames, r.opt.standardize).to(ctx.device)
        if r.variant == "linear":
            for p in backbone.parameters():
                p.requires_grad_(False)
            params = list(model.fc.parameters())
        else:
            params = [p for p in model.parameters() if p.requires_grad]
        sgd = torch.optim.SGD(params, lr=r.lr, momentum=r.opt.momentum, nesterov=r.nesterov,
                              weight_decay=r.opt.weight_decay)
        windows = len(train_idx) * r.opt.windows_per_video
        budget = HeadBudget.make(sgd, steps=r.opt.steps, epochs=r.epochs, steps_per_epoch=-(-windows // r.batch_size),
                                 milestones=r.milestones)
        targets = {int(i): frame_targets(ds, int(i)) for i in train_idx}
        history: list[tuple[int, dict]] = []
        result: dict | None = None
        done = 0
        for epoch in range(1, budget.epochs + 1):
            done = train_epoch(model, ds, train_idx, targets, frames, r, rng, sgd, ctx.device, budget, done)
            last = epoch == budget.epochs
            if last or (r.opt.eval_every and epoch % r.opt.eval_every == 0):
                post = frame_posteriors(model, ds, test_idx, frames, r, ctx.device)
                result = self._score(ds, test_idx, post, r, subsets)
                history.append((epoch, result["scores"]))
        assert result is not None
        tag = f"{r.variant}-{ds.kind}-{split}-seed{seed}"
        out_dir = ctx.run_dir / "detection" / tag
        diagnostics = report.video_diagnostics(ds, result["files"], post, result["props"], result["gts"])
        result["totals"] = report.totals(diagnostics)
        for line in report.warnings_for(result["totals"]):
            print(f"harness: warning: detection ({tag}): {line}; per-video numbers in {out_dir / 'diagnostics.csv'}",
                  file=sys.stderr)
        self._save(out_dir, ds, test_idx, post, result, r, history, diagnostics)
        rows = self._rows(ctx, ds, split, seed, r, result, history, out_dir)
        # the scored intervals, ground truth and frame argmax, kept beside the store for every row measured on
        # them (the best-of rows come from other evaluations)
        pred = Predictions.intervals(list(result["files"]), list(result["files"].values()), result["props"],
                                     result["gts"], num_classes=ds.num_classes, theta=r.opt.theta,
                                     frame_pred=[np.asarray(p).argmax(axis=1) for p in post], group=r.variant,
                                     dataset=ds, segments=r.opt.segments)
        for row in rows:
            if not row.metric.endswith("_best"):
                row.predictions = pred
        return rows

    def _segments(self, post: np.ndarray, r: Resolved) -> list[tuple[int, int, int, float]]:
        return segments_by_rule(post, r.opt.segments, k=r.opt.smooth_k, threshold=r.opt.threshold,
                                pad_to=r.opt.pad_to, min_len=r.opt.min_split, class_threshold=r.opt.class_threshold)

    def _score(self, ds: PreparedDataset, test_idx: np.ndarray, post: list[np.ndarray], r: Resolved,
               subsets: dict[str, list[int]]) -> dict:
        names = ds.samples["name"].tolist()
        used: set[str] = set()
        props: dict[str, list[S.Det]] = {}
        gts: dict[str, list[S.GT]] = {}
        files: dict[str, int] = {}
        for i, p in zip(test_idx, post):
            v = _safe_name(names[int(i)], used) + ".txt"
            files[v] = int(i)
            # scores are stored exactly as the prediction files will hold them (float64 repr)
            props[v] = [S.Det(c, float(s), float(e), float(score), v) for c, s, e, score in self._segments(p, r)]
            gts[v] = [S.GT(int(row.label) + 1, float(row.start), float(row.end), v)
                      for row in ds.video_intervals(int(i)).itertuples()]
        scores = S.evaluate_all(props, gts, r.opt.theta, ds.num_classes, sweep=r.opt.thetas)
        thetas = sorted({r.opt.theta, *r.opt.thetas})
        scores["subsets"] = report.subset_scores(props, gts, subsets, thetas, ds.num_classes)
        scores["subset_classes"] = subsets
        return {"props": props, "gts": gts, "files": files, "scores": scores}

    def _save(self, out_dir: Path, ds: PreparedDataset, test_idx: np.ndarray, post: list[np.ndarray],
              result: dict, r: Resolved, history: list[tuple[int, dict]], diagnostics: list[dict]) -> None:
        """Write the whole folder anew, atomically: files of an earlier run (other test videos) must not
        stay behind, or ``harness eval-detection`` on it would score them too."""
        with atomic.atomic_dir(out_dir, overwrite=True) as tmp:
            self._write_files(tmp, post, result, r, ds, history)
            (tmp / "diagnostics.csv").write_text(report.diagnostics_csv(diagnostics), encoding="utf-8")

    def _write_files(self, out_dir: Path, post: list[np.ndarray], result: dict, r: Resolved,
                     ds: PreparedDataset, history: list[tuple[int, dict]]) -> None:
        (out_dir / "pred").mkdir()
        (out_dir / "gt").mkdir()
        for v, dets in result["props"].items():
            (out_dir / "pred" / v).write_text(S.format_intervals(d[:4] for d in dets), encoding="utf-8")
            (out_dir / "gt" / v).write_text(S.format_intervals((g.label, g.start, g.end, 1.0)
                                                               for g in result["gts"][v]), encoding="utf-8")
        with open(out_dir / "posteriors.npz", "wb") as fh:
            np.savez_compressed(fh, **{v[:-4]: p for v, p in zip(result["props"], post)})
        sc = result["scores"]
        summary = {k: sc[k] for k in ("mAP_a", "mAP_v", "mAP_a_voc", "mAP_v_all", "F1", "AP", "2DAP",
                                       "num_videos", "num_proposals", "num_gt", "sweep")}
        summary.update(diagnostics=result["totals"], frame_step=r.opt.frame_step,
                       mAP_a_subsets={k: {f"{t:g}": v for t, v in d.items()} for k, d in sc["subsets"].items()},
                       subset_classes=sc["subset_classes"])
        summary.update(variant=r.variant, epochs=r.epochs, lr=r.lr, theta=r.opt.theta, segments=r.opt.segments,
                       num_classes=ds.num_classes, videos={v: i for v, i in result["files"].items()},
                       history=[{"epoch": e, "mAP_a": s["mAP_a"], "mAP_v": s["mAP_v"], "mAP_a_voc": s["mAP_a_voc"]}
                                for e, s in history])
        (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    def _rows(self, ctx: ProtocolContext, ds: PreparedDataset, split: str, seed: int, r: Resolved,
              result: dict, history: list[tuple[int, dict]], out_dir: Path) -> list[ResultRow]:
        sc = result["scores"]
        fields: dict[str, Any] = {"protocol": self.name, "seed": seed}
        if "dataset" not in ctx.base_row:
            fields["dataset"] = ds.kind
        if "method" not in ctx.base_row:
            fields["method"] = ctx.cfg.method.name
        base = {"variant": r.variant, "segments": r.opt.segments, "theta": r.opt.theta, "epochs": r.epochs,
                "steps": r.opt.steps,
                "lr": r.lr, "frame_step": r.opt.frame_step, "standardize": r.opt.standardize,
                "files": str(out_dir)}
        if r.auto_step:
            base["frame_step_rule"] = "median training action / frames"

        def row(metric: str, value: float, **extra: Any) -> ResultRow:
            return ctx.row(metric, value, **fields, extra=json.dumps({**base, **extra}, sort_keys=True))

        rows = [row("mAP_a", sc["mAP_a"], scorer="official"),
                row("mAP_v", sc["mAP_v"], scorer="official"),
                row("mAP_a_voc", sc["mAP_a_voc"], scorer="voc"),
                row("F1", sc["F1"], scorer="official"),
                row("AP", sc["AP"], scorer="official"),
                row("2DAP", sc["2DAP"], scorer="official")]
        for name, by_theta in sc["subsets"].items():
            classes = sc["subset_classes"][name]
            rows.append(row(f"mAP_a_{name}", by_theta[r.opt.theta], scorer="official", classes=classes))
            rows += [row(f"mAP_a_{name}@{t:g}", by_theta[t], scorer="official", theta=t, classes=classes)
                     for t in r.opt.thetas]
        tot = result["totals"]
        rows += [row("frame_acc_action", tot["frame_acc_action"], frames=int(tot["action_frames"])),
                 row("frame_acc_background", tot["frame_acc_background"], frames=int(tot["background_frames"]))]
        for t in sc["sweep"]:
            th = t["theta"]
            rows += [row(f"mAP_a@{th:g}", t["mAP_a"], scorer="official", theta=th),
                     row(f"mAP_v@{th:g}", t["mAP_v"], scorer="official", theta=th),
                     row(f"mAP_a_voc@{th:g}", t["mAP_a_voc"], scorer="voc", theta=th)]
        if r.opt.eval_every:
            for key, scorer in (("mAP_a", "official"), ("mAP_v", "official"), ("mAP_a_voc", "voc")):
                best_epoch, best = max(((e, s[key]) for e, s in history), key=lambda es: (es[1], -es[0]))
                rows.append(row(f"{key}_best", best, scorer=scorer, best_epoch=best_epoch,
                                evaluated=[e for e, _ in history]))
        return rows

