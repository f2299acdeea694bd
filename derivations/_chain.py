"""The diffusion chain shared by the ELBO derivations (eqs. (30)-(58)) and by the check of
the paper's printed ELBO lines (udm/chain_family.py): x_0 fixed, q(x_t | x_{t-1}) =
N(sqrt(alpha_t) x_{t-1}, 1 - alpha_t), p(x_T) = N(0, 1), p_theta(x_{t-1} | x_t) =
N(a_t x_t + c_t, var_theta_t), with T fixed."""

from __future__ import annotations

import sympy as sp

from udm.derivations.core import DerivationError, expect_gaussian_vector, log_normal_pdf
from udm.derivations.symbols import x_0


def lpdf(x, mean_, var_):
    """log N(x; mean, var) with log(var) split into the logs of its factors.

    Forcing the split is valid here: every factor (1 - alpha_t, 1 - alpha_bar_t, var_theta)
    is positive on the family, which SymPy cannot know for 1 - alpha.
    """
    return sp.expand_log(log_normal_pdf(x, mean_, var_), force=True)


def posterior_law(x_t_, x_0_, a, ab_prev):
    """(mu_q, var_q) of q(x_{t-1} | x_t, x_0): the posterior's known formulas (eqs. (84), (85))."""
    ab = a * ab_prev
    mu = (sp.sqrt(a) * (1 - ab_prev) * x_t_ + sp.sqrt(ab_prev) * (1 - a) * x_0_) / (1 - ab)
    return mu, (1 - a) * (1 - ab_prev) / (1 - ab)


def chain_symbols(T: int):
    """x_0..x_T, alpha_1..alpha_T, a_t, c_t, var_theta_t (index 0 of the per-t lists unused)."""
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    x = [x_0] + [sp.Symbol(f"x_{t}", real=True) for t in range(1, T + 1)]
    al = [None] + [sp.Symbol(f"alpha_{t}", positive=True) for t in range(1, T + 1)]
    a = [None] + [sp.Symbol(f"a_{t}", real=True) for t in range(1, T + 1)]
    c = [None] + [sp.Symbol(f"c_{t}", real=True) for t in range(1, T + 1)]
    v = [None] + [sp.Symbol(f"var_theta_{t}", positive=True) for t in range(1, T + 1)]
    return x, al, a, c, v


def alpha_bar(al, t):
    return sp.Mul(*al[1 : t + 1])


def forward_law(x, al, T):
    """Mean vector and covariance of (x_1..x_T) given x_0, from the chain's noises (eq. (59))."""
    noise = sp.symbols(f"epsilon_1:{T + 1}", real=True)
    path = [x_0]
    for t in range(1, T + 1):
        path.append(sp.expand(sp.sqrt(al[t]) * path[-1] + sp.sqrt(1 - al[t]) * noise[t - 1]))
    mean_ = [p.subs({e: 0 for e in noise}) for p in path[1:]]
    coef = sp.Matrix([[sp.diff(p, e) for e in noise] for p in path[1:]])
    return mean_, coef * coef.T


class Chain:
    """The T-step instance: log-densities of both chains and expectations under q."""

    def __init__(self, T: int):
        self.T = T
        self.x, self.al, self.a, self.c, self.v = chain_symbols(T)
        self.mean, self.cov = forward_law(self.x, self.al, T)

    def law(self, *ts):
        """(xs, mean, cov) of the random x_t among ts (x_0 is fixed)."""
        idx = [t - 1 for t in ts if t >= 1]
        xs = [self.x[t] for t in ts if t >= 1]
        return xs, [self.mean[i] for i in idx], self.cov.extract(idx, idx)

    def E(self, expr, *ts):
        """E over q(x_{ts} | x_0) of expr (which may only involve x_0 and the x_t of ts)."""
        xs, m, cov = self.law(*ts)
        stray = {s for s in expr.free_symbols if s in self.x[1:]} - set(xs)
        if stray:
            raise DerivationError(f"{expr} involves {stray} outside the marginal {xs}")
        return expect_gaussian_vector(expr, xs, m, cov)

    def ab(self, t):
        return alpha_bar(self.al, t)

    def lq(self, t):  # log q(x_t | x_{t-1}), eq. (31)
        return lpdf(self.x[t], sp.sqrt(self.al[t]) * self.x[t - 1], 1 - self.al[t])

    def lqm(self, t):  # log q(x_t | x_0), eq. (70)
        return lpdf(self.x[t], sp.sqrt(self.ab(t)) * x_0, 1 - self.ab(t))

    def lpost(self, t):  # log q(x_{t-1} | x_t, x_0), eqs. (84), (85)
        mu, var_ = posterior_law(self.x[t], x_0, self.al[t], self.ab(t - 1))
        return lpdf(self.x[t - 1], mu, var_)

    def lp(self, t):  # log p_theta(x_{t-1} | x_t)
        return lpdf(self.x[t - 1], self.a[t] * self.x[t] + self.c[t], self.v[t])

    def lprior(self):  # log p(x_T), eq. (33)
        return lpdf(self.x[self.T], 0, 1)

    def integrand(self):  # log p(x_{0:T}) - log q(x_{1:T} | x_0), eqs. (30), (32)
        T = self.T
        return (
            self.lprior()
            + sp.Add(*[self.lp(t) for t in range(1, T + 1)])
            - sp.Add(*[self.lq(t) for t in range(1, T + 1)])
        )

    def marginal(self):
        """(M_0, V_0): the reverse chain's law of x_0, propagated from x_T ~ N(0, 1)."""
        m, var_ = sp.Integer(0), sp.Integer(1)
        for t in range(self.T, 0, -1):
            m, var_ = self.a[t] * m + self.c[t], self.a[t] ** 2 * var_ + self.v[t]
        return m, var_
