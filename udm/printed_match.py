"""Does a derivation's line N say what the paper prints as eq. (N)?

For each equation, the paper's line is read by udm/latex_reader.py and compared with every
derivation step numbered N (`Step.eq == N`, found through the registry). The comparison
works on the right side of the paper's line (the derivations' steps are right sides; in a
chain `a = b = c` on b and c; a bare expression is its own right side), after these
substitutions, which both sides share:

* the closed forms of the paper's named quantities (`CLOSED_FORMS`): sigma_q^2(t),
  SNR(t), SNR(t-1), the squared error, and alpha_bar_t = alpha_t alpha_bar_{t-1};
* Gaussian densities N(x; m, v) and KLs between two Gaussians in closed form;
* names: a derivation's `x_{t-1}` is NOTATION's x_prev (`ALIASES`); eq. (86)'s mu_x, Sigma_x
  are the KL arguments mean_q, var_q (`PAPER_ALIASES`); guidance's densities as its
  derivations state them (`MODELS`);
* `argmin_theta f` compares its objective f; a line with the paper's unspecified
  C(x_t, x_0) (eq. (75)) matches when the two differ only by a term free of x_{t-1}.

Verdicts: True (identical, or equal at random points of the symbols' domains and then
`simplify(difference) == 0`; the reason says which), False (unequal at some point: a
finding), or None with a reason (no derivation line, a structured line the check cannot
evaluate, ...).

Run `python -m udm.printed_match` for the report (`--write` also stores the verdicts in
udm/printed_match.json). A full `udm verify` stores them too; `udm eq N` and `udm coverage`
read that file (`printed_match`, `printed_match_reason`), so they stay fast;
`latex_reader.parse_equation(N).to_json()` gives the parsed line.
"""

from __future__ import annotations

import importlib
import random
import time
from collections import Counter
from dataclasses import dataclass

import sympy as sp
from sympy.core.function import AppliedUndef

from udm import catalog, chain_family, registry
from udm import latex_reader as reader
from udm.derivations import symbols as S
from udm.derivations._stable import elementary
from udm.derivations.core import Step

a, ab, abp = S.alpha_t, S.alpha_bar_t, S.alpha_bar_prev
CLOSED_FORMS = {
    S.var_q: (1 - a) * (1 - abp) / (1 - ab),
    S.snr_t: ab / (1 - ab),
    S.snr_s: abp / (1 - abp),  # SNR(t - 1)
    S.sq_err: (S.x_0_hat - S.x_0) ** 2,
}
SCHEDULE = {ab: a * abp}  # alpha_bar_t = alpha_t alpha_bar_{t-1}
# names some derivations use for NOTATION's symbols (x_{t-1} is x_prev, alpha_{t-1} alpha_prev)
ALIASES = {"x_{t-1}": S.x_prev, "alpha_{t-1}": S.alpha_prev, "x_{t+1}": S.x_next}
# eq. (86)'s N(x; mu_x, Sigma_x), N(y; mu_y, Sigma_y) are NOTATION's KL arguments
PAPER_ALIASES = {
    86: {"mu_x": S.mean_q, "Sigma_x": S.var_q, "mu_y": S.mean_p, "Sigma_y": S.var_p},
}
# names that differ only by an index convention, and the paper's symbols that a derivation's
# line states through their definitions; each is shown in the verdict's reason
_star = {k: sp.Symbol(f"epsilon_{k}^*", real=True) for k in ("t", "{t-1}")}
_sq, _s1 = sp.sqrt(a), sp.sqrt(1 - ab)
_eps_mu = {  # eqs. (124), (125): mu_q, mu_theta through the source noise and its prediction
    "mu_q": S.x_t / _sq - (1 - a) / (_s1 * _sq) * S.eps,
    "mu_theta": S.x_t / _sq - (1 - a) / (_s1 * _sq) * S.eps_hat,
}
_score_mu = {  # eqs. (142), (143): mu_q, mu_theta through the score and its prediction
    "mu_q": S.x_t / _sq + (1 - a) / _sq * S.score,
    "mu_theta": S.x_t / _sq + (1 - a) / _sq * S.score_hat,
}
_mean, _var = sp.Symbol("mean", real=True), sp.Symbol("var", positive=True)
RENAMED = {
    # the derivation fixes T = 2
    33: ({"x_T": sp.Symbol("x_2", real=True)}, "x_T is x_2 (the derivation fixes T = 2)"),
    # the derivation indexes the noise of the step into x_t as epsilon_t^* (paper: t-1), and
    # names the merged noise of eqs. (64)-(66) epsilon_{t-1}^* (paper: epsilon_{t-2})
    **{
        n: (
            {"epsilon_{t-1}^*": _star["t"], "epsilon_{t-2}^*": _star["{t-1}"]},
            "noise indices shifted by one (the derivation's epsilon_t^* is the paper's "
            "epsilon_{t-1}^*)",
        )
        for n in (61, 62, 63)
    },
    **{
        n: (
            {"epsilon_{t-2}": _star["{t-1}"]},
            "the paper's merged noise epsilon_{t-2} is the derivation's epsilon_{t-1}^*",
        )
        for n in (64, 65, 66)
    },
    126: (_eps_mu, "mu_q and mu_theta as eqs. (124), (125) state them"),
    144: (_score_mu, "mu_q and mu_theta as eqs. (142), (143) state them"),
    131: (
        {"score": -(S.x_t - sp.sqrt(ab) * _mean) / (ab * _var + 1 - ab)},
        "grad log p(x_t) on the derivation's family, x_0 ~ N(mean, var)",
    ),
}
_i, _t = sp.Symbol("i", real=True), sp.Symbol("t", real=True)
_alpha = sp.IndexedBase("alpha")


