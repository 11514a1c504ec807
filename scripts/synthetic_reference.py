"""Reference points of the built-in synthetic dataset (docs/synthetic.md quotes this script's output).

For each requested size it generates the trimmed dataset in memory chunk by chunk (timing it),
turns every clip into the plain joint features a first baseline would use -- person 0's spine-mid
subtracted per frame (zero joints stay zero), linear resampling of the valid frames to 64 frames
(the harness feeder rule, harness/data/resample.py) -- and reports on the requested split:

- chance (1 / classes) and the majority class of the test part;
- single-statistic classifiers (a depth-4 decision tree on one number per clip: the clip length,
  the mean joint speed, the body's height extent), to show no global statistic gives the class away;
- 1-nearest-neighbour on the z-scored raw features (Euclidean), no learning at all;
- a small supervised 1D-CNN trained from scratch on the same features (random rotation about the
  vertical axis as augmentation), the ceiling an SSL method's linear probe should approach.

Usage: .venv/bin/python scripts/synthetic_reference.py [--sizes 2000 4000 10000] [--split xsub] [--json OUT]
       .venv/bin/python scripts/synthetic_reference.py --untrimmed-stats
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
from sklearn.tree import DecisionTreeClassifier
from torch import nn

from harness.data.synthetic import dataset as synthetic
from harness.transforms.resample import resample

FRAMES = 64


def features(num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict, tuple[float, float]]:
    """(N, 3, 64, 25, 2) centred, resampled clips; labels; metadata; generation (wall, CPU) seconds."""
    out, gen_s, gen_cpu = [], 0.0, 0.0
    meta = {"length": [], "subject": [], "camera": [], "label": []}
    it = synthetic.iter_trimmed(num_samples, seed)
    while True:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            _, clips, lengths, rows = next(it)
        except StopIteration:
            break
        gen_s += time.perf_counter() - t0
        gen_cpu += time.process_time() - c0
        x = torch.from_numpy(clips)
        centre = x[:, :, :, 1:2, 0:1]  # person 0's spine mid, per frame
        x = torch.where(x != 0, x - centre, x)
        out.append(resample(x, torch.from_numpy(lengths), FRAMES).numpy())
        meta["length"] += list(lengths)
        for key in ("subject", "camera", "label"):
            meta[key] += [r[key] for r in rows]
    meta = {k: np.asarray(v) for k, v in meta.items()}
    return np.concatenate(out), meta["label"], meta, (gen_s, gen_cpu)


def split_indices(meta: dict, split: str) -> tuple[np.ndarray, np.ndarray]:
    if split == "xsub":
        train = np.isin(meta["subject"], synthetic.XSUB_TRAIN_SUBJECTS)
    else:
        train = np.isin(meta["camera"], synthetic.XVIEW_TRAIN_CAMERAS)
    return np.flatnonzero(train), np.flatnonzero(~train)


def nearest_neighbour(x: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray) -> float:
    f = x.reshape(len(x), -1).astype(np.float64)
    mu, sd = f[tr].mean(0), f[tr].std(0) + 1e-6
    f = torch.from_numpy(((f - mu) / sd).astype(np.float32))
    pred = []
    for chunk in np.array_split(te, max(1, len(te) // 512)):
        d = torch.cdist(f[chunk], f[tr])
        pred.append(y[tr][d.argmin(1).numpy()])
    return float((np.concatenate(pred) == y[te]).mean())


def single_statistics(x: np.ndarray, y: np.ndarray, meta: dict, tr: np.ndarray, te: np.ndarray) -> dict:
    p0 = x[..., 0]  # (N, 3, T, V)
    speed = np.linalg.norm(np.diff(p0, axis=2), axis=1).mean(axis=(1, 2))
    height = p0[:, 1].max(axis=(1, 2)) - p0[:, 1].min(axis=(1, 2))
    out = {}
    for name, stat in (("length", meta["length"]), ("mean joint speed", speed), ("height extent", height)):
        tree = DecisionTreeClassifier(max_depth=4, random_state=0).fit(stat[tr, None], y[tr])
        out[name] = float((tree.predict(stat[te, None]) == y[te]).mean())
    return out


class SmallCNN(nn.Module):
    """A temporal CNN over (N, 3·V·M, T): three conv blocks, global average pool, linear head."""

    def __init__(self, channels: int, classes: int, width: int = 64):
        super().__init__()
        blocks, c = [], channels
        for stride in (1, 2, 2):
            blocks += [nn.Conv1d(c, width, 5, stride, 2), nn.BatchNorm1d(width), nn.ReLU()]
            c = width
        self.body = nn.Sequential(*blocks, nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Dropout(0.3))
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        return self.head(self.body(x.permute(0, 1, 3, 4, 2).reshape(n, c * v * m, t)))


def rotate_y(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Rotate each clip (N, 3, T, V, M) about the vertical axis by a random angle in [-60°, 60°]."""
    a = (torch.rand(x.shape[0], generator=g) * 2 - 1) * math.radians(60)
    c, s = torch.cos(a), torch.sin(a)
    xr = c[:, None, None, None] * x[:, 0] + s[:, None, None, None] * x[:, 2]
    zr = -s[:, None, None, None] * x[:, 0] + c[:, None, None, None] * x[:, 2]
    return torch.stack([xr, x[:, 1], zr], dim=1)


