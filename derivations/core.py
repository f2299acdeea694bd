"""The derivation engine: a derivation is a list of steps, each licensed by a named rule.

Every step's expression is checked against the previous one by the machine:

* equality rules (`algebra`, `bayes`, `complete_square`, ...): `prev == next` after the
  derivation's `facts` (substitutions such as alpha_bar_t = alpha_t * alpha_bar_prev) are
  applied. First a numeric probe at random points of the symbols' domains (fast, catches
  most wrong steps and reports where), then a symbolic proof (`expand`, `cancel`, then
  `simplify`). A step is accepted only when the symbolic proof succeeds.
* `proportional` (the paper's "propto"): prev / next does not depend on `wrt`.
* `jensen` (the paper's ">="): prev - next equals the given `gap`, and the gap is a KL
  divergence in closed form, hence >= 0 (Gibbs); the gap is also probed numerically.

Expectations are never integrated: on linear-Gaussian families every log-density is a
quadratic, so `expect_normal` takes expectations of polynomials by their moments.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import sympy as sp

from derivations.symbols import tex

# rule -> what licenses the step (shown by `udm eq`, checked as described above)
RULES = {
    "definition": "introduces the expression; nothing to check",
    "algebra": "algebraic rearrangement (expand, collect, cancel)",
    "substitute": "substitute an equal expression (a definition or an earlier result)",
    "bayes": "Bayes' rule, with the family's closed-form densities",
    "markov": "the Markov property of the chain",
    "chain_rule": "chain rule of probability p(x, z) = p(z | x) p(x)",
    "log_rules": "log of a product/quotient is a sum/difference of logs",
    "linearity": "linearity of expectation",
    "expectation": "expectation of a polynomial under a Gaussian, by its moments",
    "marginalize": "variables absent from the integrand integrate out",
    "telescope": "a telescoping product/sum cancels",
    "reparameterize": "reparameterization x = mean + std * eps",
    "sum_gaussians": "a sum of independent Gaussians is Gaussian; means and variances add",
    "complete_square": "complete the square in the exponent",
    "gaussian_kl": "closed-form KL divergence between Gaussians",
    "proportional": "equal up to a factor that does not depend on the variable",
    "jensen": "Jensen's inequality: the gap is a KL divergence, hence >= 0",
    "differentiate": "differentiate (the gradient of a constant vanishes)",
    "evaluate": "evaluate a finite sum or integral in closed form (doit, or induction)",
    "limit": "the limit as wrt -> oo (SymPy's Gruntz algorithm)",
    "joint_expectation": (
        "expectation of a quadratic under a multivariate Gaussian x ~ N(mu, S): "
        "E[x^T A x + b^T x + c] = tr(A S) + mu^T A mu + b^T mu + c"
    ),
}
# Rules checked by a dedicated test instead of prev == next.
SPECIAL_RULES = {
    "definition",
    "proportional",
    "jensen",
    "sum_gaussians",
    "expectation",
    "evaluate",
    "limit",
    "joint_expectation",
}
EQUALITY_RULES = set(RULES) - SPECIAL_RULES


class DerivationError(AssertionError):
    """A step does not follow from the previous one by its rule."""


@dataclass(frozen=True)
class Step:
    """One line of a derivation: `relation expr`, licensed by `rule`."""

    expr: sp.Basic
    rule: str
    why: str = ""
    eq: int | None = None  # the paper's number of this line, if it has one
    gap: sp.Expr | None = None  # jensen: prev - expr, a KL in closed form
    wrt: sp.Symbol | None = None  # proportional: the variable of the density
    noise: tuple = ()  # sum_gaussians: independent standard normal symbols
    over: tuple | None = None  # expectation: (x, mean, var), x ~ N(mean, var)

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}; known: {', '.join(sorted(RULES))}")
        if self.rule == "jensen" and self.gap is None:
            raise ValueError("a jensen step needs gap= (the KL that prev - next equals)")
        if self.rule == "proportional" and self.wrt is None:
            raise ValueError("a proportional step needs wrt= (the density's variable)")
        if self.rule == "expectation" and (self.over is None or len(self.over) != 3):
            raise ValueError("an expectation step needs over=(x, mean, var)")
        if self.rule == "sum_gaussians" and not self.noise:
            raise ValueError("a sum_gaussians step needs noise= (the standard normal symbols)")

    @property
    def relation(self) -> str:
        return {"jensen": r"\geq", "proportional": r"\propto"}.get(self.rule, "=")

    def latex_relation(self) -> str:
        if self.rule == "expectation":
            x, m, v = self.over
            return rf"\mathbb{{E}}_{{{tex(x)} \sim \mathcal{{N}}({tex(m)}, {tex(v)})}}[\cdot] ="
        return self.relation


@dataclass(frozen=True)
class ClosedForm:
    """A result of a derivation that the reference layer is generated from.

    `args` are the NOTATION names of the function's keyword arguments, in order; `domains`
    maps each to 'real', 'positive', 'unit' (0 < v <= 1) or 'open_unit' (0 < v < 1).
    """

    name: str
    equations: tuple[int, ...]
    expr: sp.Expr
    args: tuple[str, ...]
    domains: dict[str, str]
    summary: str
    lhs: str = ""  # LaTeX of the left-hand side, for the docstring


@dataclass
class StepCheck:
    index: int
    eq: int | None
    rule: str
    ok: bool
    detail: str
    seconds: float


@dataclass
class Derivation:
    """A chain of steps proving `equations`, optionally on a concrete `family`."""

    title: str
    equations: tuple[int, ...]
    steps: list[Step]
    facts: dict = field(default_factory=dict)
    family: str | None = None
    results: tuple[ClosedForm, ...] = ()
    seed: int = 0

    def check(self) -> list[StepCheck]:
        """Check every step against its predecessor; never raises."""
        out = []
        rng = random.Random(self.seed)
        for i, step in enumerate(self.steps):
            start = time.perf_counter()
            if i == 0 or step.rule == "definition":
                ok, detail = True, "definition"
            else:
                ok, detail = _check_step(self.steps[i - 1].expr, step, self.facts, rng)
            out.append(StepCheck(i, step.eq, step.rule, ok, detail, time.perf_counter() - start))
        return out

    def verify(self) -> list[StepCheck]:
        """Check every step; raise DerivationError naming the first failing step and rule."""
        checks = self.check()
        for c in checks:
            if not c.ok:
                where = f"eq. ({c.eq})" if c.eq else f"step {c.index}"
                raise DerivationError(f"{self.title}: {where} [{c.rule}] {c.detail}")
        return checks


# --- checking ----------------------------------------------------------------------------


def _probe_value(sym: sp.Symbol, rng: random.Random) -> sp.Rational:
    if sym.is_integer:
        return sp.Integer(rng.randint(1, 4))
    if sym.is_positive or sym.is_nonnegative:
        # inside (0, 1): valid for probabilities (alpha's) and for any positive quantity
        return sp.Rational(rng.randint(5, 95), 100)
    return sp.Rational(rng.randint(-200, 200), 100)


def _components(expr) -> list:
    if isinstance(expr, (sp.MatrixBase, sp.Tuple, tuple, list)):
        return list(sp.Matrix(expr)) if isinstance(expr, sp.MatrixBase) else list(expr)
    return [expr]


def probe(expr: sp.Expr, rng: random.Random, n: int = 3) -> list[tuple[dict, complex]]:
    """Evaluate `expr` at n random points of its symbols' domains."""
    syms = sorted(expr.free_symbols, key=str)
    out = []
    for _ in range(n):
        point = {s: _probe_value(s, rng) for s in syms}
        out.append((point, complex(sp.N(expr.subs(point), 30))))
    return out