def _gaussian_pdf(x, mean, var):
    return sp.exp(-((x - mean) ** 2) / (2 * var)) / sp.sqrt(2 * sp.pi * var)


def _gaussian_kl(kl):
    """KL(N(m1, v1) || N(m2, v2)) in closed form (the paper's eq. (86), one coordinate)."""
    (_, m1, v1), (_, m2, v2) = (n.args for n in kl.args)
    return (sp.log(v2 / v1) - 1 + v1 / v2 + (m2 - m1) ** 2 / v2) / 2


# the models some sections' derivations state: guidance's generic p(x_t), p(y | x_t) = p_y(x_t)
# and constant p(y), so that p(x_t | y) = p(x_t) p_y(x_t) / p(y) (Bayes)
_p, _p_y, _y = sp.Function("p"), sp.Function("p_y"), sp.Symbol("y", real=True)
_q, _N = sp.Function("q"), reader.Normal
_evidence = sp.Symbol("p(y)", positive=True)
# the forward process's densities as the paper states them: eqs. (31), (70), (84)
_FORWARD = {
    _q(S.x_t, reader.given(S.x_prev)): _N(S.x_t, sp.sqrt(a) * S.x_prev, 1 - a),
    _q(S.x_t, reader.given(S.x_prev, S.x_0)): _N(S.x_t, sp.sqrt(a) * S.x_prev, 1 - a),
    _q(S.x_prev, reader.given(S.x_0)): _N(S.x_prev, sp.sqrt(abp) * S.x_0, 1 - abp),
    _q(S.x_t, reader.given(S.x_0)): _N(S.x_t, sp.sqrt(ab) * S.x_0, 1 - ab),
    _q(S.x_prev, reader.given(S.x_t, S.x_0)): _N(
        S.x_prev,
        (sp.sqrt(a) * (1 - abp) * S.x_t + sp.sqrt(abp) * (1 - a) * S.x_0) / (1 - ab),
        S.var_q,
    ),
}
MODELS = {
    "guidance": {
        _p(S.x_t, reader.given(_y)): _p(S.x_t) * _p_y(S.x_t) / _evidence,
        _p(_y, reader.given(S.x_t)): _p_y(S.x_t),
        _p(_y): _evidence,
        S.score: sp.Derivative(sp.log(_p(S.x_t)), S.x_t),
    },
    # the forward process's densities as the paper states them: eqs. (31), (70), (84)
    "vdm": _FORWARD,
    "interpretations": _FORWARD,  # the same forward process (erratum statements)
}


@dataclass(frozen=True)
class Match:
    number: int
    printed_match: bool | None
    reason: str  # why None, what differs when False, how it matched when True
    derivation: str | None = None  # dotted path of the derivation compared with


