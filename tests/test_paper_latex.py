"""The reader of the paper's LaTeX (udm/latex_reader.py).

Expected expressions are written by hand from the paper's printed lines, with the symbols of
derivations/symbols.py; a line differs from its expectation when SymPy cannot reduce the
difference to zero.
"""

from __future__ import annotations

import pytest
import sympy as sp

from udm import catalog
from udm import latex_reader as reader
from udm.derivations.symbols import (
    alpha_bar_prev,
    alpha_bar_t,
    alpha_t,
    eps,
    eps_hat,
    guidance_scale,
    omega,
    score,
    snr_s,
    snr_t,
    var_q,
    x_0,
    x_0_hat,
    x_t,
)

a, ab, abp = alpha_t, alpha_bar_t, alpha_bar_prev
p = sp.Function("p")
sq = (x_0_hat - x_0) ** 2  # ||x_hat_theta(x_t, t) - x_0||_2^2 on one coordinate
mu_q, mu_theta = reader.mu_q, reader.mu_theta
cond_score = sp.Derivative(sp.log(p(x_t, reader.given(sp.Symbol("y", real=True)))), x_t)


def same(u, v) -> bool:
    return sp.simplify(u - v) == 0


# number -> (relation, expected left side, expected right side), from the paper by hand
EXPECTED = {
    69: ("=", x_t, sp.sqrt(ab) * x_0 + sp.sqrt(1 - ab) * eps),
    85: ("=", var_q, (1 - a) * (1 - abp) / (1 - ab)),
    93: ("=", mu_q, (sp.sqrt(a) * (1 - abp) * x_t + sp.sqrt(abp) * (1 - a) * x_0) / (1 - ab)),
    101: (
        "=",
        abp * (1 - a) ** 2 / (2 * var_q * (1 - ab) ** 2) * sq,
        abp * (1 - a) ** 2 / (2 * (1 - a) * (1 - abp) / (1 - ab) * (1 - ab) ** 2) * sq,
    ),
    108: (
        "=",
        abp * (1 - a) ** 2 / (2 * var_q * (1 - ab) ** 2) * sq,
        (abp / (1 - abp) - ab / (1 - ab)) / 2 * sq,
    ),
    109: ("=", snr_t, ab / (1 - ab)),
    110: ("=", abp * (1 - a) ** 2 / (2 * var_q * (1 - ab) ** 2) * sq, (snr_s - snr_t) / 2 * sq),
    111: ("=", snr_t, sp.exp(-omega)),
    113: ("=", ab, 1 / (1 + sp.exp(omega))),
    114: ("=", 1 - ab, 1 / (1 + sp.exp(-omega))),
    115: ("=", x_0, (x_t - sp.sqrt(1 - ab) * eps) / sp.sqrt(ab)),
    124: ("=", mu_q, x_t / sp.sqrt(a) - (1 - a) / (sp.sqrt(1 - ab) * sp.sqrt(a)) * eps),
    125: ("=", mu_theta, x_t / sp.sqrt(a) - (1 - a) / (sp.sqrt(1 - ab) * sp.sqrt(a)) * eps_hat),
    133: ("=", x_0, (x_t + (1 - ab) * score) / sp.sqrt(ab)),
    142: ("=", mu_q, x_t / sp.sqrt(a) + (1 - a) / sp.sqrt(a) * score),
    151: ("=", score, -eps / sp.sqrt(1 - ab)),
    170: ("=", cond_score, guidance_scale * cond_score + (1 - guidance_scale) * score),
}


@pytest.mark.parametrize("number", sorted(EXPECTED))
def test_lines_parse_into_the_expected_expressions(number):
    relation, lhs, rhs = EXPECTED[number]
    line = reader.parse_equation(number)
    assert line.relation == relation
    assert same(line.lhs, lhs), (line.lhs, lhs)
    assert same(line.rhs, rhs), (line.rhs, rhs)


