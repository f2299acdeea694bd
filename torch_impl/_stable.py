"""Numerically stable routines of the torch layer (twins of reference/_stable.py).

Each computes an elementary expression with full relative accuracy where the expression as
written cancels; tests/test_kl_precision.py measures them against 50-digit mpmath.
"""

from __future__ import annotations

import math

import torch

# 1/k! for k = 2..17: exp(u) - 1 - u = u^2 sum_{k>=2} u^(k-2) / k!; at |u| <= 1/2 the terms
# beyond k = 17 are below 2^-60 of the sum
_SERIES = [1.0 / math.factorial(k) for k in range(2, 18)]
_SERIES_BELOW = 0.5


def expm1mx(u: torch.Tensor) -> torch.Tensor:
    """exp(u) - 1 - u (= r - 1 - log r at u = log r), a few ulps relative for all u.

    |u| < 1/2: the Taylor series u^2 (1/2 + u/6 + ...) by Horner; elsewhere expm1(u) - u,
    whose cancellation costs at most 2 eps / |u| <= 4 eps relative. No host synchronization
    (both branches are computed and selected with `where`).
    """
    small = u.abs() < _SERIES_BELOW
    v = torch.where(small, u, torch.zeros_like(u))
    series = torch.full_like(v, _SERIES[-1])
    for c in _SERIES[-2::-1]:
        series = series * v + c
    direct = torch.expm1(torch.where(small, torch.zeros_like(u), u)) - u
    return torch.where(small, series * v * v, direct)


def log_ratio(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(a / b) for a, b > 0: log1p((a - b) / b) when 1/2 <= a / b <= 2 (a - b exact by
    Sterbenz, so a log ratio near 0 keeps its relative accuracy), log a - log b otherwise."""
    q = a / b
    near = (q >= 0.5) & (q <= 2.0)
    return torch.where(near, torch.log1p((a - b) / b), torch.log(a) - torch.log(b))
