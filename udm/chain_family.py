"""The paper's ELBO lines (34)-(58), as printed, evaluated on the derivations' Gaussian chain.

The reader gives eq. (39) as E_{q(x_{1:T}|x_0)}[log p(x_T) p_theta(x_0|x_1) prod_{t=2}^T ...]
with T symbolic: densities are undefined functions, products run over t. The derivations
prove these lines on a chain with T fixed (1 or 2): x_0 fixed, q(x_t|x_{t-1}) =
N(sqrt(alpha_t) x_{t-1}, 1 - alpha_t), p(x_T) = N(0, 1), p_theta(x_{t-1}|x_t) =
N(a_t x_t + c_t, var_theta_t). `evaluate(expr, T)` puts the printed line in the same terms:

1. T becomes the derivation's T, and every product or sum over t is written out;
2. each density is the chain's Gaussian (a joint is the product of its factors, eqs. (30),
   (32); q(x_t | x_{t-1}, x_0) is q(x_t | x_{t-1}) by the Markov property, eq. (46));
3. a KL between two conditionals is their closed form as a function of what they condition
   on; an expectation under q (any marginal of q(x_{1:T} | x_0)) is taken by the moments of
   that marginal, and an integral over x_{1:T} of a Gaussian in closed form.

Nothing here is the derivation's own algebra: the derivation builds its lines from its
log-densities; this module reads the paper's notation, so the two meet only at the check.
"""

from __future__ import annotations

import functools
import re

import sympy as sp
from sympy.core.function import AppliedUndef

from udm import latex_reader as reader


@functools.cache
def _chain(T: int):
    from udm.derivations._chain import Chain

    return Chain(T)


def family_T(family: str | None) -> int | None:
    """The T of a derivation on the chain (its family text says 'T = 2'), else None."""
    if not family or "Gaussian chain" not in family:
        return None
    found = re.search(r"\(T = (\d+)\)", family)
    return int(found.group(1)) if found else None


def _index(ch, sym) -> int | None:
    """k for the chain's x_k (x_0 included), None for anything else."""
    return next((k for k, x in enumerate(ch.x) if x == sym), None)


def _concrete(expr, T: int):
    """T -> the derivation's T, x_T, x_{T-1} -> its symbols, sums and products written out."""
    ch = _chain(T)
    names = {"T": sp.Integer(T), "x_T": ch.x[T], "x_{T-1}": ch.x[T - 1]}
    names |= {f"x_{k}": ch.x[k] for k in range(T + 1)}
    expr = expr.xreplace({s: names[s.name] for s in expr.free_symbols if s.name in names})

    def unroll(e):
        if not e.args:
            return e
        e = e.func(*(unroll(a) for a in e.args)) if not isinstance(e, sp.Symbol) else e
        if isinstance(e, (sp.Product, sp.Sum)):
            body, (_, lo, hi) = e.function, e.limits[0]
            terms = []
            for k in range(int(lo), int(hi) + 1):
                at = {"x_t": ch.x[k], "x_prev": ch.x[k - 1]}
                if k + 1 <= T:
                    at["x_next"] = ch.x[k + 1]
                terms.append(
                    body.xreplace({s: at[s.name] for s in body.free_symbols if s.name in at})
                )
            return (sp.Mul if isinstance(e, sp.Product) else sp.Add)(*terms)
        return e

    return unroll(expr)


def _law(ch, density):
    """(variable, mean, variance) of one of the chain's conditional Gaussians, or None."""
    name, args = density.func.__name__, density.args
    if len(args) == 1 and name == "p" and args[0] == ch.x[ch.T]:
        return ch.x[ch.T], sp.Integer(0), sp.Integer(1)  # eq. (33)
    if len(args) != 2 or getattr(args[1], "func", None) != reader.given:
        return None
    k, given = _index(ch, args[0]), [_index(ch, g) for g in args[1].args]
    if k is None or None in given:
        return None
    if name == "p_theta" and given == [k + 1]:  # p_theta(x_{t-1} | x_t)
        t = k + 1
        return ch.x[k], ch.a[t] * ch.x[t] + ch.c[t], ch.v[t]
    if name != "q":
        return None
    if given in ([k - 1], [k - 1, 0]) and k >= 1:  # q(x_t | x_{t-1}[, x_0]): eqs. (31), (46)
        return ch.x[k], sp.sqrt(ch.al[k]) * ch.x[k - 1], 1 - ch.al[k]
    if given == [0] and k >= 1:  # q(x_t | x_0), eq. (70)
        return ch.x[k], sp.sqrt(ch.ab(k)) * ch.x[0], 1 - ch.ab(k)
    if given == [k + 1, 0]:  # q(x_{t-1} | x_t, x_0), eqs. (84), (85)
        from udm.derivations._chain import posterior_law

        mu, var = posterior_law(ch.x[k + 1], ch.x[0], ch.al[k + 1], ch.ab(k))
        return ch.x[k], mu, var
    return None