def test_structured_lines_keep_their_relation_and_parts():
    line = reader.parse_equation(70)  # x_t ~ N(x_t; sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)
    assert (line.kind, line.relation, line.lhs_from) == ("structured", "sim", 61)
    assert line.rhs == reader.Normal(x_t, sp.sqrt(ab) * x_0, 1 - ab)
    line = reader.parse_equation(84)  # propto N(x_{t-1}; mu_q, Sigma_q)
    mean = (sp.sqrt(a) * (1 - abp) * x_t + sp.sqrt(abp) * (1 - a) * x_0) / (1 - ab)
    assert line.relation == "propto"
    assert same(line.rhs.args[1], mean) and same(line.rhs.args[2], (1 - a) * (1 - abp) / (1 - ab))
    line = reader.parse_equation(99)  # argmin_theta of the weighted x_0 regression
    theta = sp.Symbol("theta", real=True)
    weight = abp * (1 - a) ** 2 / (2 * var_q * (1 - ab) ** 2)
    assert line.rhs.func == reader.ARGOPS["min"] and line.rhs.args[1] == theta
    assert same(line.rhs.args[0], weight * sq)


def test_continuation_lines_take_the_left_side_of_their_chain():
    assert reader.parse_equation(124).lhs_from == 116
    assert reader.parse_equation(108).lhs_from == 101
    assert reader.parse_equation(8).relation == "geq"
    assert reader.parse_equation(8).lhs == sp.log(p(sp.Symbol("x", real=True)))


@pytest.mark.parametrize(
    "number, wrong",
    [
        (85, ("(1 - \\alpha_t)(1 - \\bar\\alpha_{t-1})", "(1 - \\alpha_t)(1 - \\bar\\alpha_{t})")),
        (110, ("\\text{SNR}(t-1)", "\\text{SNR}(t)")),
        (99, ("(1-\\alpha_t)^2", "(1-\\alpha_t)^3")),
        (151, ("\\sqrt{1 - \\bar{\\alpha}_t}", "\\sqrt{1 - \\alpha_t}")),
    ],
)
def test_a_changed_line_parses_to_something_else(number, wrong):
    old, new = wrong
    latex = catalog.get(number).latex
    assert old in latex
    right = reader.parse_equation(number)
    changed = reader.parse_latex(latex.replace(old, new, 1), right.lhs, right.lhs_from, number)
    assert changed.kind != "reason"
    assert not same(changed.rhs, right.rhs)


def test_the_lines_plain_parse_latex_fails_on_now_parse():
    for number in [70, 84, 85, 99, *range(108, 111), *range(115, 122), 124, 131, 133, 151]:
        assert reader.parse_equation(number).kind != "reason", number
    assert reader.parse_equation(167).kind != "reason"


def test_every_catalog_line_parses_or_has_a_reason():
    parsed = reader.parse_all()
    assert sorted(parsed) == sorted(catalog.load())
    for line in parsed.values():
        assert line.kind in ("algebraic", "structured", "reason")
        assert (line.kind == "reason") == bool(line.reason)
        assert line.kind == "reason" or line.rhs is not None
    total = reader.counts(parsed)["all"]
    assert total["algebraic"] + total["structured"] + total["reason"] == len(parsed)


@pytest.mark.parametrize(
    "latex, reason",
    [
        (r"x_t = a \times b", "grammar"),
        (r"= \ldots", "ellipsis"),
        (r"\mathrm{foo}(x)", "does not map"),
        (r"x_t = \frac{1}{", "grammar"),
    ],
)
def test_lines_the_reader_cannot_read_get_a_reason(latex, reason):
    line = reader.parse_latex(latex, lhs=x_t)
    assert line.kind == "reason" and reason in line.reason


def test_matrix_notation_is_read_on_one_coordinate():
    mu_x, mu_y, var_x, var_y = sp.symbols("mu_x mu_y Sigma_x Sigma_y", real=True)
    line = reader.parse_equation(86)  # the Gaussian KL with transpose, trace, determinant
    expected = (sp.log(var_y / var_x) - 1 + var_x / var_y + (mu_y - mu_x) ** 2 / var_y) / 2
    assert same(line.rhs, expected) and line.notes


def test_algebraic_lines_use_only_the_paper_symbols():
    line = reader.parse_equation(104)
    assert line.kind == "algebraic"
    assert line.rhs.free_symbols == {abp, ab, x_0, x_0_hat}
    assert reader.parse_equation(72).kind == "structured"  # Gaussian densities


# --- the paper's line against the derivation's line N (udm/printed_match.py) --------------


@pytest.mark.parametrize(
    "number",
    [
        *(1, 2, 3, 12, 19, 33, 59, 61, 64, 70, 71, 75, 86, 90, 99, 101, 104, 108, 110, 112),
        *(87, 115, 117, 124, 126, 131, 142, 144, 151, 163, 166, 170),
    ],
)
def test_derivation_lines_match_the_printed_lines(number):
    from udm import printed_match

    result = printed_match.match(number)
    assert result.printed_match is True, result.reason