def is_zero(expr: sp.Expr, rng: random.Random | None = None) -> tuple[bool, str]:
    """Prove expr == 0: numeric probe first (fast refutation), then symbolic."""
    rng = rng or random.Random(0)
    if expr.free_symbols:
        for point, value in probe(expr, rng):
            if abs(value) > 1e-20:
                shown = ", ".join(f"{k}={v}" for k, v in point.items())
                return False, f"differs by {value:.3g} at {shown}"
    for simplifier in (sp.expand, sp.cancel, sp.simplify):
        if simplifier(expr) == 0:
            return True, f"proved by {simplifier.__name__}"
    for simplifier in (sp.powsimp, sp.radsimp, sp.nsimplify):
        if sp.simplify(simplifier(expr)) == 0:
            return True, "proved by simplify"
    return False, "numerically zero at probes but not proved symbolically"


def equal(a, b, facts: dict | None = None, rng: random.Random | None = None) -> tuple[bool, str]:
    """Prove a == b (componentwise for tuples/matrices) after substituting `facts`."""
    facts = facts or {}
    lhs, rhs = _components(a), _components(b)
    if len(lhs) != len(rhs):
        return False, f"{len(lhs)} components vs {len(rhs)}"
    details = []
    for x, y in zip(lhs, rhs, strict=True):
        ok, detail = is_zero(sp.sympify(x - y).subs(facts), rng)
        if not ok:
            return False, detail
        details.append(detail)
    return True, details[-1] if len(details) == 1 else "; ".join(sorted(set(details)))


