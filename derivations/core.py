"""The derivation engine: a derivation is a list of steps, each licensed by a named rule.

Every step's expression is checked against the previous one by the machine:

* equality rules (`algebra`, `bayes`, `complete_square`, ...): `prev == next` after the
  derivation's `facts` are applied. First a numeric probe at random points of the symbols'
  domains (fast, catches most wrong steps and reports where), then a symbolic proof
  (`expand`, `cancel`, then `simplify`). A step is accepted only when the symbolic proof
  succeeds: a probe may refute, never accept. Most of these rule names are labels for the
  reader (plain algebra, see PLAIN_ALGEBRA); `differentiate` carries out derivatives first.
* `proportional` (the paper's "propto"): prev / next does not depend on `wrt`.
* `jensen` (the paper's ">="): prev - next equals the gap, and the gap is proved >= 0:
  either it is a `KL` built here from two Gaussians whose covariances are proved positive
  definite (Gibbs' inequality), or SymPy proves it nonnegative from the symbols' assumptions.
* a `definition` step may only open a chain (it proves nothing); a line labelled with the
  paper's number must use the paper's relation where the paper's line opens with one
  (`=`, `\\geq`, `\\propto`): a `=` step cannot be the paper's `>=` line.

Facts are lemmas: each `Fact` substitutes symbol = value in every line and names why that
is allowed (an equation or derivation that proves it, a catalog definition, a private
abbreviation, or the engine's own change of variables alpha = r^2). A bare dict entry, or a
lemma proved by a line of the same derivation, is refused. See `udm.status` for how the
status of an equation is computed from what was checked here.

Expectations are never integrated: on linear-Gaussian families every log-density is a
quadratic, so `expect_normal` takes expectations of polynomials by their moments.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import sympy as sp

from udm.derivations._stable import elementary
from udm.derivations.symbols import tex

# rule -> what licenses the step (shown by `udm eq`, checked as described above)
RULES = {
    "definition": "introduces the expression (first line only); nothing to check",
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
    "jensen": "Jensen's inequality: the gap is an engine-built KL (Gibbs) or proved >= 0",
    "differentiate": "carry out the derivatives (doit), then prove the two sides equal",
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
# Equality rules whose name only tells the reader why the step holds: the machine checks
# each of them as plain algebra (prev == next after the facts), nothing rule-specific.
PLAIN_ALGEBRA = EQUALITY_RULES - {"differentiate"}
for _rule in PLAIN_ALGEBRA:
    RULES[_rule] += " [checked as plain algebra: prev == next]"


class DerivationError(AssertionError):
    """A step does not follow from the previous one by its rule."""


@dataclass(frozen=True)
class Step:
    """One line of a derivation: `relation expr`, licensed by `rule`."""

    expr: sp.Basic
    rule: str
    why: str = ""
    eq: int | str | None = None  # the paper's number of this line (or a beyond key 'ddim.12')
    gap: sp.Expr | None = None  # jensen: prev - expr, a KL in closed form
    wrt: sp.Symbol | None = None  # proportional: the variable of the density
    noise: tuple = ()  # sum_gaussians: independent standard normal symbols
    over: tuple | None = None  # expectation: (x, mean, var), x ~ N(mean, var)
    name: str = ""  # a label for an unnumbered line that a ClosedForm comes from

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
    maps each to 'real', 'positive', 'unit' (0 < v <= 1), 'open_unit' (0 < v < 1),
    'closed_unit' (0 <= v <= 1), 'negative' (v < 0) or 'nonpositive' (v <= 0: the log of a
    level in (0, 1]).
    `line` names the derivation line the form comes from (its equation number, a step's
    `name`, or "last"); `component` picks one entry of a tuple line; `rename` maps the line's symbols
    to the function's (e.g. eps -> eps_hat: the same formula applied to a prediction).
    `udm verify` proves expr == that line (after the derivation's facts).
    """

    name: str
    equations: tuple[int | str, ...]
    expr: sp.Expr
    args: tuple[str, ...]
    domains: dict[str, str]
    summary: str
    lhs: str = ""  # LaTeX of the left-hand side, for the docstring
    line: int | str | None = None
    component: int | None = None
    rename: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)  # keyword defaults of the generated function


@dataclass
class StepCheck:
    index: int  # -1: the derivation's facts; -2: a closed form
    eq: int | None
    rule: str
    ok: bool
    detail: str
    seconds: float


# --- facts: every substitution names why it is allowed ------------------------------------