@pytest.mark.parametrize(
    "number, old, new",
    [
        (99, "(1-\\alpha_t)^2", "(1-\\alpha_t)^3"),  # a changed exponent
        (117, "\\sqrt{\\bar{\\alpha}_{t-1}}", "\\sqrt{\\bar{\\alpha}_{t}}"),  # t for t-1
        (104, "\\bar{\\alpha}_{t-1}-\\bar{\\alpha}_t", "\\bar{\\alpha}_{t-1}+\\bar{\\alpha}_t"),
        (170, "(1 - \\gamma)", "(1 + \\gamma)"),
        (75, "\\alpha_t x_{t-1}^2", "x_{t-1}^2"),  # a line with the paper's C(x_t, x_0)
        (1, "p(x, z)", "p(z)"),  # an integral on the linear-Gaussian family
        (19, "- \\underbrace{D", "+ \\underbrace{D"),  # a KL on the family
        (71, "q(x_{t-1}|x_0)}{q(x_{t}|x_0)}", "q(x_{t}|x_0)}{q(x_{t-1}|x_0)}"),  # densities
        (86, "\\mathrm{tr}(\\Sigma_y^{-1}\\Sigma_x)", "\\mathrm{tr}(\\Sigma_x^{-1}\\Sigma_y)"),
        (112, "\\exp(-\\omega", "\\exp(\\omega"),  # the equation through its left side
        (70, "\\left(1 - \\bar\\alpha_t\\right)", "\\left(1 - \\alpha_t\\right)"),  # a law
        (59, "\\sqrt{1 - \\alpha_t}\\epsilon", "\\sqrt{1 - \\bar\\alpha_t}\\epsilon"),
        (61, "\\sqrt{1 - \\alpha_t}\\epsilon_{t-1}^*", "\\sqrt{\\alpha_t}\\epsilon_{t-1}^*"),
        (131, "(1 - \\bar{\\alpha}_t)", "(1 + \\bar{\\alpha}_t)"),  # on the Gaussian family
        (126, "\\mu_{\\theta},\\Sigma_q", "\\mu_{\\theta},2\\Sigma_q"),  # mu as eq. (124)
        (87, "\\mu_{\\theta},\\Sigma_q", "\\mu_{\\theta},2\\Sigma_q"),  # the KL's integrand
    ],
)
def test_a_wrong_catalog_line_fails_its_match(number, old, new):
    from udm import printed_match

    right = reader.parse_equation(number)
    assert old in right.latex
    wrong = reader.parse_latex(right.latex.replace(old, new, 1), right.lhs, right.lhs_from, number)
    result = printed_match.match(number, wrong)
    assert result.printed_match is not True, result.reason
    assert printed_match.match(number).printed_match is True


def test_equal_refutes_at_a_point_and_proves_symbolically():
    from udm.printed_match import equal

    assert equal((1 - ab) / (1 - ab), 1) == (True, "identical")
    ok, how = equal(ab / (1 - ab) - abp / (1 - abp), (ab - abp) / ((1 - ab) * (1 - abp)))
    assert ok is True and "simplify" in how
    ok, how = equal(sp.sqrt(ab), ab)
    assert ok is False and "differ" in how


def test_a_parsed_line_has_a_json_record():
    record = reader.parse_equation(109).to_json()
    assert record["kind"] == "algebraic" and record["relations"] == ["="]
    assert record["chain_sympy"] == ["snr_t", "alpha_bar_t/(1 - alpha_bar_t)"]
    assert record["chain_latex"][0] == r"\mathrm{SNR}(t)"
    assert reader.parse_equation(67).to_json()["reason"].startswith("an ellipsis")


# --- the stored verdicts and the CLI (udm/printed_match.json, udm eq, udm coverage) -------


def test_stored_printed_matches_are_current():
    """udm/printed_match.json is what matching every line now gives (run `udm verify`)."""
    from udm import printed_match, status

    assert printed_match.records(printed_match.match_all()) == status.load_printed()