def _check_step(prev, step: Step, facts: dict, rng: random.Random) -> tuple[bool, str]:
    """Dispatch on the step's rule; equality rules on generic functions use jet symbols."""
    if step.rule in EQUALITY_RULES:
        if _has_generic_function(prev) or _has_generic_function(step.expr):
            return _check_generic_equality(prev, step, facts, rng)
        return equal(prev, step.expr, facts, rng)
    return _SPECIAL_CHECKS[step.rule](prev, step, facts, rng)


def _check_expectation(prev, step: Step, facts: dict, rng) -> tuple[bool, str]:
    x, m, v = step.over
    ok, detail = equal(expect_normal(prev, x, m, v), step.expr, facts, rng)
    return ok, f"E over {x} ~ N({m}, {v}): {detail}" if ok else detail


def _check_sum_gaussians(prev, step: Step, facts: dict, rng) -> tuple[bool, str]:
    return _same_law(prev, step.expr, step.noise, facts, rng)


def _check_proportional(prev, step: Step, facts: dict, rng) -> tuple[bool, str]:
    log_ratio = sp.expand_log(sp.log(prev / step.expr), force=True)
    ok, detail = is_zero(sp.diff(log_ratio, step.wrt).subs(facts), rng)
    return ok, f"ratio free of {step.wrt}: {detail}" if ok else detail


def _check_jensen(prev, step: Step, facts: dict, rng) -> tuple[bool, str]:
    ok, detail = equal(prev - step.expr, step.gap, facts, rng)
    if not ok:
        return False, f"prev - next is not the stated gap: {detail}"
    gap = sp.sympify(step.gap).subs(facts)
    if gap.free_symbols:
        for point, value in probe(gap, rng, n=5):
            if value.real < -1e-20:
                return False, f"gap is negative ({value.real:.3g}) at {point}"
    return True, f"gap is a KL >= 0; {detail}"


def gaussian_law(expr, noise) -> tuple[sp.Expr, sp.Expr]:
    """(mean, variance) of an expression linear in independent N(0, 1) symbols `noise`."""
    expr = sp.expand(expr)
    for e in noise:
        if sp.diff(expr, e, 2) != 0 or any(sp.diff(expr, e, f) != 0 for f in noise if f != e):
            raise DerivationError(f"{expr} is not linear in the noise {e}")
    mean = expr.subs({e: 0 for e in noise})
    var = sp.Add(*[sp.diff(expr, e) ** 2 for e in noise])
    return mean, var


def _same_law(prev, expr, noise, facts, rng) -> tuple[bool, str]:
    """Two linear-Gaussian expressions have the same distribution: equal mean and variance."""
    (m1, v1), (m2, v2) = gaussian_law(prev, noise), gaussian_law(expr, noise)
    ok, detail = equal(sp.Tuple(m1, v1), sp.Tuple(m2, v2), facts, rng)
    return ok, f"same mean and variance: {detail}" if ok else f"laws differ: {detail}"


# --- closed forms used by derivations on Gaussian families --------------------------------


def normal_moment(k: int, mean, var):
    """E[x^k] for x ~ N(mean, var), by m_k = mean m_{k-1} + (k - 1) var m_{k-2}."""
    m = [sp.Integer(1), mean]
    for j in range(2, k + 1):
        m.append(sp.expand(mean * m[j - 1] + (j - 1) * var * m[j - 2]))
    return m[k]


def expect_normal(expr, x: sp.Symbol, mean, var):
    """E[expr] for x ~ N(mean, var), expr a polynomial in x (coefficients free of x)."""
    poly = sp.Poly(sp.expand(expr), x)
    return sp.Add(*[c * normal_moment(k, mean, var) for (k,), c in poly.terms()])