def derivation_lines(number: int) -> list[tuple[str, object, object]]:
    """(derivation path, Derivation, Step) for every step numbered `number`."""
    out = []
    for impl in registry.index()[number].implementations["derivations"]:
        module, name = impl.path.rsplit(".", 1)
        derivation = _build(module, name)
        for step in getattr(derivation, "steps", ()):
            if step.eq == number:
                out.append((impl.path, derivation, step))
    return out


_BUILT: dict = {}


def _build(module: str, name: str):
    if (module, name) not in _BUILT:
        _BUILT[module, name] = getattr(importlib.import_module(module), name)()
    return _BUILT[module, name]


# The background sections' derivations work on the linear-Gaussian latent model
# z ~ N(0, 1), x | z ~ N(w z + b, var_x), q_phi(z | x) = N(mean_q, var_q); the paper's x is
# the data point x_0. Each density is exp(log-density), so logs of products split.
def _lognormal(x, mean, var):
    return -((x - mean) ** 2) / (2 * var) - sp.log(2 * sp.pi * var) / 2


_x, _g = sp.Symbol("x", real=True), reader.given
_post_var = S.var_x / (S.var_x + S.w**2)  # p(z | x)
_post_mean = S.w * (S.x_0 - S.b) / (S.var_x + S.w**2)
_LATENT = {
    _p(_x, S.z): sp.exp(_lognormal(S.x_0, S.w * S.z + S.b, S.var_x) + _lognormal(S.z, 0, 1)),
    _p(S.z): sp.exp(_lognormal(S.z, 0, 1)),
    _p(_x): sp.exp(_lognormal(S.x_0, S.b, S.var_x + S.w**2)),
    _p(S.z, _g(_x)): sp.exp(_lognormal(S.z, _post_mean, _post_var)),
    sp.Function("p_theta")(_x, _g(S.z)): sp.exp(_lognormal(S.x_0, S.w * S.z + S.b, S.var_x)),
    sp.Function("q_phi")(S.z, _g(_x)): sp.exp(_lognormal(S.z, S.mean_q, S.var_q)),
    sp.Function("mu_phi")(_x): S.mean_q,  # eq. (20): q_phi(z|x) = N(z; mu_phi(x), sigma_phi^2(x))
    sp.Function("sigma_phi^2")(_x): S.var_q,
}
FAMILIES = {"elbo": _LATENT, "vae": _LATENT}
_Q = sp.Function("q_phi")(S.z, _g(_x))


def _expect_gaussian(body, family):
    """E over z ~ q_phi(z | x) = N(mean_q, var_q) of a polynomial in z, by its moments."""
    xi = sp.Dummy("xi")
    inner = sp.expand_log(body.xreplace(family), force=True)
    try:
        poly = sp.Poly(sp.expand(inner.subs(S.z, S.mean_q + sp.sqrt(S.var_q) * xi)), xi)
    except sp.PolynomialError:  # E of a density ratio (eq. (7)): the integral against q
        return _integrate_over_z(body.xreplace(family) * family[_Q], S.z)
    moment = {k: 0 if k % 2 else sp.factorial2(k - 1) for k in range(poly.degree() + 1)}
    return sum(c * moment[k] for (k,), c in poly.terms())


def _integrate_over_z(body, z):
    """The paper's integral over all z of (factor free of z) * exp(quadratic in z)."""
    const, dependent = body.as_independent(z, as_Add=False)
    exponent = sp.expand(sp.expand_log(sp.log(dependent), force=True))
    try:
        a2, a1, a0 = sp.Poly(exponent, z).all_coeffs()
    except (sp.PolynomialError, ValueError):  # not a Gaussian in z
        return sp.Integral(body, z)
    return const * sp.sqrt(sp.pi / -a2) * sp.exp(a1**2 / (-4 * a2) + a0)


def _in_family(expr, module: str):
    """The paper's densities as the family's; logs split; KL(q_phi || p) = E_q[log q / p];
    E under q_phi by moments."""
    family = FAMILIES.get(module)
    if family is None or not isinstance(expr, sp.Expr):
        return expr
    kl_from_q = lambda e: e.func == reader.KL and e.args[0] == _Q  # noqa: E731
    expr = expr.replace(kl_from_q, lambda e: reader.E(sp.log(_Q / e.args[1]), _Q))
    under_q = lambda e: e.func == reader.E and e.args[1:] == (_Q,)  # noqa: E731
    expr = expr.replace(under_q, lambda e: _expect_gaussian(e.args[0], family))
    expr = expr.xreplace(family)
    expr = expr.replace(sp.Integral, lambda body, var: _integrate_over_z(body, var[0]))
    return sp.expand_log(expr, force=True)