FACT_KINDS = {
    "lemma": "proved elsewhere: `by` is an equation number or a derivation's dotted path",
    "definition": "the catalog definition `by` (an equation whose kind is definition)",
    "abbreviation": "a private name for an expression (not a paper symbol)",
    "square_root": "change of variables alpha = r^2, r > 0 (alpha > 0): loses no generality",
    "unit_interval": (
        "change of variables a = 1 / (1 + u), u > 0 (a in (0, 1)): loses no generality"
    ),
}


@dataclass(frozen=True)
class Fact:
    """symbol = value, substituted into every line; `kind` and `by` say why that is allowed."""

    symbol: sp.Basic
    value: sp.Expr
    kind: str
    by: int | str | None = None


def lemma(symbol, value, by: int | str) -> Fact:
    """symbol = value as proved by equation `by` (int) or the derivation at dotted path `by`."""
    return Fact(symbol, value, "lemma", by)


def definition(symbol, value, eq: int) -> Fact:
    """symbol = value as the paper defines it in equation `eq` (catalog kind: definition)."""
    return Fact(symbol, value, "definition", eq)


def abbreviation(symbol, value) -> Fact:
    """A private symbol standing for `value` (never one of the paper's symbols)."""
    return Fact(symbol, value, "abbreviation")


def square_roots(alphas) -> tuple[Fact, ...]:
    """alpha = r^2 with a fresh r > 0 for each positive alpha: the checker then meets
    rational functions instead of sqrt(alpha) (the same identities, proved much faster by
    `cancel`). Every alpha > 0 is such a square, so nothing is lost."""
    return tuple(
        Fact(al, sp.Symbol(f"sqrt_{al.name}", positive=True) ** 2, "square_root") for al in alphas
    )


def unit_intervals(symbols) -> tuple[Fact, ...]:
    """a = 1 / (1 + u) with a fresh u > 0 for each a in (0, 1) (an alpha, an alpha_bar): then
    1 - a = u / (1 + u) is visibly positive, so SymPy may split log(1 - a) over products.
    Every a in (0, 1) is such a quotient (u = (1 - a) / a), so nothing is lost."""
    return tuple(
        Fact(a, 1 / (1 + sp.Symbol(f"u_{a.name}", positive=True)), "unit_interval") for a in symbols
    )


def _paper_symbols() -> set:
    from udm.derivations import symbols

    every = {v for v in vars(symbols).values() if isinstance(v, sp.Symbol)}
    return every - symbols.BEYOND_PAPER


def fact_problems(facts, lines: set[int], steps) -> list[str]:
    """Why each fact may not be used (empty when all are licensed)."""
    from udm import catalog

    problems = []
    known = catalog.load_all()  # the paper's numbers and the keys beyond it ('ddim.16')
    used = set()
    for s in steps:
        for c in _components(s.expr):
            used |= sp.sympify(c).free_symbols
    for f in facts:
        if not isinstance(f, Fact):
            problems.append(f"fact {f!r} names no proof (use lemma/definition/abbreviation)")
            continue
        what = f"fact {f.symbol} = {f.value} ({f.kind}"
        what += f" by {f.by})" if f.by is not None else ")"
        if f.kind == "lemma":
            if isinstance(f.by, bool) or not isinstance(f.by, (int, str)) or f.by in ("", None):
                problems.append(f"{what}: a lemma names the equation or derivation proving it")
            elif isinstance(f.by, int) and f.by not in known:
                problems.append(f"{what}: no equation {f.by} in the catalog")
            elif isinstance(f.by, int) and f.by in lines:
                problems.append(f"{what}: restates eq. ({f.by}), a line of this derivation")
            elif isinstance(f.by, str) and f.by in lines:
                problems.append(f"{what}: restates {f.by}, a line of this derivation")
            elif (
                isinstance(f.by, str)
                and not f.by.startswith("udm.derivations.")
                and not catalog.is_beyond(f.by)
            ):
                problems.append(f"{what}: `by` must be a derivation's dotted path or a key")
        elif f.kind == "definition":
            # a definition proves nothing, so using it is never circular
            if f.by not in known or known[f.by].kind != "definition":
                problems.append(f"{what}: eq. ({f.by}) is not a definition in the catalog")
        elif f.kind == "abbreviation":
            if f.symbol in _paper_symbols() or not isinstance(f.symbol, sp.Symbol):
                problems.append(f"{what}: only a private symbol may abbreviate")
        elif f.kind == "unit_interval":
            u = sp.cancel(1 / f.value - 1)
            if not (isinstance(u, sp.Symbol) and u.is_positive):
                problems.append(f"{what}: needs value 1 / (1 + u) with u > 0")
            elif u in used:
                problems.append(f"{what}: u must be a fresh symbol")
        elif f.kind == "square_root":
            r = sp.sqrt(f.value)
            if not (f.symbol.is_positive and isinstance(r, sp.Symbol) and r.is_positive):
                problems.append(f"{what}: needs alpha > 0 and value r^2 with r > 0")
            elif r in used:
                problems.append(f"{what}: r must be a fresh symbol")
        else:
            problems.append(f"{what}: unknown kind; known: {', '.join(FACT_KINDS)}")
    return problems