def log_normal_pdf(x, mean, var):
    """log N(x; mean, var) in one dimension."""
    return -sp.log(2 * sp.pi * var) / 2 - (x - mean) ** 2 / (2 * var)


def normal_pdf(x, mean, var):
    """N(x; mean, var) in one dimension."""
    return sp.exp(-((x - mean) ** 2) / (2 * var)) / sp.sqrt(2 * sp.pi * var)


def complete_square(expr, x: sp.Symbol):
    """Write a quadratic `expr` in x as -(x - mean)^2 / (2 var) + rest; return (mean, var, rest)."""
    poly = sp.Poly(sp.expand(expr), x)
    if poly.degree() != 2:
        raise ValueError(f"expected a quadratic in {x}, got degree {poly.degree()}")
    a, b, c = (poly.coeff_monomial(x**k) for k in (2, 1, 0))
    var = sp.simplify(-1 / (2 * a))
    mean = sp.simplify(b * var)
    rest = sp.simplify(c - a * mean**2)
    return mean, var, rest


# --- finite sums in closed form and limits (noise_params, eq. (110)) ---------------------------
# Two rules for the continuous-time limit of the discrete diffusion loss (eq. (110)):
# 'evaluate' (prev.doit() == next.doit(); a Sum(f, (k, 1, n)) that SymPy cannot evaluate is
# proved by induction on n: next(0) == 0 and next(n) - next(n - 1) == f(n)), and 'limit'
# (Step(..., wrt=T): lim_{T -> oo} prev == next, after the facts are substituted).


def _induction(total: sp.Sum, closed) -> tuple[bool, str]:
    (k, lo, n), summand = total.limits[0], total.function
    if len(total.limits) != 1 or lo != 1 or not isinstance(n, sp.Symbol):
        return False, "induction needs Sum(f, (k, 1, n)) with a symbolic upper limit n"
    if summand.has(n):
        return False, f"induction needs a summand free of the upper limit {n}"
    base = sp.simplify(closed.subs(n, 0))
    if base != 0:
        return False, f"closed form at {n} = 0 is {base}, not 0"
    step = closed - closed.subs(n, n - 1) - summand.subs(k, n)
    # q**(n - 1), q**(n + 1) -> q**n / q, q**n q: a rational function in q and q**n
    if sp.cancel(sp.expand(step, power_exp=True)) == 0:
        return True, f"induction on {n}: proved by cancel"
    ok, detail = is_zero(step)
    return ok, f"induction on {n}: {detail}" if ok else f"induction step fails: {detail}"


def _check_evaluate(prev, step: Step, facts: dict, rng: random.Random) -> tuple[bool, str]:
    prev, nxt = sp.sympify(prev), sp.sympify(step.expr)
    if isinstance(prev, sp.Sum) and prev.limits[0][2].free_symbols:
        ok, detail = _induction(prev, nxt)
        if ok:
            return ok, detail
    done = prev.doit()
    if done.atoms(sp.core.function.AppliedUndef):  # undefined functions: no numeric probe
        ok = sp.simplify(done - nxt.doit()) == 0
        return ok, "evaluated by doit" if ok else f"doit gives {done}"
    ok, detail = equal(done, nxt.doit(), facts, rng)
    return ok, f"evaluated by doit; {detail}" if ok else detail


def _check_limit(prev, step: Step, facts: dict, rng: random.Random) -> tuple[bool, str]:
    if step.wrt is None:
        return False, "a limit step needs wrt= (the variable that tends to oo)"
    x = sp.Dummy("x", positive=True)  # wrt = 1/x, x -> 0+: much faster in Gruntz here
    lim = sp.limit(sp.sympify(prev).subs(facts).subs(step.wrt, 1 / x), x, 0, "+")
    ok, detail = equal(lim, sp.sympify(step.expr).subs(facts), facts, rng)
    return ok, f"limit as {step.wrt} -> oo; {detail}" if ok else f"the limit is {lim}: {detail}"


# --- equality steps on generic functions (score, guidance) -------------------------------------
# The score of exp(-f(x)) / Z and Bayes' rule for scores hold for *every* differentiable f;
# SymPy states them with undefined functions (sp.Function("f")) and unevaluated Derivatives,
# which the numeric probe cannot evaluate. For such steps the derivatives are carried out
# (`doit`) and every application f(x), f'(x), f''(x), ... is replaced by its own fresh real
# symbol (the jet of f at x). An identity that holds with the jet values as independent
# symbols holds for every f; the check is then the usual probe + symbolic proof.


