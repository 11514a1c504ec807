"""A plain-Python reference of VICReg's loss terms (the paper's formulas, written out) and the
hand-checked projections Z, Z'; shared by tests/test_loss_vicreg_objective.py and tests/test_vicreg.py."""

import math


def invariance(a, b):
    return sum((x - y) ** 2 for ra, rb in zip(a, b) for x, y in zip(ra, rb)) / (len(a) * len(a[0]))


def cov_matrix(z):
    n, d = len(z), len(z[0])
    means = [sum(r[j] for r in z) / n for j in range(d)]
    return [[sum((r[i] - means[i]) * (r[j] - means[j]) for r in z) / (n - 1) for j in range(d)] for i in range(d)]


def variance(z, gamma=1.0, eps=1e-4):
    c = cov_matrix(z)
    return sum(max(0.0, gamma - math.sqrt(c[j][j] + eps)) for j in range(len(c))) / len(c)


def covariance(z):
    c = cov_matrix(z)
    d = len(c)
    return sum(c[i][j] ** 2 for i in range(d) for j in range(d) if i != j) / d


# B = 3, D = 2. Z: both columns have unbiased variance 1/4 (hinge active, 1 − sqrt(0.2501)), the
# off-diagonal covariance is −1/8. Z': column 0 has variance 1 (hinge inactive: sqrt(1.0001) > 1),
# column 1 variance 0.04, covariance −0.1.
Z = [[1.0, 0.0], [0.0, 0.5], [0.5, 1.0]]
ZP = [[2.0, 0.0], [0.0, 0.2], [1.0, 0.4]]
