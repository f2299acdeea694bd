"""Does a derivation's line N say what the paper prints as eq. (N)?

For each equation, the paper's line is read by udm/latex_reader.py and compared with every
derivation step numbered N (`Step.eq == N`, found through the registry). The comparison
works on the right side of the paper's line (the derivations' steps are right sides; a
line `lhs = rhs` with its own left side is also tried on `lhs`), after two substitutions
that both sides share:

* the closed forms of the paper's named quantities (`CLOSED_FORMS`): sigma_q^2(t),
  SNR(t), SNR(t-1), the squared error, and alpha_bar_t = alpha_t alpha_bar_{t-1};
* `argmin_theta f` compares its objective f.

Verdicts: True (equal: numerically at random points of the symbols' domains, then
`simplify(difference) == 0`), False (unequal at some point: a finding), or None with a
reason (no derivation line, a structured line the check cannot evaluate, ...).

Run `python -m udm.printed_match` for the report.
"""

from __future__ import annotations

import importlib
import random
import time
from collections import Counter
from dataclasses import dataclass

import sympy as sp
from sympy.core.function import AppliedUndef

from derivations import symbols as S
from udm import catalog, registry
from udm import latex_reader as reader

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
_evidence = sp.Symbol("p(y)", positive=True)
MODELS = {
    "guidance": {
        _p(S.x_t, reader.given(_y)): _p(S.x_t) * _p_y(S.x_t) / _evidence,
        _p(_y, reader.given(S.x_t)): _p_y(S.x_t),
        _p(_y): _evidence,
        S.score: sp.Derivative(sp.log(_p(S.x_t)), S.x_t),
    }
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


def _closed(expr, module: str = ""):
    """Both sides in the same terms: named quantities, Gaussians and KLs in closed form."""
    expr = sp.sympify(expr)
    expr = expr.xreplace({s: ALIASES[s.name] for s in expr.free_symbols if s.name in ALIASES})
    expr = expr.xreplace(MODELS.get(module, {}))
    expr = expr.replace(lambda e: e.func == reader.KL and _all_normal(e.args), _gaussian_kl)
    expr = expr.replace(reader.Normal, _gaussian_pdf)
    expr = expr.xreplace({reader.Sigma_q: S.var_q, sp.Product(_alpha[_i], (_i, 1, _t)): ab})
    return expr.xreplace(CLOSED_FORMS).xreplace(SCHEDULE)


def _all_normal(args) -> bool:
    return len(args) == 2 and all(getattr(e, "func", None) == reader.Normal for e in args)


def _same_names(expr, like):
    """Symbols of `expr` replaced by the symbols of `like` that have the same name."""
    by_name = {s.name: s for s in like.free_symbols if isinstance(s, sp.Symbol)}
    return expr.xreplace(
        {s: by_name[s.name] for s in expr.free_symbols if by_name.get(s.name, s) != s}
    )


def _point(symbols, rng):
    point = {}
    for s in symbols:
        if s.is_positive:
            point[s] = sp.Rational(rng.randint(5, 95), 100)  # schedule values lie in (0, 1)
        else:
            point[s] = sp.Rational(rng.randint(-200, 200), 100)
    return point


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
    return True, f"equal at {points} random points (simplify did not reach 0)"


def _objective(expr):
    """argmin_theta f -> f (the derivations state the objective)."""
    if isinstance(expr, AppliedUndef) and expr.func.__name__ in ("argmin", "argmax"):
        return expr.args[0]
    return expr


def match(number: int, parsed: reader.ParsedLine | None = None) -> Match:
    """Compare the paper's line `number` with the derivation lines numbered `number`."""
    parsed = parsed or reader.parse_equation(number)
    if parsed.kind == "reason":
        return Match(number, None, f"the paper's line is not read: {parsed.reason}")
    lines = derivation_lines(number)
    if not lines:
        return Match(number, None, "no derivation step is numbered with this equation")
    sides = [("right side", parsed.rhs)]
    if parsed.lhs is not None and parsed.lhs_from is None:
        sides.append(("left side", parsed.lhs))
    module = catalog.get(number).module
    findings = []
    for path, _derivation, step in lines:
        for side, printed in sides:
            theirs = _closed(step.expr, module)
            mine = _same_names(_closed(_objective(printed), module), theirs)
            ok, how = equal(mine, theirs)
            if ok:
                return Match(number, True, f"{side}: {how}", path)
            findings.append((ok, f"{side} vs {path}: {how}", path))
    refuted = [f for f in findings if f[0] is False]
    if refuted:
        return Match(number, False, refuted[0][1], refuted[0][2])
    return Match(number, None, findings[0][1], findings[0][2])


def match_all(numbers=None) -> dict[int, Match]:
    numbers = sorted(catalog.load()) if numbers is None else numbers
    return {n: match(n) for n in numbers}


def report(matches: dict[int, Match]) -> str:
    """Counts per section and kind, and one line per False."""
    eqs, parsed = catalog.load(), reader.parse_all()
    rows = []
    for module in catalog.SECTIONS:
        ns = [n for n in matches if eqs[n].module == module]
        verdicts = Counter(str(matches[n].printed_match) for n in ns)
        kinds = Counter(parsed[n].kind for n in ns)
        rows.append(
            f"{module:16s} {len(ns):3d} eqs | algebraic {kinds['algebraic']:3d} structured "
            f"{kinds['structured']:3d} reason {kinds['reason']:3d} | match True "
            f"{verdicts['True']:3d} False {verdicts['False']:3d} None {verdicts['None']:3d}"
        )
    total = Counter(str(m.printed_match) for m in matches.values())
    rows.append(f"all: True {total['True']}, False {total['False']}, None {total['None']}")
    rows += [f"  ({n}) False: {m.reason}" for n, m in matches.items() if m.printed_match is False]
    return "\n".join(rows)


if __name__ == "__main__":
    results = {}
    for n in sorted(catalog.load()):
        start = time.perf_counter()
        m = results[n] = match(n)
        print(f"({n}) {m.printed_match}: {m.reason} [{time.perf_counter() - start:.1f} s]")
    print(report(results))
