"""Closed-form Gaussian integrals used by the background derivations (eqs. 1-29).

Expectations of polynomials are taken by moments (`udm.derivations.core.expect_normal`). The
ELBO derivations also need the log of an integral of exp(quadratic) -- the evidence
log int p(x, z) dz and log E_q[p(x, z) / q(z | x)] -- which are Gaussian integrals:

* `log_integral_exp(f, z)`: log int exp(f(z)) dz, by completing the square in z;
* `log_expect_exp(f, z, mean, var)`: log E_{z ~ N(mean, var)}[exp(f(z))], by the moment
  generating function of a Gaussian quadratic form (a second, independent route).

Both require the quadratic coefficient to make the integral finite; the derivations only
call them where it is (the integrand is a density times a bounded ratio).
"""

from __future__ import annotations

import sympy as sp

from udm.derivations.core import complete_square


def log_integral_exp(f, z: sp.Symbol):
    """log int exp(f(z)) dz for f quadratic in z with negative leading coefficient."""
    _mean, var, rest = complete_square(f, z)
    return tidy(rest + sp.log(2 * sp.pi * var) / 2)


def log_expect_exp(f, z: sp.Symbol, mean, var):
    """log E[exp(f(z))], z ~ N(mean, var), f = a z^2 + c z + d, when 1 - 2 a var > 0.

    With z = mean + sqrt(var) u: E[exp(alpha u^2 + beta u)] = (1 - 2 alpha)^(-1/2)
    exp(beta^2 / (2 (1 - 2 alpha))), alpha = a var, beta = (2 a mean + c) sqrt(var).
    """
    poly = sp.Poly(sp.expand(f), z)
    a, c, d = (poly.coeff_monomial(z**k) for k in (2, 1, 0))
    denom = sp.factor(sp.cancel(1 - 2 * a * var))
    return tidy(
        d + a * mean**2 + c * mean - sp.log(denom) / 2 + (2 * a * mean + c) ** 2 * var / (2 * denom)
    )


def log_bivariate_normal(u, v, mean_u, mean_v, var_u, var_v, cov):
    """log N((u, v); (mean_u, mean_v), [[var_u, cov], [cov, var_v]])."""
    det = var_u * var_v - cov**2
    du, dv = u - mean_u, v - mean_v
    quad = (var_v * du**2 - 2 * cov * du * dv + var_u * dv**2) / det
    return -sp.log(2 * sp.pi) - sp.log(det) / 2 - quad / 2


def log_mvn(values, mean: sp.Matrix, cov: sp.Matrix):
    """log N(values; mean, cov) for a small symbolic covariance matrix (adjugate / det)."""
    d = sp.Matrix(values) - mean
    k = cov.shape[0]
    # factor the determinant so that its log expands (a product of variances here)
    det = sp.factor(cov.det())
    quad = sp.expand((d.T * cov.adjugate() * d)[0, 0]) / det
    return -k * sp.log(2 * sp.pi) / 2 - sp.log(det) / 2 - quad / 2


def tidy(expr):
    """Logs expanded, the rest as one cancelled fraction: keeps nested results small.

    Only rewrites (expand_log with the symbols' positivity, cancel): the value is unchanged,
    and every step built from it is still checked against its neighbours.
    """
    expr = sp.expand(sp.expand_log(sp.expand(expr), force=True))
    terms = sp.Add.make_args(expr)
    logs = sp.Add(*[t for t in terms if t.has(sp.log)])
    atoms = sorted(logs.atoms(sp.log), key=str)
    collected = sp.Add(*[sp.cancel(logs.coeff(atom)) * atom for atom in atoms])
    return collected + sp.cancel(expr - logs)