def _closed(expr, module: str = "", aliases: dict | None = None):
    """Both sides in the same terms: named quantities, Gaussians and KLs in closed form."""
    expr = sp.sympify(expr)
    aliases = {**ALIASES, **(aliases or {})}
    expr = expr.xreplace({s: aliases[s.name] for s in expr.free_symbols if s.name in aliases})
    expr = expr.xreplace(MODELS.get(module, {}))
    expr = _in_family(expr, module)
    expr = expr.replace(lambda e: e.func == reader.KL and _all_normal(e.args), _gaussian_kl)
    expr = expr.replace(reader.Normal, _gaussian_pdf)
    expr = expr.xreplace({reader.Sigma_q: S.var_q, sp.Product(_alpha[_i], (_i, 1, _t)): ab})
    if module in FAMILIES:  # there var_q is the encoder's variance, not sigma_q^2(t)
        return expr
    return expr.xreplace(CLOSED_FORMS).xreplace(SCHEDULE)


def _all_normal(args) -> bool:
    return len(args) == 2 and all(getattr(e, "func", None) == reader.Normal for e in args)


def _same_names(expr, like):
    """Symbols and undefined functions of `expr` replaced by those of `like` with the same
    name (a derivation may declare assumptions, e.g. guidance's positive p(x_t))."""
    by_name = {s.name: s for s in like.free_symbols if isinstance(s, sp.Symbol)}
    expr = expr.xreplace(
        {s: by_name[s.name] for s in expr.free_symbols if by_name.get(s.name, s) != s}
    )
    funcs = {f.func.__name__: f.func for f in like.atoms(AppliedUndef)}
    renamed = {
        f: funcs[f.func.__name__](*f.args)
        for f in expr.atoms(AppliedUndef)
        if funcs.get(f.func.__name__, f.func) != f.func
    }
    return expr.xreplace(renamed) if renamed else expr


def _point(symbols, rng):
    point = {}
    for s in symbols:
        if s.is_positive:
            point[s] = sp.Rational(rng.randint(5, 95), 100)  # schedule values lie in (0, 1)
        else:
            point[s] = sp.Rational(rng.randint(-200, 200), 100)
    return point


UNPROVED = "not proved"
# The schedule's symbols, each in (0, 1) by definition.
UNIT_SYMBOLS = (S.alpha_t, S.alpha_bar_t, S.alpha_bar_prev, S.alpha_prev)
UNIT_CHANGE = "alpha = 1 / (1 + u), u > 0, for each alpha in (0, 1)"


def _in_unit_variables(diff):
    """simplify(diff) after alpha = 1 / (1 + u) for each schedule symbol in it (u > 0), or diff
    itself when it has none. Then 1 - alpha = u / (1 + u) is visibly positive, so expand_log
    splits the log of a product of densities soundly (never `force`): what SymPy cannot do
    while it only knows alpha > 0."""
    unit = {s: 1 / (1 + sp.Dummy(f"u_{s.name}", positive=True)) for s in UNIT_SYMBOLS}
    unit = {s: u for s, u in unit.items() if s in diff.free_symbols}
    if not unit:
        return diff
    return sp.simplify(sp.expand(sp.expand_log(diff.xreplace(unit))))