def _log_density(ch, density):
    """log of a density of the chain (a joint: the sum of its factors' logs), or None."""
    from udm.derivations.core import log_normal_pdf

    if (law := _law(ch, density)) is not None:
        # log(variance) split into its factors' logs, as the derivations write it: each
        # factor (1 - alpha_t, 1 - alpha_bar_t, var_theta_t) is positive on the chain
        return sp.expand_log(log_normal_pdf(*law), force=True)
    T, args = ch.T, density.args
    names = [getattr(a, "name", None) for a in args]
    if density.func.__name__ == "p" and names == ["x_{0:T}"]:  # eq. (30)
        return ch.lprior() + sp.Add(*[ch.lp(t) for t in range(1, T + 1)])
    if density.func.__name__ == "q" and names[:1] == ["x_{1:T}"] and len(args) == 2:
        if [_index(ch, g) for g in args[1].args] == [0]:  # eq. (32)
            return sp.Add(*[ch.lq(t) for t in range(1, T + 1)])
    return None


def _marginal(ch, law):
    """The random x_k that an expectation's law q(x_i, x_j, ... | x_0) names, or None."""
    if law.func.__name__ != "q" or len(law.args) < 2:
        return None
    *xs, given = law.args
    if getattr(given, "func", None) != reader.given or [_index(ch, g) for g in given.args] != [0]:
        return None
    if [getattr(x, "name", None) for x in xs] == ["x_{1:T}"]:
        return list(range(1, ch.T + 1))
    ks = [_index(ch, x) for x in xs]
    # x_0 is fixed: at t = 1, q(x_{t-1}, x_t, x_{t+1} | x_0) is the law of x_1, x_2
    return None if None in ks else sorted(k for k in ks if k != 0)


class NotOnTheChain(ValueError):
    """The line uses something the chain does not define (the reason says what)."""


class _OnChain:
    """The diffusion chain as the evaluator sees it (see `_OnHVAE` for the other family)."""

    def __init__(self, T: int):
        self.ch = _chain(T)

    def log_density(self, density):
        return _log_density(self.ch, density)

    def conditional(self, density):
        return _law(self.ch, density)

    def marginal(self, law):
        ks = _marginal(self.ch, law)
        return None if ks is None else self.ch.law(*ks)

    def over(self, names):
        return self.ch.x[1:] if names == ["x_{1:T}"] else None

    def is_random(self, sym):
        return bool(_index(self.ch, sym))


class _OnHVAE:
    """The two-level HVAE of derivations/hvae.py: p(x, z_{1:T}) and q_phi(z_{1:T} | x) as
    products of their factors (eqs. (23), (24)); `zero_bias` for its zero-bias sub-family."""

    def __init__(self, zero_bias: bool):
        from udm.derivations import hvae as H

        self.H, self.zs = H, [H.z_1, H.z_2]
        self.fix = {H.b_1: 0, H.b_2: 0, H.c_2: 0} if zero_bias else {}

    def _names(self, density):
        return [getattr(a, "name", None) for a in density.args]

    def log_density(self, density):
        H, name, names = self.H, density.func.__name__, self._names(density)
        if name == "p" and names == ["x_0", "z_{1:T}"]:
            return H.log_joint_factored.subs(self.fix)
        if name == "q_phi" and names[:1] == ["z_{1:T}"] and len(density.args) == 2:
            return H.log_q_factored.subs(self.fix)
        return None

    def conditional(self, density):
        return None

    def marginal(self, law):
        if self.log_density(law) is None or law.func.__name__ != "q_phi":
            return None
        return self.zs, list(self.H.q_mean.subs(self.fix)), self.H.q_cov

    def over(self, names):
        return self.zs[::-1] if names == ["z_{1:T}"] else None  # z_2, then z_1

    def is_random(self, sym):
        return sym in self.zs


def _logs(expr, ch):
    """log(density products) split, each log-density in closed form."""
    expr = sp.expand_log(expr, force=True)

    def closed(arg):
        if isinstance(arg, AppliedUndef) and (found := ch.log_density(arg)) is not None:
            return found
        return sp.log(arg)

    return expr.replace(sp.log, closed)