# --- KL divergences built by the engine (the gaps of Jensen steps) ----------------------------


def _positive(expr) -> bool:
    """True only if SymPy proves expr > 0 from the symbols' assumptions."""
    expr = sp.factor(sp.cancel(sp.sympify(expr)))
    return bool(expr.is_positive)


def _log_positive(expr):
    """log(expr) split over the factors of expr, each proved positive (else left whole)."""
    expr = sp.factor(sp.cancel(expr))
    coeff, factors = expr.as_coeff_mul()
    if coeff.is_positive and all(_positive(f) for f in factors):
        return sp.log(coeff) + sp.Add(*[sp.expand_log(sp.log(f), force=True) for f in factors])
    return sp.log(expr)


@dataclass(frozen=True)
class KL:
    """KL(N(mean_q, cov_q) || N(mean_p, precision_p^-1)), as the engine writes it.

    Gibbs' inequality makes it >= 0 once both Gaussians exist, i.e. cov_q and precision_p
    are positive definite: `side_conditions` proves that (leading principal minors > 0).
    `unit` lists symbols the model keeps in (0, 1) (a schedule's alphas): the proof writes
    each as 1 / (1 + u) with u > 0, which covers exactly (0, 1).
    """

    mean_q: sp.Matrix
    cov_q: sp.Matrix
    mean_p: sp.Matrix
    precision_p: sp.Matrix
    unit: tuple = ()

    @classmethod
    def normal(cls, mean_q, var_q, mean_p, var_p) -> KL:
        """KL(N(mean_q, var_q) || N(mean_p, var_p)) in one dimension."""
        one = lambda v: sp.Matrix([[v]])  # noqa: E731
        return cls(one(mean_q), one(var_q), one(mean_p), one(1 / sp.sympify(var_p)))

    def side_conditions(self) -> tuple[bool, str]:
        inside = {s: 1 / (1 + sp.Dummy(f"u_{s}", positive=True)) for s in self.unit}
        for name, m in (("cov_q", self.cov_q), ("precision_p", self.precision_p)):
            for k in range(1, m.shape[0] + 1):
                if not _positive(m[:k, :k].det().subs(inside)):
                    return False, f"{name} is not proved positive definite (minor {k})"
        return True, "covariances positive definite"

    @property
    def expr(self) -> sp.Expr:
        d = self.mean_p - self.mean_q
        lam, cov = self.precision_p, self.cov_q
        k = lam.shape[0]
        quad = (d.T * lam * d)[0, 0]
        log_dets = _log_positive(lam.det()) + _log_positive(cov.det())
        return ((lam * cov).trace() + quad - k - log_dets) / 2