def supervised(x: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, classes: int,
               epochs: int, seed: int) -> tuple[float, float]:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y).long()
    model = SmallCNN(3 * x.shape[3] * x.shape[4], classes)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
    steps = epochs * math.ceil(len(tr) / 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(tr), generator=g).split(64):
            idx = torch.from_numpy(tr)[batch]
            loss = nn.functional.cross_entropy(model(rotate_y(xt[idx], g)), yt[idx], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(xt[torch.from_numpy(c)]).argmax(1) for c in np.array_split(te, 8)])
    return float((pred.numpy() == y[te]).mean()), time.perf_counter() - t0


def untrimmed_stats(num_videos: int, seed: int) -> dict:
    """What the default untrimmed set looks like (from the plan; nothing is rendered)."""
    plan = synthetic.plan_videos(num_videos, seed, synthetic.make_subjects(seed))
    intervals = [iv for i in range(num_videos) for iv in plan.intervals(i)]
    action_frames = sum(e - s for _, s, e in intervals)
    pair = plan.partner > 0
    return {"videos": num_videos, "seed": seed, "frames_min": int(plan.length.min()),
            "frames_mean": round(float(plan.length.mean())), "frames_max": int(plan.length.max()),
            "actions": len(intervals), "actions_per_video": round(len(intervals) / num_videos, 1),
            "action_frames_share": round(action_frames / int(plan.length.sum()), 3),
            "two_person_videos": int(pair.sum()),
            "interactions": sum(1 for label, _, _ in intervals if label in synthetic.TWO_PERSON_CLASSES),
            "classes_seen": len({label for label, _, _ in intervals})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[synthetic.DEFAULT_NUM_SAMPLES])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", choices=("xsub", "xview"), default="xsub")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    ap.add_argument("--untrimmed-stats", action="store_true",
                    help="only describe the default untrimmed set (videos for 4000 clips) and exit")
    args = ap.parse_args()
    if args.untrimmed_stats:
        n = synthetic.default_num_videos(synthetic.DEFAULT_NUM_SAMPLES)
        print(json.dumps(untrimmed_stats(n, args.seed)))
        return
    torch.set_num_threads(args.threads)
    classes = len(synthetic.CLASS_NAMES)
    results = []
    for n in args.sizes:
        x, y, meta, (gen_s, gen_cpu) = features(n, args.seed)
        tr, te = split_indices(meta, args.split)
        row = {"num_samples": n, "split": args.split, "seed": args.seed, "generate_s": round(gen_s, 1),
               "generate_cpu_s": round(gen_cpu, 1),
               "train": len(tr), "test": len(te), "chance": 1 / classes,
               "majority": float(np.bincount(y[te]).max() / len(te))}
        row.update({f"tree on {k}": v for k, v in single_statistics(x, y, meta, tr, te).items()})
        row["1-NN raw joints"] = nearest_neighbour(x, y, tr, te)
        acc, train_s = supervised(x, y, tr, te, classes, args.epochs, args.seed)
        row["supervised 1D-CNN"], row["cnn_train_s"] = acc, round(train_s, 1)
        results.append(row)
        print(json.dumps(row), flush=True)
    keys = [k for k in results[0] if k not in ("num_samples", "split", "seed")]
    print("\n| " + " | ".join(["clips"] + keys) + " |")
    print("|" + "---|" * (len(keys) + 1))
    for r in results:
        cells = [f"{r[k] * 100:.1f} %" if isinstance(r[k], float) and r[k] <= 1 and "_s" not in k else str(r[k])
                 for k in keys]
        print("| " + " | ".join([str(r["num_samples"])] + cells) + " |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
