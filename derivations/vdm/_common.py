"""What the VDM derivations share: the ELBO family's description, the reverse model's
generic parameters, alpha = r^2 facts, the alpha_bar recursion lemma and the Gaussian KL."""

from __future__ import annotations

import sympy as sp

from udm.derivations.core import (
    lemma,
    square_roots,
)
from udm.derivations.symbols import (
    alpha_bar_prev,
    alpha_bar_t,
    alpha_t,
)

# --- Forward process and the two ELBO derivations, eqs. (30)-(58) ---------------------------
# Family of the instance proofs: one coordinate, x_0 fixed (so
# every data distribution, N(m, v) included, is covered pointwise), symbolic alpha_1..alpha_T,
# p(x_T) = N(0, 1) and a linear-Gaussian reverse model p_theta(x_{t-1} | x_t) =
# N(a_t x_t + c_t, var_theta_t) with free a_t, c_t, var_theta_t. Every log-density is then a
# quadratic, every expectation of it closed form (moments of the forward chain's Gaussian law).
ELBO_FAMILY = (
    "1-D Gaussian chain: x_0 fixed, q(x_t|x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, 1 - alpha_t) with "
    "symbolic alpha_1..alpha_T, p(x_T) = N(0, 1), p_theta(x_{t-1}|x_t) = "
    "N(a_t x_t + c_t, var_theta_t) with free a_t, c_t, var_theta_t (T = {T})"
)
TERM_FAMILY = "linear-Gaussian reverse model p_theta(x_{t-1}|x_t) = N(a_t x_t + c_t, var_theta)"


# the registered instances (the symbolic checks grow fast with T: at T = 3 derivation two
# takes ~80 s and the bound's KL gap minutes); tests/vdm/test_elbo.py also builds T = 1 (and
# T = 3 for derivation one)
ELBO_DEFAULT_T = 2
BOUND_DEFAULT_T = 1

# generic (per-t) parameters of the linear reverse model, and of its step t + 1
a_t, c_t = sp.symbols("a_t c_t", real=True)
a_next, c_next = sp.symbols("a_next c_next", real=True)
alpha_next, var_theta_next = sp.symbols("alpha_next var_theta_next", positive=True)


def _sqrt_facts(alphas) -> tuple:
    """alpha = r^2 with r > 0: the checker then meets rational functions instead of sqrt(alpha)
    (the same identities, proved an order of magnitude faster by `cancel`)."""
    return square_roots(alphas)


# alpha_bar_t = prod_{i <= t} alpha_i (the paper's definition, with eq. (69)), one factor
# peeled off: proved by `alpha_bar_recursion` below.
ALPHA_BAR = lemma(
    alpha_bar_t, alpha_t * alpha_bar_prev, "udm.derivations.vdm.forward.alpha_bar_recursion"
)


def _kl(mq, vq, mp, vp):
    """KL(N(mq, vq) || N(mp, vp)), the closed form of eq. (86), logs split as in `_lpdf`."""
    return sp.expand_log((sp.log(vp / vq) + (vq + (mq - mp) ** 2) / vp - 1) / 2, force=True)