@dataclass
class Derivation:
    """A chain of steps proving `equations`, optionally on a concrete `family`.

    `equations` is keyword-only and is not typed by a registered builder: `udm.register`
    fills it in with the builder's registered numbers (and refuses a builder that passes
    others); a Derivation built outside a registered builder may pass `equations=`.
    `facts` is a sequence of `Fact`s (see `lemma`, `definition`, `abbreviation`,
    `square_roots`); a plain dict is accepted only to be refused by `check`. `claims` are
    equations whose statement is the whole chain: its first line, related to its last
    (e.g. log p(x) >= ELBO when the chain starts at log p(x) and ends at the ELBO).
    """

    title: str
    steps: list[Step]
    facts: tuple | dict = ()
    family: str | None = None
    results: tuple[ClosedForm, ...] = ()
    seed: int = 0
    claims: tuple[int, ...] = ()
    equations: tuple[int | str, ...] = field(default=(), kw_only=True)

    def __post_init__(self):
        if isinstance(self.steps, (str, bytes)) or not all(isinstance(s, Step) for s in self.steps):
            raise TypeError(
                f"{self.title}: steps must be Steps, got {self.steps!r:.80}; the equations "
                "are not positional (equations=..., or the builder's @register supplies them)"
            )

    @property
    def fact_list(self) -> list:
        if isinstance(self.facts, dict):  # unlicensed substitutions: refused by check()
            return [f"{k} = {v}" for k, v in self.facts.items()]
        return list(self.facts)

    @property
    def substitutions(self) -> dict:
        return {f.symbol: f.value for f in self.fact_list if isinstance(f, Fact)}

    @property
    def lines(self) -> set[int | str]:
        return {s.eq for s in self.steps if s.eq} | set(self.claims)

    def check(self) -> list[StepCheck]:
        """Check the facts and every step against its predecessor; never raises."""
        out = []
        for problem in fact_problems(self.fact_list, self.lines | set(self.equations), self.steps):
            out.append(StepCheck(-1, None, "fact", False, problem, 0.0))
        facts = self.substitutions
        rng = random.Random(self.seed)
        for i, step in enumerate(self.steps):
            start = time.perf_counter()
            if i == 0:
                ok, detail = True, "first line"
            elif step.rule == "definition":
                ok, detail = False, "a definition step may only open a chain (it proves nothing)"
            elif step.eq and _paper_relation(step.eq) not in (None, step.relation):
                paper = _paper_relation(step.eq)
                ok, detail = (
                    False,
                    f"the paper's line ({step.eq}) is '{paper}', this step '{step.relation}'",
                )
            else:
                ok, detail = _check_step(self.steps[i - 1].expr, step, facts, rng)
            out.append(StepCheck(i, step.eq, step.rule, ok, detail, time.perf_counter() - start))
        return out

    def line_of(self, cf: ClosedForm):
        """The expression of the line a closed form names, or None."""
        for s in self.steps[::-1] if cf.line == "last" else self.steps:
            if cf.line == "last" or (cf.line is not None and cf.line in (s.eq, s.name)):
                expr = s.expr
                if cf.component is not None:
                    expr = _components(expr)[cf.component]
                return sp.sympify(expr).subs(cf.rename, simultaneous=True)
        return None

    def check_results(self) -> list[StepCheck]:
        """Prove each closed form equal to the derivation line it names."""
        out = []
        rng = random.Random(self.seed + 1)
        for cf in self.results:
            start = time.perf_counter()
            line = self.line_of(cf)
            if cf.line is None:
                ok, detail = False, f"closed form {cf.name} names no derivation line"
            elif line is None:
                ok, detail = False, f"closed form {cf.name}: no line {cf.line!r} here"
            else:
                ok, detail = equal(cf.expr, line, self.substitutions, rng)
                what = f"closed form {cf.name} = line {cf.line!r}"
                detail = f"{what}: {detail}" if ok else f"{what} fails: {detail}"
            out.append(StepCheck(-2, None, "closed_form", ok, detail, time.perf_counter() - start))
        return out

    def verify(self) -> list[StepCheck]:
        """Check facts, steps and closed forms; raise DerivationError naming the first failure."""
        checks = self.check() + self.check_results()
        for c in checks:
            if not c.ok:
                raise DerivationError(f"{self.title}: {where(c)} [{c.rule}] {c.detail}")
        return checks


def _paper_relation(n: int) -> str | None:
    """The relation a continuation line of the paper opens with ('=', geq, propto), if any."""
    from udm import catalog

    latex = catalog.get(n).latex.strip() if isinstance(n, int) and n in catalog.load() else ""
    return next((r for r in (r"\geq", r"\propto", "=") if latex.startswith(r)), None)


def where(c: StepCheck) -> str:
    """How a failed check is named in messages: eq. (N), step i, facts or closed form."""
    if c.index == -1:
        return "facts"
    if c.index == -2:
        return "closed form"
    return f"eq. ({c.eq})" if c.eq else f"step {c.index}"


# --- checking ----------------------------------------------------------------------------


def _probe_value(sym: sp.Symbol, rng: random.Random) -> sp.Rational:
    if sym.is_integer:
        return sp.Integer(rng.randint(1, 4))
    if sym.is_negative or sym.is_nonpositive:
        return -sp.Rational(rng.randint(5, 200), 100)  # a log of a level in (0, 1)
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


def _plain(expr):
    """expr with the numerically stable functions of generated code (expm1, log1p; SymPy's
    codegen functions) written as what they compute (exp(x) - 1, log(1 + x)), so the usual
    probe and proof apply. A Piecewise whose branches then agree collapses to that branch."""
    from sympy.codegen.cfunctions import expm1, log1p

    return sp.expand_func(expr) if expr.has(expm1, log1p) else expr


