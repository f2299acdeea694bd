"""Engine soundness: false statements built with the public engine API are rejected.

Each case is a derivation a careless (or dishonest) author could write; the engine must
refuse it with a message naming the step (or the facts / closed form) and the rule.
"""

from __future__ import annotations

import pytest
import sympy as sp

from udm.derivations.core import (
    KL,
    PLAIN_ALGEBRA,
    RULES,
    SPECIAL_RULES,
    ClosedForm,
    Derivation,
    DerivationError,
    Step,
    abbreviation,
    definition,
    lemma,
    square_roots,
)
from udm.derivations.symbols import alpha_t, x_0

x, y = sp.symbols("x y", real=True)
a = sp.Symbol("a", positive=True)
f, g = sp.Function("f"), sp.Function("g")


def _chain(*steps, **kw) -> Derivation:
    return Derivation("false", [Step(x, "definition"), *steps], equations=(85,), **kw)


CASES = {
    # facts: a substitution with no proof "proves" x = y
    "bare fact": (_chain(Step(y, "substitute"), facts={x: y}), r"facts \[fact\].*names no proof"),
    # a lemma proved by the very line it is used for
    "circular lemma": (
        _chain(Step(y, "substitute", eq=85), facts=(lemma(x, y, 85),)),
        r"facts \[fact\].*restates eq\. \(85\)",
    ),
    "lemma without source": (
        _chain(Step(y, "substitute"), facts=(lemma(x, y, ""),)),
        r"facts \[fact\].*names the equation or derivation",
    ),
    "definition that is not one": (
        _chain(Step(y, "substitute"), facts=(definition(x, y, 115),)),
        r"facts \[fact\].*not a definition in the catalog",
    ),
    "abbreviating a paper symbol": (
        _chain(Step(y, "substitute"), facts=(abbreviation(x_0, y),)),
        r"facts \[fact\].*only a private symbol",
    ),
    "lemma from nowhere": (
        _chain(Step(y, "substitute"), facts=(lemma(x, y, "somewhere.else"),)),
        r"facts \[fact\].*must be a derivation's dotted path",
    ),
    "square root of a real symbol": (
        _chain(Step(x, "algebra"), facts=square_roots([x])),
        r"facts \[fact\].*needs alpha > 0",
    ),
    # inequalities: a gap that is not >= 0 in general
    "jensen gap x + 3": (
        _chain(Step(-3 + x - x - 3 + 3, "jensen", gap=x + 3)),
        r"step 1 \[jensen\]",
    ),
    "jensen gap with wrong value": (
        _chain(Step(x - a, "jensen", gap=2 * a)),
        r"step 1 \[jensen\] prev - next is not the stated gap",
    ),
    "jensen KL of a non-Gaussian": (
        _chain(Step(x - KL.normal(0, -a, 0, 1).expr, "jensen", gap=KL.normal(0, -a, 0, 1))),
        r"step 1 \[jensen\].*not proved positive definite",
    ),
    # a definition step hides an unproved equality in the middle of a chain
    "definition mid-chain": (
        _chain(Step(y, "definition", eq=85)),
        r"eq\. \(85\) \[definition\] a definition step may only open a chain",
    ),
    # an equality labelled as the paper's ">=" line (eq. (8) opens with \geq)
    "= step as the paper's >= line": (
        _chain(Step(x + 0, "algebra", eq=8)),
        r"eq\. \(8\) \[algebra\] the paper's line \(8\) is '\\geq', this step '='",
    ),
    # generic functions carry no hidden positivity
    "sqrt(f^2) = f": (
        Derivation(
            "false",
            [Step(sp.sqrt(f(x) ** 2), "definition"), Step(f(x), "algebra", eq=153)],
            equations=(153,),
        ),
        r"eq\. \(153\) \[algebra\]",
    ),
    "log(fg) = log f + log g": (
        Derivation(
            "false",
            [
                Step(sp.log(f(x) * g(x)), "definition"),
                Step(sp.log(f(x)) + sp.log(g(x)), "log_rules", eq=153),
            ],
            equations=(153,),
        ),
        r"eq\. \(153\) \[log_rules\]",
    ),
    # plain algebra errors, each rule by name
    "(a+b)^2 = a^2 + b^2": (
        _chain(Step(x, "algebra"), Step(x**2 + 1, "algebra")),
        r"step 2 \[algebra\] differs",
    ),
    "derivative dropped": (
        Derivation(
            "false",
            [Step(sp.Derivative(x**2, x), "definition"), Step(x**2, "differentiate", eq=153)],
            equations=(153,),
        ),
        r"eq\. \(153\) \[differentiate\]",
    ),
    # a closed form that is not the line it names
    "closed form off by 1e-3": (
        Derivation(
            "false",
            [Step(x, "definition"), Step(2 * x - x, "algebra", eq=85)],
            equations=(85,),
            results=(
                ClosedForm("c", (85,), x * (1 + sp.Rational(1, 1000)), ("x",), {}, "", line=85),
            ),
        ),
        r"closed form \[closed_form\] closed form c = line 85 fails",
    ),
    "closed form naming no line": (
        Derivation(
            "false",
            [Step(x, "definition")],
            equations=(85,),
            results=(ClosedForm("c", (85,), x, ("x",), {}, ""),),
        ),
        r"closed form \[closed_form\].*names no derivation line",
    ),
    "closed form with alpha swapped": (
        Derivation(
            "false",
            [Step(alpha_t * x, "definition"), Step(x * alpha_t, "algebra", eq=85)],
            equations=(85,),
            results=(ClosedForm("c", (85,), x, ("x",), {}, "", line=85),),
        ),
        r"closed form \[closed_form\]",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_engine_rejects(name):
    derivation, message = CASES[name]
    with pytest.raises(DerivationError, match=message):
        derivation.verify()


def test_a_licensed_fact_and_a_kl_gap_are_accepted():
    """The same shapes, made true, pass: the rejections above are about truth, not form."""
    ok = _chain(Step(y, "substitute"), facts=(lemma(x, y, 115),))
    ok.verify()
    kl = KL.normal(0, a, 0, 1)
    Derivation(
        "kl", [Step(x + kl.expr, "definition"), Step(x, "jensen", gap=kl)], equations=(4,)
    ).verify()
    square = Derivation(
        "sq", [Step(x**2 + 1, "definition"), Step(1, "jensen", gap=x**2)], equations=(4,)
    )
    square.verify()  # x^2 >= 0 is proved by SymPy from x real


def test_every_rule_is_a_check_of_its_own_or_labelled_plain_algebra():
    for rule, meaning in RULES.items():
        own = rule in SPECIAL_RULES or rule == "differentiate"
        assert own or (rule in PLAIN_ALGEBRA and "checked as plain algebra" in meaning), rule