def equal(u, v, seed: int = 0, points: int = 4) -> tuple[bool | None, str]:
    """(True, how) if u == v, (False, where) if not, (None, why) if this cannot tell."""
    u, v = sp.sympify(u), sp.sympify(v)
    if not (isinstance(u, sp.Expr) and isinstance(v, sp.Expr)):
        return None, f"not two expressions ({type(u).__name__}, {type(v).__name__})"
    diff = u - v
    if diff == 0:
        return True, "identical"
    if diff.atoms(AppliedUndef) or diff.has(sp.Derivative, sp.Integral):
        done = sp.expand(diff.doit(integrals=False, sums=False, products=False))
        if done != 0 and sp.count_ops(done) < 200:
            done = sp.simplify(done)
        if done == 0:
            return True, "the difference (derivatives done) simplifies to 0"
        return None, "structured, and the difference does not reduce to 0"
    if diff.has(sp.Product, sp.Sum):  # over t = 1..T with T symbolic: no point to evaluate at
        return None, "a product or sum over a symbolic range (the derivation fixes T)"
    rng = random.Random(seed)
    symbols = sorted(diff.free_symbols, key=str)
    for _ in range(points):
        point = _point(symbols, rng)
        try:
            value = complex(sp.N(diff.subs(point), 30))
        except TypeError:
            return None, "cannot be evaluated at a point"
        if abs(value) > 1e-12:
            shown = ", ".join(f"{k}={v}" for k, v in point.items())
            return False, f"differ by {value.real:.4g} at {shown}"
    if sp.simplify(diff) == 0:
        return True, "simplify(difference) == 0"
    if _in_unit_variables(diff) == 0:
        return True, f"0 after {UNIT_CHANGE}, expand_log and simplify"
    # a probe may refute, never accept: equal at a few points is not a proof
    return None, f"equal at {points} random points, but simplify did not reach 0 ({UNPROVED})"


def _integrands(expr):
    """E_q[f] + E_q[g] -> f + g when every term is an expectation under one q (else None).

    The derivations state such lines by their integrand, until a step takes the expectation.
    """
    terms = sp.Add.make_args(expr)
    # a sum of expectations (eq. (43)) is the expectation of the sum
    inside = [t.function if isinstance(t, sp.Sum) else t for t in terms]
    if any(getattr(t, "func", None) != reader.E for t in inside):
        return None
    if len({t.args[1:] for t in inside}) != 1:
        return None
    return sp.Add(
        *(
            t.func(u.args[0], *t.limits) if isinstance(t, sp.Sum) else t.args[0]
            for t, u in zip(terms, inside, strict=True)
        )
    )


def _names(expr) -> set[str]:
    """Names of the undefined functions in expr (densities, E, KL, argmin, ...)."""
    expr = sp.sympify(expr)
    return {f.func.__name__ for f in expr.atoms(AppliedUndef)} | (
        {"an integral"} if expr.has(sp.Integral) else set()
    )


def _unspecified(expr) -> bool:
    return any(f.func.__name__ == "C" for f in expr.atoms(AppliedUndef))


def _equal_up_to_unspecified(mine, theirs) -> tuple[bool | None, str]:
    """Eq. (75): exp{-1/2 [... + C(x_t, x_0)]}, C collecting the terms free of x_{t-1}."""
    ratio = sp.expand_log(sp.log(theirs) - sp.log(mine.replace(sp.Function("C"), lambda *a: 0)))
    if sp.simplify(sp.diff(ratio, S.x_prev)) == 0:
        return True, "equal up to the paper's C(x_t, x_0), a term free of x_{t-1}"
    return False, "differ by more than a term free of x_{t-1}"


def match(number: int, parsed: reader.ParsedLine | None = None) -> Match:
    """Compare the paper's line `number` with the derivation lines numbered `number`.

    When the printed line does not match and the catalog records an erratum for it, the
    erratum's statement is compared too: if the derivation proves the erratum, the verdict
    is False (the paper's line is not what is proved) with the erratum as the explanation.
    """
    parsed = parsed or reader.parse_equation(number)
    if parsed.kind == "reason":
        return Match(number, None, f"the paper's line is not read: {parsed.reason}")
    lines = derivation_lines(number)
    if not lines:
        return _by_closed_form(number, parsed)
    result = _compare(number, parsed, lines)
    erratum = getattr(catalog.get(number), "erratum", None)
    if result.printed_match is True or not erratum:
        return result
    fixed = reader.parse_latex(erratum["statement"], parsed.lhs, parsed.lhs_from, number)
    if fixed.kind == "reason" or _compare(number, fixed, lines).printed_match is not True:
        return result
    return Match(
        number,
        False,
        f"the derivation proves the catalog's erratum {erratum['statement']} "
        f"({erratum['reason']}), not the printed line ({result.reason})",
        result.derivation,
    )


NO_STEP = "no derivation step is numbered with this equation"


