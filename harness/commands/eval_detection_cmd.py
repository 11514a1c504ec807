"""``harness eval-detection``: score per-video detection files against PKU-MMD label files.

``--pred DIR`` holds one file per video with ``label,start,end,score`` lines (commas or spaces);
``--gt DIR`` holds the PKU-MMD label files (``label,start,end,confidence``) under the same file
names. Printed (docs/reference/protocols.md §6–§8):

* the **official** scorer (``evaluate.py``): mAP_a (classes 1..C summed / C), mAP_v, F1, pooled AP
  and 2DAP — over the videos that have a prediction file only, as the official script does;
* ``mAP_v_all``: the official per-video AP averaged over every video with GT (SSD's variant, where a
  video without predictions scores 0);
* ``mAP_a_voc``: the community VOC-style mAP_a over every video with GT (SSD's ``eval_detect_mAP``),
  a different number from the official mAP_a;
* a θ sweep of mAP_a, mAP_v, pooled AP and mAP_a_voc.

``--posteriors FILE`` scores the frame posteriors a detection run saved (``posteriors.npz``, one
(L, 1 + C) array per video) instead of prediction files, turned into intervals by ``--segments``
(``naive``: §5.1, ``split``: §5.1 cut at lasting class changes, ``class_threshold``: §5.2) with the
protocol's options, so another frames → intervals rule is measured without retraining anything.
``--classes`` adds mAP_a over those classes (e.g. the ones a subset of PKU-MMD has training
examples of) beside the official mean over all C.
"""

from __future__ import annotations

import argparse

from tabulate import tabulate

