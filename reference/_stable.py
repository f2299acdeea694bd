"""Numerically stable routines that generated closed forms call (see derivations/_stable.py).

Each computes an elementary expression with full float64 relative accuracy where the
expression as written cancels; tests/test_kl_precision.py measures them against mpmath.
"""

from __future__ import annotations

import math

import numpy as np

# 1/k! for k = 2..17: exp(u) - 1 - u = u^2 sum_{k>=2} u^(k-2) / k!; at |u| <= 1/2 the terms
# beyond k = 17 are below 2^-60 of the sum
_SERIES = np.array([1.0 / math.factorial(k) for k in range(2, 18)])
_SERIES_BELOW = 0.5


def expm1mx(u):
    """exp(u) - 1 - u (= r - 1 - log r at u = log r), relative error a few ulps for all u.

    |u| < 1/2: the Taylor series u^2 (1/2 + u/6 + ...) by Horner (no cancellation: the terms
    fall by a factor >= 6 and alternate at most); elsewhere expm1(u) - u, whose cancellation
    costs at most 2 eps / |u| <= 4 eps relative.
    """
    u = np.asarray(u, dtype=np.float64)
    small = np.abs(u) < _SERIES_BELOW
    v = np.where(small, u, 0.0)
    series = np.full_like(v, _SERIES[-1])
    for c in _SERIES[-2::-1]:
        series = series * v + c
    with np.errstate(over="ignore"):
        direct = np.expm1(np.where(small, 0.0, u)) - u
    return np.where(small, series * v * v, direct)


def log_ratio(a, b):
    """log(a / b) for a, b > 0: log1p((a - b) / b) when 1/2 <= a / b <= 2 (a - b exact by
    Sterbenz, so a log ratio near 0 keeps its relative accuracy), log(a / b) otherwise
    (log a - log b where a / b over- or underflows)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        q = a / b
        near = (q >= 0.5) & (q <= 2.0)
        far = np.where((q > 0) & np.isfinite(q), np.log(q), np.log(a) - np.log(b))
        return np.where(near, np.log1p((a - b) / b), far)