def _by_closed_form(number: int, parsed: reader.ParsedLine) -> Match:
    """With no step numbered N: a closed form that cites N (and that `udm verify` proves equal
    to a line of its derivation) compared with the paper's right side. Only a proved equality
    counts: a closed form may compute another quantity of the same equation (eq. (21)'s KL
    for its prior), so a difference is no finding and the verdict stays None."""
    for impl in registry.index()[number].implementations["derivations"]:
        derivation = _build(*impl.path.rsplit(".", 1))
        for cf in derivation.results:
            if number not in cf.equations:
                continue
            line = [(impl.path, derivation, Step(elementary(cf.expr), "algebra", eq=number))]
            result = _compare(number, parsed, line)
            if result.printed_match is True:
                how = f"closed form {cf.name}, proved equal to line {cf.line!r} of its derivation"
                return Match(number, True, f"{result.reason} ({how}; {NO_STEP})", impl.path)
    return Match(number, None, f"{NO_STEP}, and no closed form citing it states the printed line")


def _compare(number: int, parsed: reader.ParsedLine, lines) -> Match:
    result = _compare_as_printed(number, parsed, lines)
    if result.printed_match is True or number not in RENAMED:
        return result
    names, why = RENAMED[number]
    renamed = _compare_as_printed(number, parsed, lines, names)
    if renamed.printed_match is True:
        return Match(number, True, f"{renamed.reason}; {why}", renamed.derivation)
    return result


def _as_law(printed, like):
    """A printed sample sqrt(c) x + sqrt(v) eps, or N(x; m, v), as the derivation's
    (mean, variance) pair (eqs. (59), (60), (70))."""
    if getattr(printed, "func", None) == reader.Normal:
        return sp.Tuple(printed.args[1], printed.args[2])
    noise = [e for e in printed.free_symbols if e.name == "eps"]
    if len(noise) != 1 or len(like) != 2:
        return None
    eps = noise[0]
    if sp.diff(printed, eps, 2) != 0:
        return None
    return sp.Tuple(printed.subs(eps, 0), sp.diff(printed, eps) ** 2)


def _equal_tuples(mine, theirs) -> tuple[bool | None, str]:
    verdicts = [equal(u, v) for u, v in zip(mine, theirs, strict=True)]
    if all(ok is True for ok, _ in verdicts):
        hows = dict.fromkeys(how for _, how in verdicts)  # once each, in order
        return True, "as a law (mean, variance): " + "; ".join(hows)
    if any(ok is False for ok, _ in verdicts):
        return False, "as a law (mean, variance): " + next(h for ok, h in verdicts if ok is False)
    return None, "as a law (mean, variance): cannot tell"


def _by_left_side(parsed, derivation, step, module) -> tuple[bool | None, str] | None:
    """The paper's equation L(X) = R with X, the derivation's first line (a symbol), replaced
    by its line N: eq. (112) prints SNR = exp(-omega), the derivation solves for alpha_bar_t."""
    first = derivation.steps[0].expr
    if len(parsed.chain) != 2 or parsed.relations != ("=",):
        return None
    if not isinstance(first, sp.Symbol):
        return _by_scaled_left_side(parsed, first, step, module)
    lhs = _same_names(parsed.chain[0], sp.Tuple(first))
    if first not in lhs.free_symbols or lhs == first:
        return None
    ok, how = equal(
        _closed(lhs.xreplace({first: step.expr}), module), _closed(parsed.chain[1], module)
    )
    if ok is not True:
        return None
    return True, f"the paper's equation with {first} as the derivation's line: {how}"


def _by_scaled_left_side(parsed, first, step, module):
    """The paper's left side is k X for a schedule factor k, X the derivation's first line:
    then L = R is k times the derivation's X = line N (eq. (150) is (151) times 1 - alpha_bar_t)."""
    if not isinstance(first, sp.Expr) or first.is_number:
        return None
    left = _closed(parsed.chain[0], module)
    x = _same_names(_closed(first, module), left).doit()
    left = left.doit()
    if x == 0 or left == x:
        return None
    k = sp.simplify(left / x)
    if k.free_symbols - {a, ab, abp} or k.has(AppliedUndef, sp.Derivative, sp.Subs):
        return None
    theirs = _same_names(_closed(k * step.expr, module), left)
    ok, how = equal(_same_names(_closed(parsed.chain[1], module), theirs), theirs)
    if ok is not True:
        return None
    return True, f"the paper's equation is {k} times the derivation's (left side {first}): {how}"