from ..errors import DataError, HarnessError
from ..evaluation.intervals import PKU_PAD_FRAMES, SEGMENT_RULES
from .common import parse_ints, print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-detection", help="score detection files with the PKU-MMD official and VOC-style scorers",
                       description=__doc__.split("\n\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--pred", metavar="DIR", help="one prediction file per video")
    what.add_argument("--posteriors", metavar="FILE", help="a detection run's posteriors.npz, segmented by --segments")
    p.add_argument("--gt", required=True, metavar="DIR", help="PKU-MMD label files, same names")
    p.add_argument("--theta", type=float, default=0.5, help="temporal IoU threshold (default 0.5)")
    p.add_argument("--num-classes", type=int, default=51, help="classes 1..C; mAP_a divides by C (default 51)")
    p.add_argument("--thetas", type=float, nargs="+", metavar="T",
                   help="θ values of the sweep table (default 0.1 0.2 ... 0.9)")
    p.add_argument("--segments", choices=SEGMENT_RULES, default="naive", help="with --posteriors: the rule (naive)")
    p.add_argument("--smooth-k", type=int, default=10, help="mean-filter half-width (window 2k frames; 10)")
    p.add_argument("--threshold", type=float, default=0.4, help="activity threshold 1 - P(bg) (0.4)")
    p.add_argument("--min-split", type=int, default=20, help="split: frames a class change must last (20)")
    p.add_argument("--class-threshold", type=float, default=0.02, help="class_threshold: p_c threshold (0.02)")
    p.add_argument("--pad-to", type=int, default=PKU_PAD_FRAMES, help="pad with background to this length (9000)")
    p.add_argument("--classes", metavar="C,C,...", help="also mAP_a over these classes (1..C)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _segment_posteriors(args: argparse.Namespace, S) -> dict:
    """``{video file name: [Det, ...]}`` from a saved posteriors.npz and the --segments rule."""
    import numpy as np

    from ..evaluation.intervals import segments_by_rule

    try:
        arrays = np.load(args.posteriors)
    except (OSError, ValueError) as exc:
        raise DataError(args.posteriors, f"cannot read posteriors ({exc})") from None
    preds = {}
    with arrays:
        for name in arrays.files:
            post = arrays[name]
            if post.ndim != 2 or post.shape[1] != args.num_classes + 1:
                raise DataError(args.posteriors, f"{name}: posteriors of shape {post.shape}, expected (frames, "
                                                 f"{args.num_classes + 1}) for --num-classes {args.num_classes}")
            v = f"{name}.txt"
            preds[v] = [S.Det(c, float(s), float(e), float(score), v) for c, s, e, score in segments_by_rule(
                post, args.segments, k=args.smooth_k, threshold=args.threshold, pad_to=args.pad_to,
                min_len=args.min_split, class_threshold=args.class_threshold)]
    return preds


def _check_theta(t: float, what: str) -> None:
    if not 0 < t <= 1:
        raise HarnessError(f"{what} must lie in (0, 1], got {t}")


def run(args: argparse.Namespace) -> int:
    from harness.evaluation import pku_scorer as S

    _check_theta(args.theta, "--theta")
    sweep = tuple(args.thetas) if args.thetas else S.DEFAULT_SWEEP
    for t in sweep:
        _check_theta(t, "--thetas")
    if args.num_classes < 1:
        raise HarnessError(f"--num-classes must be at least 1, got {args.num_classes}")
    gts = S.read_folder(args.gt, kind="gt", num_classes=args.num_classes)
    preds = (_segment_posteriors(args, S) if args.posteriors
             else S.read_folder(args.pred, kind="prediction", num_classes=args.num_classes))
    missing = [v for v in preds if v not in gts]
    if missing:
        raise DataError(f"{args.gt}/{missing[0]}", f"no ground-truth file for prediction file {missing[0]!r}"
                        + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    result = S.evaluate_all(preds, gts, args.theta, args.num_classes, sweep)
    if args.classes:
        classes = parse_ints(args.classes, "--classes")
        bad = [c for c in classes if not 1 <= c <= args.num_classes]
        if bad:
            raise HarnessError(f"--classes: {bad[0]} is not a class 1..{args.num_classes}")
        per_class = result["per_class_ap"]
        result["mAP_a_classes"] = {"classes": classes, "mAP_a": sum(per_class[c - 1] for c in classes) / len(classes)}
    if args.json:
        print_json(result)
        return 0
    print(f"official PKU-MMD scorer, θ = {args.theta:g}, {args.num_classes} classes: "
          f"{result['num_videos']} video(s) with a prediction file "
          f"(of {result['num_videos_all']} with GT or predictions), {result['num_proposals']} predictions, "
          f"{result['num_gt']} GT instances in those videos")
    rows = [
        ("mAP_a", result["mAP_a"], "official: Σ_c AP_c / C over the videos with a prediction file"),
        ("mAP_v", result["mAP_v"], "official: mean AP over the videos with a prediction file"),
        ("F1", result["F1"], "official: pooled set precision/recall"),
        ("AP", result["AP"], "official: all predictions pooled"),
        ("2DAP", result["2DAP"], "official: pooled AP averaged over θ = 0.05 … 1.00"),
        ("mAP_v_all", result["mAP_v_all"], "official AP per video, mean over every video (SSD variant)"),
        ("mAP_a_voc", result["mAP_a_voc"], "community VOC-style, mean over GT classes (not the official mAP_a)"),
    ]
    if args.classes:
        rows.append(("mAP_a (classes)", result["mAP_a_classes"]["mAP_a"],
                     f"official AP averaged over the {len(result['mAP_a_classes']['classes'])} --classes"))
    print(tabulate(rows, headers=["metric", "value", "what"], floatfmt=".6f", tablefmt="simple"))
    print()
    print(tabulate([(r["theta"], r["mAP_a"], r["mAP_v"], r["AP"], r["mAP_a_voc"]) for r in result["sweep"]],
                   headers=["θ", "mAP_a", "mAP_v", "AP", "mAP_a_voc"], floatfmt=("g", ".6f", ".6f", ".6f", ".6f"),
                   tablefmt="simple"))
    return 0