def test_udm_eq_and_coverage_show_the_match():
    import json

    from click.testing import CliRunner

    from udm import printed_match
    from udm.cli import main

    runner = CliRunner()
    records = json.loads(runner.invoke(main, ["coverage", "--json"]).output)
    by_number = {r["number"]: r for r in records}
    assert all("printed_match" in r and "printed_match_reason" in r for r in records)
    for n in (85, 100, 132, 170):
        fresh = printed_match.match(n)
        shown = json.loads(runner.invoke(main, ["eq", str(n), "--json", "--no-steps"]).output)
        for record in (shown, by_number[n]):
            assert record["printed_match"] is fresh.printed_match, n
            assert record["printed_match_reason"] == fresh.reason, n
        text = runner.invoke(main, ["eq", str(n), "--no-steps"]).output
        word = {True: "matched", False: "differs:", None: "not compared:"}[fresh.printed_match]
        assert f"  printed line: {word}" in text, n
    table = runner.invoke(main, ["coverage"]).output.splitlines()
    assert table[0].split()[-1] == "printed"
    total = sum(r["printed_match"] is True for r in records)
    paper_total = next(line for line in table if line.startswith("total"))  # the paper's 170
    assert paper_total.split()[-1] == str(total) and total >= 100


def test_an_erratum_the_derivation_proves_makes_the_printed_line_false():
    from udm import printed_match

    for n in (132, 133, 150):  # the paper's grad log p(x_t); proved: grad log q(x_t | x_0)
        result = printed_match.match(n)
        assert result.printed_match is False and "erratum" in result.reason, n


def test_logs_split_only_over_the_schedules_unit_interval():
    """log((1 - alpha_t)(1 - alpha_bar_t)) = log(1 - alpha_t) + log(1 - alpha_bar_t) holds
    because each alpha lies in (0, 1); SymPy's simplify cannot see it (it knows alpha > 0
    only), the change alpha = 1 / (1 + u) proves it. The same shape in symbols that carry
    no (0, 1) domain stays unproved: the change is never applied to them."""
    import sympy as sp

    from udm import printed_match
    from udm.derivations import symbols as S

    a, ab = S.alpha_t, S.alpha_bar_t
    ok, why = printed_match.equal(sp.log((1 - a) * (1 - ab)), sp.log(1 - a) + sp.log(1 - ab))
    assert ok is True and printed_match.UNIT_CHANGE in why
    p, q = sp.symbols("p q", positive=True)
    ok, why = printed_match.equal(sp.log((1 - p) * (1 - q)), sp.log(1 - p) + sp.log(1 - q))
    assert ok is None and printed_match.UNPROVED in why
    off = sp.log(1 - a) + sp.log(1 - ab) + sp.Rational(1, 1000)
    assert printed_match.equal(sp.log((1 - a) * (1 - ab)), off)[0] is False


@pytest.mark.eq(85, 125, 143, 21)
def test_a_closed_form_matches_a_line_no_step_is_numbered_with(monkeypatch):
    """Eqs. (85), (125), (143) have no numbered step; the closed forms var_q,
    mu_theta_from_eps, mu_theta_from_score (each proved equal to a derivation line) are the
    printed right sides. Scaled by 1.001 they match nothing, and a closed form of another
    quantity (eq. (21)'s KL, beside the printed prior p(z) = N(0, I)) is no finding: None."""
    import dataclasses

    from udm import printed_match

    for n in (85, 125, 143):
        result = printed_match.match(n)
        assert result.printed_match is True and "closed form" in result.reason, (n, result)
    assert printed_match.match(21).printed_match is None
    built = printed_match._build

    def scaled(module, name):
        d = built(module, name)
        forms = tuple(dataclasses.replace(cf, expr=cf.expr * 1.001) for cf in d.results)
        return dataclasses.replace(d, results=forms)

    monkeypatch.setattr(printed_match, "_build", scaled)
    for n in (85, 125, 143):
        assert printed_match.match(n).printed_match is None, n


def test_a_probe_never_accepts_a_match(monkeypatch):
    """Equal at every random point but not proved equal (simplify disabled here) is no match:
    the verdict is None, never True. A probe only refutes."""
    import sympy as sp

    from udm import printed_match

    x = sp.Symbol("x", real=True)
    monkeypatch.setattr(printed_match.sp, "simplify", lambda e: e)
    ok, why = printed_match.equal(x * (x + 1), x**2 + x)
    assert ok is None and printed_match.UNPROVED in why
    assert printed_match.equal(x * (x + 1), x**2 + 2 * x)[0] is False
