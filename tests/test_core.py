"""The derivation engine: each rule accepts a right step and rejects a slightly wrong one."""

from __future__ import annotations

import pytest
import sympy as sp

from udm.derivations.core import (
    KL,
    RULES,
    Derivation,
    DerivationError,
    Step,
    abbreviation,
    complete_square,
    expect_normal,
    normal_moment,
)

a, b = sp.symbols("a b", positive=True)
x, e1, e2 = sp.symbols("x e1 e2", real=True)
m = sp.Symbol("m", real=True)


def _run(prev, step, facts=()):
    d = Derivation("t", [Step(prev, "definition"), step], equations=(1,), facts=facts)
    return d.check()[-1]


@pytest.mark.parametrize(
    ("prev", "good", "bad"),
    [
        ((a + b) ** 2, a**2 + 2 * a * b + b**2, a**2 + b**2),
        (sp.sqrt(a * b), sp.sqrt(a) * sp.sqrt(b), sp.sqrt(a) * b),
        ((1 - a) / (1 - a * b), (1 - a) / (1 - a * b), (1 - a) / (1 - b)),
    ],
)
def test_algebra_accepts_equal_rejects_different(prev, good, bad):
    assert _run(prev, Step(good, "algebra")).ok
    result = _run(prev, Step(bad, "algebra"))
    assert not result.ok and "differs" in result.detail


def test_facts_are_applied():
    ab = sp.Symbol("ab", positive=True)
    assert _run(1 - ab, Step(1 - a * b, "substitute"), facts=(abbreviation(ab, a * b),)).ok
    assert not _run(1 - ab, Step(1 - a * b, "substitute")).ok


def test_sum_gaussians_compares_laws():
    prev = sp.sqrt(a) * e1 + sp.sqrt(1 - a) * e2
    assert _run(prev, Step(e1, "sum_gaussians", noise=(e1, e2))).ok
    assert not _run(prev, Step(sp.sqrt(a) * e1, "sum_gaussians", noise=(e1, e2))).ok
    assert not _run(prev + m, Step(e1, "sum_gaussians", noise=(e1, e2))).ok  # mean differs


def test_expectation_uses_gaussian_moments():
    over = (x, m, a)
    assert _run(x**2, Step(m**2 + a, "expectation", over=over)).ok
    assert not _run(x**2, Step(m**2, "expectation", over=over)).ok


def test_proportional_ignores_factors_free_of_the_variable():
    dens = sp.exp(-((x - m) ** 2) / (2 * a)) / sp.sqrt(2 * sp.pi * a)
    assert _run(dens, Step(sp.exp(-((x - m) ** 2) / (2 * a)), "proportional", wrt=x)).ok
    assert not _run(dens, Step(sp.exp(-(x**2) / (2 * a)), "proportional", wrt=x)).ok


def test_jensen_needs_the_exact_nonnegative_gap():
    kl = KL.normal(0, a, 0, 1)  # KL(N(0, a) || N(0, 1)) >= 0, built by the engine
    assert _run(kl.expr + b, Step(b, "jensen", gap=kl)).ok
    assert not _run(kl.expr + b, Step(b, "jensen", gap=kl.expr / 2)).ok
    assert not _run(b - a, Step(b, "jensen", gap=-a)).ok  # a negative gap is no inequality


def test_verify_names_equation_and_rule():
    d = Derivation("demo", [Step(a, "definition"), Step(2 * a, "algebra", eq=85)], equations=(85,))
    with pytest.raises(DerivationError, match=r"eq\. \(85\) \[algebra\]"):
        d.verify()


def test_equations_are_a_keyword_never_a_positional_argument():
    """The old call Derivation(title, (85,), steps) would put the numbers where the steps go:
    refused. A registered builder passes none (udm.register supplies them)."""
    steps = [Step(a, "definition"), Step(2 * a - a, "algebra", eq=85)]
    with pytest.raises(TypeError, match="not positional"):
        Derivation("old style", (85,), steps)
    assert Derivation("new style", steps).equations == ()
    assert Derivation("new style", steps, equations=(85,)).equations == (85,)


def test_step_rejects_unknown_rule_and_missing_arguments():
    with pytest.raises(ValueError, match="unknown rule"):
        Step(a, "magic")
    for rule in ("jensen", "proportional", "sum_gaussians", "expectation"):
        with pytest.raises(ValueError, match=rule.split("_")[0]):
            Step(a, rule)
    assert "jensen" in RULES


def test_normal_moments_match_known_values():
    # E[x^4] = m^4 + 6 m^2 v + 3 v^2 (independent route: the moment generating function)
    t = sp.Symbol("t")
    mgf = sp.exp(m * t + a * t**2 / 2)
    for k in range(6):
        assert sp.expand(normal_moment(k, m, a) - sp.diff(mgf, t, k).subs(t, 0)) == 0
    assert sp.expand(expect_normal((x - m) ** 2, x, m, a) - a) == 0


def test_complete_square_round_trips():
    mean, var, rest = complete_square(-(x**2) / (2 * a) + b * x / a + 1, x)
    assert sp.simplify(mean - b) == 0 and sp.simplify(var - a) == 0
    assert (
        sp.simplify(-((x - mean) ** 2) / (2 * var) + rest - (-(x**2) / (2 * a) + b * x / a + 1))
        == 0
    )