def _kl_integrand(printed, theirs, mine):
    """A printed KL(N(v; m1, s1) || N(v; m2, s2)) against a derivation line that states it
    by its integrand log q(x) - log p(x) at a point x (eq. (87)): that line's expectation
    over x ~ N(m1, s1), by moments; None when the line is not of that kind."""
    printed = reader.objective(printed)
    if getattr(printed, "func", None) != reader.KL or not _all_normal(printed.args):
        return None
    extra = {s for s in theirs.free_symbols - mine.free_symbols if isinstance(s, sp.Symbol)}
    if len(extra) != 1:
        return None
    (x,) = extra
    (_, m1, s1), _ = (n.args for n in printed.args)
    m1, s1 = (_same_names(_closed(e), theirs) for e in (m1, s1))
    xi = sp.Dummy("xi")
    try:
        poly = sp.Poly(sp.expand(theirs.subs(x, m1 + sp.sqrt(s1) * xi)), xi)
    except sp.PolynomialError:
        return None
    moment = {k: 0 if k % 2 else sp.factorial2(k - 1) for k in range(poly.degree() + 1)}
    return sum(c * moment[k] for (k,), c in poly.terms())


def _on_chain(printed, derivation, step, family) -> tuple[bool | None, str]:
    """The printed line evaluated on the derivation's chain (udm/chain_family.py), both
    sides under the derivation's facts (alpha_t = r_t^2, so square roots are plain)."""
    evaluate, on = family
    try:
        mine = evaluate(reader.objective(printed))
    except chain_family.NotOnTheChain as exc:
        return None, f"not evaluated on the chain: {exc}"
    facts = derivation.substitutions
    # a stable function (expm1mx, log_ratio, ...) is read as what it computes; its logs split
    # like the chain's (every variance there is positive)
    theirs = sp.expand_log(elementary(step.expr), force=True)
    ok, how = equal(sp.expand(mine.subs(facts)), sp.expand(theirs.subs(facts)))
    return ok, f"{how}, the printed densities and expectations {on}"


def _compare_as_printed(number: int, parsed, lines, renamed: dict | None = None) -> Match:
    module = catalog.get(number).module
    aliases = {**PAPER_ALIASES.get(number, {}), **(renamed or {})}
    # the printed members right of a relation (all of them for a chain a = b = c)
    members = parsed.chain[1:] if parsed.relations else parsed.chain
    sides = [("right side", members[-1])]
    sides += [(f"member {k + 2} of the chain", e) for k, e in enumerate(members[:-1])]
    if (integrand := _integrands(members[-1])) is not None:
        sides.append(("the integrand of the right side", integrand))
    if _names(members[-1]) - {"given"} and not members[-1].has(sp.log, reader.E, reader.KL):
        sides.append(("the log of the right side", sp.log(members[-1])))  # log-densities
    findings = []
    for path, derivation, step in lines:
        # a derivation's abstract densities, as its facts define them (vdm's q(a | b))
        densities = {
            k: v for k, v in derivation.substitutions.items() if isinstance(k, sp.Function)
        }
        for side, printed in sides:
            if (family := chain_family.evaluator(derivation.family)) is not None:
                ok, how = _on_chain(printed, derivation, step, family)
                if ok:
                    return Match(number, True, f"{side}: {how}", path)
                findings.append((ok, f"{side} vs {path}: {how}", path))
                continue
            theirs = _closed(sp.sympify(step.expr).xreplace(densities), module)
            mine = _closed(reader.objective(printed), module, aliases)
            mine = _same_names(mine, theirs)
            if isinstance(theirs, sp.Tuple):  # the derivation states a law: (mean, variance)
                law = _as_law(reader.objective(printed), theirs)
                if law is not None:
                    law = sp.Tuple(*(_same_names(_closed(c, module, aliases), theirs) for c in law))
                if law is None:
                    findings.append((None, f"{side}: {path} states a law (mean, variance)", path))
                    continue
                ok, how = _equal_tuples(law, theirs)
                if ok:
                    return Match(number, True, f"{side}: {how}", path)
                findings.append((ok, f"{side} vs {path}: {how}", path))
                continue
            if missing := _names(mine) - _names(theirs) - {"C"}:  # C: eq. (75), below
                what = ", ".join(sorted(missing))
                findings.append((None, f"{side} has {what}; {path}'s line does not", path))
                continue
            ok, how = equal(mine, theirs)
            if side.startswith(("the integrand", "the log")) and ok is False:
                ok = None  # the derivation's line may be the expectation instead
            if ok is not True and _unspecified(mine):
                ok, how = _equal_up_to_unspecified(mine, theirs)
            if ok is False and (mean := _kl_integrand(printed, theirs, mine)) is not None:
                ok2, how2 = equal(mine, mean)
                if ok2 is True:
                    ok, how = True, f"{how2}, the derivation's line being the KL's integrand"
            if ok:
                return Match(number, True, f"{side}: {how}", path)
            findings.append((ok, f"{side} vs {path}: {how}", path))
    for path, derivation, step in lines:
        if (verdict := _by_left_side(parsed, derivation, step, module)) is not None:
            return Match(number, True, verdict[1], path)
    consistent = [f for f in findings if f[0] is None and UNPROVED in f[1]]
    if consistent:  # one reading agrees at every probe: a refuted other reading is no finding
        return Match(number, None, consistent[0][1], consistent[0][2])
    refuted = [f for f in findings if f[0] is False]
    if refuted:
        return Match(number, False, refuted[0][1], refuted[0][2])
    family = next((d.family for _, d, _ in lines if d.family), None)
    on = f"; the derivation works on {family}" if family else ""
    return Match(number, None, findings[0][1] + on, findings[0][2])


