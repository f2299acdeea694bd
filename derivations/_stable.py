"""Functions whose value is an elementary expression but whose float64 evaluation must not be.

A KL divergence between nearly equal Gaussians is a tiny number assembled from O(1) terms:
(1/2)(r - 1 - log r + d^2 / var_p) with r = var_q / var_p near 1 cancels to ~(r - 1)^2 / 4,
and printed as written it keeps only eps / (r - 1)^2 of relative accuracy. The derivations
write such closed forms with the functions below. For the machine they are their
definitions: `elementary` replaces each by the elementary expression it stands for before
any check (udm.derivations.core.equal), so a closed form written with them is *proved* equal to
the paper's line. For NumPy they print as calls of udm.reference._stable, whose routines keep
full relative accuracy (tests/test_kl_precision.py measures them against 50-digit mpmath).

* ``expm1mx(u) = exp(u) - 1 - u`` (= r - 1 - log r at u = log r), series near 0;
* ``log_ratio(a, b) = log(a / b)``, as log1p((a - b) / b) when a / b is within a factor 2
  of 1 (a - b is then exact, Sterbenz), so a tiny log ratio keeps its relative accuracy;
* ``log1p(x) = log(1 + x)``, NumPy's log1p;
* ``one_minus_product(a, b) = 1 - a b``, as (1 - a) + a (1 - b) (no cancellation near 1);
* ``one_minus_exp(u) = 1 - exp(u)``, as -expm1(u) (1 - alpha_bar from log alpha_bar).
"""

from __future__ import annotations

import sympy as sp
from sympy.core.evalf import prec_to_dps


class StableFunction(sp.Function):
    """A function that stands for an elementary expression (`elementary`) and prints as the
    numerically stable routine of the same name in udm.reference._stable."""

    def elementary(self) -> sp.Expr:
        raise NotImplementedError

    def _eval_evalf(self, prec):
        return self.elementary().evalf(prec_to_dps(prec))

    def _numpycode(self, printer) -> str:
        args = ", ".join(printer._print(a) for a in self.args)
        return f"_stable.{type(self).__name__}({args})"


class expm1mx(StableFunction):  # lower case, like SymPy's functions
    """exp(u) - 1 - u: r - 1 - log r at u = log r, >= 0, ~u^2 / 2 near u = 0."""

    nargs = 1

    def elementary(self) -> sp.Expr:
        (u,) = self.args
        return sp.exp(u) - 1 - u

    def _latex(self, printer) -> str:
        return rf"\operatorname{{expm1mx}}\left({printer._print(self.args[0])}\right)"


class log_ratio(StableFunction):
    """log(a / b) for a, b > 0, accurate when a / b is near 1."""

    nargs = 2

    def elementary(self) -> sp.Expr:
        a, b = self.args
        return sp.log(a / b)

    def _latex(self, printer) -> str:
        a, b = (printer._print(x) for x in self.args)
        return rf"\log\frac{{{a}}}{{{b}}}"


class one_minus_product(StableFunction):  # lower case, like SymPy's functions
    """1 - a b for a, b in (0, 1], printed as (1 - a) + a (1 - b): a sum of two nonnegative
    terms, so 1 - alpha_t alpha_bar_{t-1} = 1 - alpha_bar_t keeps its relative accuracy near
    alpha_bar_t = 1 (the product a b rounds away the small difference)."""

    nargs = 2

    def elementary(self) -> sp.Expr:
        a, b = self.args
        return 1 - a * b

    def _numpycode(self, printer) -> str:
        a, b = (printer._print(x) for x in self.args)
        return f"((1 - {a}) + {a}*(1 - {b}))"

    def _latex(self, printer) -> str:
        a, b = (printer._print(x) for x in self.args)
        return rf"\left(1 - {a} {b}\right)"


class one_minus_exp(StableFunction):  # lower case, like SymPy's functions
    """1 - exp(u) for u <= 0 (1 - alpha_bar from log alpha_bar), printed as -expm1(u) + 0.0:
    full relative accuracy near u = 0, and +0.0 (not -0.0) at u = 0, so a weight divided by
    it at t = 1 (alpha_bar_0 = 1) is +inf."""

    nargs = 1

    def elementary(self) -> sp.Expr:
        return 1 - sp.exp(self.args[0])

    def _numpycode(self, printer) -> str:
        return f"(-numpy.expm1({printer._print(self.args[0])}) + 0.0)"

    def _latex(self, printer) -> str:
        return rf"\left(1 - e^{{{printer._print(self.args[0])}}}\right)"


class log1p(StableFunction):
    """log(1 + x) for x > -1, accurate for tiny x (NumPy's log1p)."""

    nargs = 1

    def elementary(self) -> sp.Expr:
        return sp.log(1 + self.args[0])

    def _numpycode(self, printer) -> str:
        return f"numpy.log1p({printer._print(self.args[0])})"

    def _latex(self, printer) -> str:
        return rf"\log\left({printer._print(1 + self.args[0])}\right)"


def elementary(expr):
    """expr with every StableFunction replaced by the elementary expression it stands for."""
    expr = sp.sympify(expr)
    while expr.atoms(StableFunction):
        expr = expr.replace(lambda e: isinstance(e, StableFunction), lambda e: e.elementary())
    return expr
