"""The paper's own lines: ELBO lines (34)-(58) evaluated on the chain, lines held unevaluated,
and no numbered line shown identical to the one before where the paper's two differ."""

import importlib

import pytest

from udm import latex_reader as reader
from udm import paper_form, printed_match, registry

pytestmark = pytest.mark.eq(7, *range(25, 29), *range(34, 59))


@pytest.fixture(scope="module")
def derivations():
    built = {}
    for entry in registry.index().values():
        for impl in entry.implementations["derivations"]:
            if impl.path not in built:
                module, name = impl.path.rsplit(".", 1)
                built[impl.path] = getattr(importlib.import_module(module), name)()
    return {path: d for path, d in built.items() if hasattr(d, "steps")}


def test_no_numbered_line_is_shown_identical_to_the_line_before(derivations):
    assert paper_form.repeats(derivations) == []


def test_without_the_paper_form_lines_collapse(derivations):
    """The check can fail: with no verdicts, SymPy's canonical lines repeat (eqs. (39)-(43))."""
    found = paper_form.repeats(derivations, verdicts={})
    assert ("udm.derivations.vdm.elbo.elbo_derivation_one", 38, 39) in found
    assert len(found) >= 30


def test_a_line_is_shown_in_the_paper_form_only_where_proved(derivations):
    verdicts = printed_match.records(printed_match.match_all(range(38, 46)))
    path = "udm.derivations.vdm.elbo.elbo_derivation_one"
    shown = {ln.step.eq: ln for ln in paper_form.lines(path, derivations[path], verdicts)}
    assert {n for n, ln in shown.items() if ln.form == "paper"} == set(range(38, 45))
    assert shown[45].form == "machine"  # (45) as printed is false (erratum)
    assert r"\prod_{t=2}^{T} p_{\theta}(x_{t-1} | x_t)" in shown[39].latex
    assert r"\prod_{t=1}^{T - 1} p_{\theta}(x_t | x_{t+1})" in shown[40].latex


@pytest.mark.parametrize(
    "number, expected",
    [
        (35, r"\frac{p(x_{0:T}) q(x_{1:T} | x_0)}{q(x_{1:T} | x_0)}"),  # not cancelled
        (105, r"\bar\alpha_{t-1} - \bar\alpha_{t-1} \bar\alpha_t + \bar\alpha_{t-1} \bar\alpha_t"),
        (124, r"\frac{1}{\sqrt{\alpha_t}} x_t - \frac{1 - \alpha_t}{\sqrt{1 - \bar\alpha_t}"),
        (102, r"\frac{1}{2} \frac{1 - \bar\alpha_t}{\left(1 - \alpha_t\right)"),
        (58, r"- D_{\mathrm{KL}}(q(x_{T} | x_0) \| p(x_{T})) - \sum_{t=2}^{T}"),
        (66, r"\sqrt{1 - \alpha_t \alpha_{t-1}} \epsilon_{t-2}"),
    ],
)
def test_held_lines_print_as_the_paper_groups_them(number, expected):
    assert expected in reader.held_latex(reader.held_right_side(number))


@pytest.mark.parametrize("number", [*range(34, 45), *range(47, 59), 25, 26, 27, 28, 7])
def test_elbo_lines_match_on_the_chain(number):
    result = printed_match.match(number)
    expected = False if number == 45 else True  # (45): erratum
    assert result.printed_match is expected, result.reason


@pytest.mark.parametrize(
    "number, old, new",
    [
        (39, r"\prod_{t=2}^{T}p_{\theta}", r"\prod_{t=1}^{T}p_{\theta}"),  # a range
        (40, r"p_{\theta}(x_{t}|x_{t+1})", r"p_{\theta}(x_{t+1}|x_{t})"),  # a re-indexing
        (44, r"\sum_{t=1}^{T-1}", r"\sum_{t=2}^{T-1}"),
        (55, r"{q(x_T|x_0)}", r"{q(x_1|x_0)}"),  # the telescoped ratio
        (
            57,
            r"\mathbb{E}_{q(x_{1}|x_0)}\left[\log p_{\theta}",
            r"\mathbb{E}_{q(x_{1}|x_0)}\left[2\log p_{\theta}",
        ),
        (58, r"- \underbrace{D_{\mathrm{KL}}", r"+ \underbrace{D_{\mathrm{KL}}"),
        (58, r"\sum_{t=2}^{T} \underbrace", r"\sum_{t=1}^{T} \underbrace"),
        (36, r"\left[\frac{p(x_{0:T})}{q(x_{1:T}|x_0)}\right]", r"\left[p(x_{0:T})\right]"),
        (
            27,
            r"\left[\frac{p(x, z_{1:T})}{q_{\phi}(z_{1:T}|x)}\right]",
            r"\left[p(x, z_{1:T})\right]",
        ),
        (7, r"\left[\frac{p(x, z)}{q_{\phi}(z|x)}\right]", r"\left[p(x, z)\right]"),
    ],
)
def test_a_wrong_elbo_line_fails_on_the_chain(number, old, new):
    right = reader.parse_equation(number)
    assert old in right.latex
    wrong = reader.parse_latex(right.latex.replace(old, new, 1), right.lhs, right.lhs_from, number)
    assert printed_match.match(number, wrong).printed_match is not True