def match_all(numbers=None, built: dict | None = None) -> dict[int, Match]:
    """match(n) for every equation; `built` ({path: (derivation, checks)}, as `udm verify`
    collects it) saves building each derivation again."""
    for path, (derivation, _) in (built or {}).items():
        _BUILT.setdefault(tuple(path.rsplit(".", 1)), derivation)
    numbers = sorted(catalog.load()) if numbers is None else numbers
    return {n: match(n) for n in numbers}


def records(matches: dict[int, Match]) -> dict[int, dict]:
    """What udm/printed_match.json stores (and `udm eq` / `udm coverage` show)."""
    return {
        n: {"printed_match": m.printed_match, "reason": m.reason, "derivation": m.derivation}
        for n, m in sorted(matches.items())
    }


def store(matches: dict[int, Match]) -> bool:
    """Write udm/printed_match.json when it differs; True if written."""
    from udm import status

    new = records(matches)
    if new == status.load_printed():
        return False
    status.write_printed(new)
    return True


def report(matches: dict[int, Match]) -> str:
    """Counts per section and kind, and one line per False."""
    eqs, parsed = catalog.load(), reader.parse_all()
    rows = []
    for module in catalog.SECTIONS:
        ns = [n for n in matches if eqs[n].module == module]
        verdicts = Counter(str(matches[n].printed_match) for n in ns)
        kinds = reader.counts({n: parsed[n] for n in ns})["all"]
        rows.append(
            f"{module:16s} {len(ns):3d} eqs | algebraic {kinds['algebraic']:3d} structured "
            f"{kinds['structured']:3d} reason {kinds['reason']:3d} (algebraic right side "
            f"{kinds['algebraic right side']:3d}) | match True {verdicts['True']:3d} "
            f"False {verdicts['False']:3d} None {verdicts['None']:3d}"
        )
    total = Counter(str(m.printed_match) for m in matches.values())
    rows.append(f"all: True {total['True']}, False {total['False']}, None {total['None']}")
    rows += [f"  ({n}) False: {m.reason}" for n, m in matches.items() if m.printed_match is False]
    return "\n".join(rows)


if __name__ == "__main__":
    import sys

    results = {}
    for n in sorted(catalog.load()):
        start = time.perf_counter()
        m = results[n] = match(n)
        print(f"({n}) {m.printed_match}: {m.reason} [{time.perf_counter() - start:.1f} s]")
    print(report(results))
    if "--write" in sys.argv[1:]:
        print(
            "wrote udm/printed_match.json"
            if store(results)
            else "udm/printed_match.json is current"
        )