def _jet_symbols(*exprs):
    """Replace applied undefined functions and their derivatives by fresh real symbols."""
    from sympy.core.function import AppliedUndef

    exprs = [sp.sympify(e).doit() for e in exprs]
    atoms = set()
    for e in exprs:
        atoms |= {d for d in e.atoms(sp.Derivative) if d.expr.atoms(AppliedUndef)}
    # derivatives first (largest first), so f(x) inside Derivative(f(x), x) is not replaced early
    mapping = {}
    for i, d in enumerate(sorted(atoms, key=lambda d: -sp.count_ops(d))):
        mapping[d] = sp.Symbol(f"_jet_d{i}", real=True)
    exprs = [e.subs(mapping) for e in exprs]
    apps = set()
    for e in exprs:
        apps |= e.atoms(AppliedUndef)
    values = {
        a: sp.Symbol(f"_jet_f{i}", positive=True) for i, a in enumerate(sorted(apps, key=str))
    }
    return [e.subs(values) for e in exprs]


def _has_generic_function(expr) -> bool:
    from sympy.core.function import AppliedUndef

    return bool(sp.sympify(expr).atoms(AppliedUndef))


def _check_generic_equality(prev, step: Step, facts: dict, rng) -> tuple[bool, str]:
    a, b = _jet_symbols(sp.sympify(prev).subs(facts), sp.sympify(step.expr).subs(facts))
    ok, detail = equal(a, b, {}, rng)
    return ok, f"for every function (jet symbols): {detail}" if ok else detail


# --- expectations under a multivariate Gaussian (the VDM ELBO, eqs. (34)-(58)) ---------------
# The ELBO derivations of the VDM (eqs. (34)-(58)) take expectations over the whole forward
# chain q(x_{1:T} | x_0), a T-dimensional Gaussian: E[x^T A x + b^T x + c] =
# tr(A S) + mu^T A mu + b^T mu + c, i.e. E[x_i x_j] = S_ij + mu_i mu_j and E[x_i] = mu_i.


def expect_gaussian_vector(expr, xs, mean, cov):
    """E[expr] for the vector xs ~ N(mean, cov), expr a polynomial of degree <= 2 in xs.

    `xs` are symbols, `mean` a sequence and `cov` a square matrix (sympy or nested lists) in
    the same order. Raises if expr has degree > 2 in xs.
    """
    xs = list(xs)
    mean = list(mean)
    cov = sp.Matrix(cov)
    if len(mean) != len(xs) or cov.shape != (len(xs), len(xs)):
        raise ValueError("mean and cov must match xs in size")
    if not xs:
        return sp.sympify(expr)
    poly = sp.Poly(sp.expand(expr), *xs)
    out = []
    for powers, coeff in poly.terms():
        idx = [i for i, k in enumerate(powers) for _ in range(k)]
        if len(idx) == 0:
            out.append(coeff)
        elif len(idx) == 1:
            out.append(coeff * mean[idx[0]])
        elif len(idx) == 2:
            i, j = idx
            out.append(coeff * (cov[i, j] + mean[i] * mean[j]))
        else:
            raise ValueError(f"degree {len(idx)} > 2 in {xs}: not a quadratic")
    return sp.Add(*out)


def _check_joint_expectation(prev, step: Step, facts: dict, rng) -> tuple[bool, str]:
    """E over (xs) ~ N(mean, cov) of prev equals next: over=(xs, mean, cov)."""
    if step.over is None or len(step.over) != 3:
        return False, "a joint_expectation step needs over=(xs, mean, cov)"
    xs, m, cov = step.over
    try:
        expected = expect_gaussian_vector(prev, xs, m, cov)
    except ValueError as exc:
        return False, str(exc)
    ok, detail = equal(expected, step.expr, facts, rng)
    return ok, f"E over ({', '.join(map(str, xs))}) jointly Gaussian: {detail}" if ok else detail


_SPECIAL_CHECKS = {
    "expectation": _check_expectation,
    "sum_gaussians": _check_sum_gaussians,
    "proportional": _check_proportional,
    "jensen": _check_jensen,
    "evaluate": _check_evaluate,
    "limit": _check_limit,
    "joint_expectation": _check_joint_expectation,
}