def equal(a, b, facts: dict | None = None, rng: random.Random | None = None) -> tuple[bool, str]:
    """Prove a == b (componentwise for tuples/matrices) after substituting `facts`."""
    facts = facts or {}
    lhs, rhs = _components(a), _components(b)
    if len(lhs) != len(rhs):
        return False, f"{len(lhs)} components vs {len(rhs)}"
    details = []
    for x, y in zip(lhs, rhs, strict=True):
        # a numerically stable function is its definition here (udm.derivations._stable), and
        # expm1/log1p are read as what they compute
        ok, detail = is_zero(_plain(elementary(sp.sympify(x - y))).subs(facts), rng)
        if not ok:
            return False, detail
        details.append(detail)
    return True, details[-1] if len(details) == 1 else "; ".join(sorted(set(details)))


def _check_step(prev, step: Step, facts: dict, rng: random.Random) -> tuple[bool, str]:
    """Dispatch on the step's rule; equality rules on generic functions use jet symbols."""
    if step.rule == "differentiate":  # a check of its own: carry out the derivatives first
        prev, step = _doit(prev), Step(_doit(step.expr), "algebra")
    if step.rule in EQUALITY_RULES:
        if _has_generic_function(prev) or _has_generic_function(step.expr):
            return _check_generic_equality(prev, step, facts, rng)
        return equal(prev, step.expr, facts, rng)
    return _SPECIAL_CHECKS[step.rule](prev, step, facts, rng)


def _doit(expr):
    """Carry out derivatives (and Subs) in every component of expr."""
    if isinstance(expr, (tuple, list, sp.Tuple)):
        return sp.Tuple(*[sp.sympify(e).doit() for e in expr])
    return sp.sympify(expr).doit()


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
    """prev >= next: prev - next equals the gap, and the gap is proved >= 0.

    A `KL` gap is >= 0 by Gibbs' inequality once its side conditions are proved; any other
    gap must be proved nonnegative by SymPy from the symbols' assumptions. Probing the gap
    at random points may refute the step, never accept it.
    """
    if isinstance(step.gap, KL):
        ok, why = step.gap.side_conditions()
        if not ok:
            return False, f"the KL gap is not a KL of two Gaussians: {why}"
        gap, because = step.gap.expr, "the gap is an engine-built KL >= 0 (Gibbs)"
    else:
        gap = sp.sympify(step.gap)
        because = "the gap is proved >= 0 from the symbols' assumptions"
    ok, detail = equal(prev - step.expr, gap, facts, rng)
    if not ok:
        return False, f"prev - next is not the stated gap: {detail}"
    gap = sp.sympify(gap).subs(facts)
    if gap.free_symbols:
        for point, value in probe(gap, rng, n=5):
            if value.real < -1e-20:
                return False, f"gap is negative ({value.real:.3g}) at {point}"
    if not isinstance(step.gap, KL) and not (
        sp.simplify(gap).is_nonnegative or sp.factor(gap).is_nonnegative
    ):
        return False, "the gap is not proved >= 0 (give a KL, or assumptions that make it so)"
    return True, f"{because}; {detail}"


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


def _peel(total):
    """Sum/Product over (k, lo, n) written as its last term combined with the rest (lo..n-1)."""
    (k, lo, n), f = total.limits[0], total.function
    rest = type(total)(f, (k, lo, n - 1))
    return f.subs(k, n) * rest if isinstance(total, sp.Product) else f.subs(k, n) + rest


def _check_evaluate(prev, step: Step, facts: dict, rng: random.Random) -> tuple[bool, str]:
    prev, nxt = sp.sympify(prev), sp.sympify(step.expr)
    if isinstance(prev, (sp.Sum, sp.Product)) and len(prev.limits) == 1:
        if sp.expand(_peel(prev) - nxt) == 0:  # the definition of a finite sum or product
            return True, "last term peeled off"
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
    # f(x) keeps exactly the assumptions its function declares (Function("p", positive=True)
    # for a density); an undeclared f is only real, so sqrt(f^2) = f is not provable.
    values = {
        a: sp.Symbol(f"_jet_f{i}", positive=True)
        if a.is_positive
        else sp.Symbol(f"_jet_f{i}", real=True)
        for i, a in enumerate(sorted(apps, key=str))
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
