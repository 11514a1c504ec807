"""95 % intervals of the tables' cells and paired tests of their differences (docs/statistics.md).

A cell holds one value per pretraining seed (each the mean over the protocol's own seeds), all
measured on **one** test set. Two things could have come out otherwise: the pretraining seeds (the
seed spread) and the test samples (the test set is one draw from the population, the same draw for
every seed, so its sampling error is shared by the seeds and does not shrink with more of them).
Every interval counts both where the measure is a proportion of test samples (``Measure.proportion``)
and the test set is known; :attr:`Interval.method` says how:

* ``bootstrap`` (per-sample predictions of every row, at least :data:`MIN_BOOTSTRAP_SEEDS` seeds):
  a hierarchical bootstrap, :data:`REPLICATES` replicates from a fixed RNG seed; each resamples the
  pretraining seeds with replacement and the test samples with replacement (one draw of indices
  for every seed and, in a difference, for both sides: they share the test set); percentile interval;
* ``t+bootstrap`` (predictions, fewer seeds: a percentile bootstrap over 2–4 seeds sees at most 35
  seed multisets and is too narrow): a t-interval whose variance is the seed part s²/k plus the
  test-set part, the bootstrap variance over resampled test samples of the seeds' mean;
* ``t+binomial`` (no predictions, a proportion with a known test-set size n): the same, with the
  binomial test-set variance p(1 − p)/n of the mean p;
* ``t`` (a measure that is no proportion of test samples, e.g. mAP or the effective rank, or no
  known test-set size): the seed part alone.

The t-intervals take the Welch–Satterthwaite degrees of freedom of the summed variance parts (the
seed part has k − 1, the test part n − 1).

A **difference** (a method minus its untrained floor) is paired by pretraining seed. With
per-sample predictions on both sides it is paired by test sample too (:func:`matrix_interval` of the
per-sample differences: ``bootstrap`` / ``t+bootstrap``). Without them it is the paired t-test over
pretraining seeds (:func:`paired_difference`; Welch's :func:`welch_difference` when fewer than two
seeds are shared), **conditional on the test set**: the sampling variance of a difference of two
accuracies on the same samples depends on how often both are wrong on the same sample, which only
per-sample predictions record (a binomial term for independent errors would overstate it by as
much as the errors agree). Its p-value is two-sided for "no difference"; its verdict is ``above`` or
``below`` when the 95 % interval excludes 0, else ``tie``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

from ..results import PredictionsError, load_predictions
from ..results.predictions import CLASSIFICATION

CONFIDENCE = 0.95
REPLICATES = 2000
RNG_SEED = 0  # fixed: a table re-renders identically
MIN_BOOTSTRAP_SEEDS = 5
_CHUNK = 200  # replicates per block (memory: _CHUNK × test samples floats)

ABOVE, BELOW, TIE = "above", "below", "tie"
METHODS = {
    "bootstrap": "hierarchical bootstrap over pretraining seeds and test samples (per-sample predictions)",
    "t+bootstrap": "t over pretraining seeds + test-sample bootstrap variance (per-sample predictions)",
    "t+binomial": "t over pretraining seeds + binomial test-set variance",
    "t": "t over pretraining seeds only",
}


@dataclass(frozen=True)
class Interval:
    """A 95 % interval of a cell's mean (or of a difference), in the rows' units (fractions)."""

    estimate: float
    lo: float
    hi: float
    method: str  # a key of METHODS
    n: int  # pretraining seeds (pairs, for a paired difference)
    se: float = math.nan
    df: float = math.nan
    p: float = math.nan  # two-sided p-value of "the true value is 0" (what a difference reports)
    n_test: int = 0  # test samples the test-set part counts (0: none)
    paired: bool = True

    @property
    def verdict(self) -> str:
        return ABOVE if self.lo > 0 else BELOW if self.hi < 0 else TIE


def _alpha() -> float:
    return 1.0 - CONFIDENCE


def _t_interval(estimate: float, parts: Sequence[tuple[float, float]], *, n: int, method: str, n_test: int = 0,
                bounds: tuple[float, float] | None = None, paired: bool = True) -> Interval:
    """estimate ± t·SE, SE² the sum of the variance ``parts`` (variance, degrees of freedom), with the
    Welch–Satterthwaite degrees of freedom of the sum."""
    var = float(sum(v for v, _ in parts))
    if var > 0:
        df = var * var / sum(v * v / d for v, d in parts if v > 0)
        se = math.sqrt(var)
        half = float(stats.t.ppf(1 - _alpha() / 2, df)) * se
        p = float(2 * stats.t.sf(abs(estimate) / se, df))
    else:  # no spread at all: the interval is the point
        df, se, half = float(parts[0][1]), 0.0, 0.0
        p = 1.0 if estimate == 0 else 0.0
    lo, hi = estimate - half, estimate + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return Interval(float(estimate), float(lo), float(hi), method, n, se, df, p, n_test, paired)


def _binomial_part(p: float, n_test: int) -> tuple[float, float]:
    """The test-set variance of a proportion p measured on n_test samples, with its degrees of freedom."""
    p = min(max(p, 0.0), 1.0)
    return p * (1 - p) / n_test, float(n_test - 1)


def seed_interval(values: Sequence[float], *, n_test: int = 0, proportion: bool = False) -> Interval | None:
    """The interval of the mean of one value per pretraining seed (``t`` / ``t+binomial``); None for
    fewer than two seeds (their spread is unknown)."""
    v = np.asarray(values, dtype=float)
    k = len(v)
    if k < 2:
        return None
    parts = [(float(v.var(ddof=1)) / k, float(k - 1))]
    binomial = proportion and n_test > 1
    if binomial:
        parts.append(_binomial_part(float(v.mean()), n_test))
    return _t_interval(float(v.mean()), parts, n=k, method="t+binomial" if binomial else "t",
                       n_test=n_test if binomial else 0, bounds=(0.0, 1.0) if proportion else None)


def paired_difference(a: Sequence[float], b: Sequence[float]) -> Interval | None:
    """The interval and paired t-test of mean(a − b), ``a[i]`` and ``b[i]`` of the same pretraining
    seed (``t``, conditional on the test set); None for fewer than two pairs."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) != len(b):
        raise ValueError(f"{len(a)} values paired with {len(b)}")
    k = len(a)
    if k < 2:
        return None
    d = a - b
    return _t_interval(float(d.mean()), [(float(d.var(ddof=1)) / k, float(k - 1))], n=k, method="t")