def _kl(ch, kl):
    """KL(q || p) of two conditionals of the chain: E_{v ~ q}[log q(v) - log p(v)] by moments,
    a function of the variables they condition on."""
    from udm.derivations.core import expect_normal, log_normal_pdf

    laws = [ch.conditional(d) for d in kl.args]
    if None in laws or laws[0][0] != laws[1][0]:
        raise NotOnTheChain(f"a KL between densities the chain does not define: {kl}")
    (v, m, s), other = laws
    log_ratio = sp.expand_log(log_normal_pdf(v, m, s) - log_normal_pdf(*other), force=True)
    return expect_normal(sp.expand(log_ratio), v, m, s)


def _expectation(ch, e):
    from udm.derivations.core import expect_gaussian_vector

    body, *law = e.args
    found = ch.marginal(law[0]) if len(law) == 1 else None
    if found is None:
        raise NotOnTheChain(f"an expectation under a law the chain does not define: {law}")
    xs, mean, cov = found
    body = _logs(body, ch)
    if body.atoms(AppliedUndef):  # E of a density ratio (eq. (36)): the integral against q
        log_q = ch.log_density(law[0])
        if log_q is None:
            raise NotOnTheChain(f"an expectation of a ratio under {law[0]}")
        return _integrate(_densities(ch, body) * sp.exp(log_q), xs)
    stray = {s for s in body.free_symbols if ch.is_random(s)} - set(xs)
    if stray:  # the printed marginal leaves out a variable the integrand uses
        raise NotOnTheChain(f"the integrand uses {sorted(map(str, stray))} outside {xs}")
    return expect_gaussian_vector(sp.expand(body), xs, mean, cov)


def _densities(ch, expr):
    """Every remaining density as exp(its log-density)."""

    def closed(*args, func):
        found = ch.log_density(func(*args))
        if found is None:
            raise NotOnTheChain(f"a density the chain does not define: {func(*args)}")
        return sp.exp(found)

    densities = ("p", "q", "p_theta", "q_phi")
    # sorted: the first density that is not defined is named the same way in every run
    apps = sorted((f for f in expr.atoms(AppliedUndef) if f.func.__name__ in densities), key=str)
    return expr.xreplace({f: closed(*f.args, func=f.func) for f in apps})


def _integrate(expr, xs):
    """The integral over all of xs of exp(quadratic) times factors free of xs, in closed form."""
    for x in xs:
        const, dependent = expr.as_independent(x, as_Add=False)
        exponent = sp.expand(sp.expand_log(sp.log(dependent), force=True))
        a2, a1, a0 = sp.Poly(exponent, x).all_coeffs()
        expr = const * sp.sqrt(sp.pi / -a2) * sp.exp(sp.expand(a1**2 / (-4 * a2) + a0))
    return expr


def evaluate(expr, T: int):
    """The printed expression on the T-step chain, in closed form (raises NotOnTheChain)."""
    return _evaluate(_concrete(sp.sympify(expr), T), _OnChain(T))


def evaluate_hvae(expr, zero_bias: bool = False):
    """The printed expression on the two-level HVAE, in closed form (raises NotOnTheChain)."""
    from udm.derivations.hvae import x

    expr = sp.sympify(expr)
    expr = expr.xreplace({s: x for s in expr.free_symbols if s.name == "x"})  # x is x_0
    return _evaluate(expr, _OnHVAE(zero_bias))


def evaluator(family: str | None):
    """(evaluate(expr), what) for a derivation's family that this module knows, else None."""
    if (T := family_T(family)) is not None:
        return (lambda e: evaluate(e, T)), f"on the chain with T = {T}"
    if family and family.startswith("two-level linear-Gaussian Markov chain"):
        zero = "zero biases" in family
        return (lambda e: evaluate_hvae(e, zero)), "on the two-level HVAE" + (
            " (zero biases)" if zero else ""
        )
    return None


def _evaluate(expr, ch):
    expr = expr.replace(lambda e: e.func == reader.KL, lambda e: _kl(ch, e))
    expr = expr.replace(lambda e: e.func == reader.E, lambda e: _expectation(ch, e))

    def integral(body, *limits):
        names = [getattr(v, "name", None) for (v, *_) in limits]
        if (xs := ch.over(names)) is None:
            raise NotOnTheChain(f"an integral over {names}")
        return _integrate(_densities(ch, _logs(body, ch)), xs)

    expr = expr.replace(sp.Integral, integral)
    expr = _densities(ch, _logs(expr, ch))
    return sp.expand(sp.expand_log(expr, force=True))