def welch_difference(a: Sequence[float], b: Sequence[float]) -> Interval | None:
    """mean(a) − mean(b) when the seeds do not pair (Welch's t); None unless each side has two."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return None
    parts = [(float(a.var(ddof=1)) / len(a), float(len(a) - 1)), (float(b.var(ddof=1)) / len(b), float(len(b) - 1))]
    return _t_interval(float(a.mean() - b.mean()), parts, n=min(len(a), len(b)), method="t", paired=False)


# --- per-sample predictions ----------------------------------------------------------------------
def _replicates(matrix: np.ndarray, rng: np.random.Generator, *, seeds: bool) -> np.ndarray:
    """Bootstrap replicates of the mean of ``matrix`` (k seeds × n samples): the samples resampled
    (one draw of indices for every seed), and the seeds too when ``seeds``."""
    k, n = matrix.shape
    out = np.empty(REPLICATES)
    per_sample = matrix.mean(axis=0)
    for start in range(0, REPLICATES, _CHUNK):
        size = min(_CHUNK, REPLICATES - start)
        if seeds:
            rows = rng.multinomial(k, np.full(k, 1.0 / k), size=size) @ matrix / k  # (size, n)
        else:
            rows = np.broadcast_to(per_sample, (size, n))
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=size)
        out[start:start + size] = (rows * counts).sum(axis=1) / n
    return out


def matrix_interval(matrix: np.ndarray, *, bounds: tuple[float, float] | None = None,
                    rng_seed: int = RNG_SEED) -> Interval | None:
    """The interval of the mean of ``matrix``: one row per pretraining seed, one column per test
    sample (1/0 correct, a mean over the protocol's seeds, or a paired difference of such);
    ``bootstrap`` from :data:`MIN_BOOTSTRAP_SEEDS` seeds, else ``t+bootstrap``. None for one seed."""
    m = np.asarray(matrix, dtype=float)
    k, n = m.shape
    if k < 2 or n < 2:
        return None
    rng = np.random.default_rng(rng_seed)
    estimate = float(m.mean())
    if k >= MIN_BOOTSTRAP_SEEDS:
        reps = _replicates(m, rng, seeds=True)
        lo, hi = np.quantile(reps, [_alpha() / 2, 1 - _alpha() / 2])
        tail = min(int((reps <= 0).sum()), int((reps >= 0).sum()))
        p = min(1.0, 2 * (tail + 1) / (REPLICATES + 1))
        if bounds is not None:
            lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
        return Interval(estimate, float(lo), float(hi), "bootstrap", k, float(reps.std(ddof=1)), math.nan, p, n)
    test_var = float(_replicates(m, rng, seeds=False).var(ddof=1))
    seed_values = m.mean(axis=1)
    parts = [(float(seed_values.var(ddof=1)) / k, float(k - 1)), (test_var, float(n - 1))]
    return _t_interval(estimate, parts, n=k, method="t+bootstrap", n_test=n, bounds=bounds)


@dataclass
class SeedMatrix:
    """Per-sample scores of a cell: ``matrix[i, j]`` is pretraining seed ``seeds[i]``'s share of its
    protocol seeds that got test sample ``index[j]`` right."""

    seeds: list[int]
    index: np.ndarray
    matrix: np.ndarray

    def paired_with(self, other: "SeedMatrix") -> np.ndarray | None:
        """self − other on the shared seeds (rows) and the same test samples; None when they differ."""
        common = [s for s in self.seeds if s in other.seeds]
        if len(common) < 2 or not np.array_equal(self.index, other.index):
            return None
        mine = self.matrix[[self.seeds.index(s) for s in common]]
        theirs = other.matrix[[other.seeds.index(s) for s in common]]
        return mine - theirs


def seed_matrix(store_dir, rows_by_seed: dict[int, list[dict]], cache: dict | None = None) -> SeedMatrix | None:
    """The cell's :class:`SeedMatrix` from its rows' per-sample predictions, or None unless every
    row has verified classification predictions (:func:`harness.results.load_predictions`) whose top-1
    accuracy is the row's value and every row covers the same test samples."""
    if store_dir is None or not rows_by_seed:
        return None
    cache = {} if cache is None else cache
    seeds, index, rows_out = [], None, []
    for seed in sorted(rows_by_seed):
        per_probe = []
        for row in rows_by_seed[seed]:
            extra = row.get("_extra") or {}
            name = extra.get("predictions") if isinstance(extra, dict) else None
            if not name:
                return None
            key = (str(store_dir), name, str(row.get("metric")), str(row.get("value")), str(row.get("seed")))
            if key not in cache:
                try:
                    pred = load_predictions(store_dir, row)
                except PredictionsError:
                    pred = None
                cache[key] = pred
            pred = cache[key]
            if pred is None or pred.kind != CLASSIFICATION:
                return None
            order = np.argsort(pred["index"], kind="stable")
            correct = pred.correct()[order].astype(float)
            idx = np.asarray(pred["index"])[order]
            if not math.isclose(float(correct.mean()), float(row["value"]), abs_tol=1e-9):
                return None  # these predictions do not give this metric (not a top-1 accuracy)
            if index is None:
                index = idx
            elif not np.array_equal(index, idx):
                return None
            per_probe.append(correct)
        seeds.append(int(seed))
        rows_out.append(np.mean(per_probe, axis=0))
    return SeedMatrix(seeds, index, np.vstack(rows_out))


def describe(method: str) -> str:
    return METHODS.get(method, method)
