"""A reader for the paper's LaTeX: each catalog line (udm/catalog.yaml) parsed into SymPy.

Two stages, so that each stays small:

1. `normalize` rewrites the paper's notation into a few canonical tokens: `\\bar\\alpha_{t-1}`
   becomes `\\sym{k}` (k indexes the SymPy symbol `alpha_bar_prev` of derivations/symbols.py),
   a density such as `q_{\\phi}(z|x)` becomes `\\fn{k}(z|x)`, `\\left`, `\\,` and
   `\\underbrace{..}_{..}` are dropped, and so on (the table `NOTATION`).
2. A lark grammar (`GRAMMAR`, LALR) reads the canonical string; a lark Transformer builds
   SymPy. A line is a chain `lhs REL rhs [REL rhs ...]`; a line that starts with a relation
   (`= ...`, `\\geq ...`) continues the previous catalog line and takes its left side.

Notation follows shared/NOTATION.md: the symbols are the very objects of derivations/symbols.py,
so a parsed line compares with a derivation's `Step.expr` directly. One coordinate: the
identity matrix I is 1 and the squared norm ||u||_2^2 is u**2, as in the derivations.

What is not algebra stays structured, as opaque SymPy function applications that compare
structurally: densities `q(x_t, given(x_0))`, `E(body, dist)`, `KL(q, p)`,
`N(x, mean, var)`, `argmin(objective, theta)`, `Integral`, `Derivative`. Matrix notation
(transpose, trace, determinant, dimension d) is read on one coordinate, with a note; a line
the reader cannot read (the ellipsis of eq. (67)) gets a reason instead.

    >>> parse_equation(109).chain
    (snr_t, alpha_bar_t/(1 - alpha_bar_t))
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass, field

import sympy as sp
from lark import Lark, Transformer, v_args
from lark.exceptions import LarkError
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter

from udm import catalog
from udm.derivations import symbols as S

# --- the structured (opaque) constructs ---------------------------------------------------

given = sp.Function("given")  # q(x_t | x_0) is q(x_t, given(x_0))
E = sp.Function("E")  # E(body, distribution); E(body) when the paper names none
KL = sp.Function("KL")  # KL(q, p)
Normal = sp.Function("N")  # N(x, mean, variance)
ARGOPS = {"min": sp.Function("argmin"), "max": sp.Function("argmax")}  # argmin(f, theta)
OPAQUE = {"given", "E", "KL", "N", "argmin", "argmax"}

# --- stage 1: notation -> canonical tokens ---------------------------------------------

mu_q, mu_theta = sp.symbols("mu_q mu_theta", real=True)
Sigma_q = sp.Symbol("Sigma_q", positive=True)

# (regex, SymPy symbol), tried in order on the normalized string.
NOTATION: list[tuple[str, sp.Basic]] = [
    (r"\\bar\\alpha_\{t-1\}", S.alpha_bar_prev),
    (r"\\bar\\alpha_t", S.alpha_bar_t),
    (r"\\alpha_\{t-1\}", S.alpha_prev),
    (r"\\alpha_t", S.alpha_t),
    (r"\\hat x_\\theta\(x_t, ?t\)", S.x_0_hat),
    (r"\\hat\\epsilon_\\theta\(x_t, ?t\)", S.eps_hat),
    (r"\\sigma_q\^2\(t\)", S.var_q),
    (r"\\(?:text|mathrm)\{SNR\}\(t\)", S.snr_t),
    (r"\\(?:text|mathrm)\{SNR\}\(t-1\)", S.snr_s),  # SNR(s) with s = t - 1
    (r"\\omega_\\eta\(t\)", S.omega),
    (r"\\nabla(?:_\{?x_t\}?)?\s*\\log p\(x_t\)", S.score),
    (r"s_\\theta\(x_t, ?t\)", S.score_hat),
    (r"\\mu_q(?:\(x_t, ?x_0\))?", mu_q),
    (r"\\mu_\\theta(?:\(x_t, ?t\))?", mu_theta),
    (r"\\Sigma_q\(t\)", Sigma_q),
    (r"\\epsilon_0", S.eps),
    (r"\\epsilon(?![_\w])", S.eps),
    (r"x_\{t-1\}", S.x_prev),
    (r"x_\{t\+1\}", S.x_next),
    (r"(?<!_\{)x_t(?![\w{])", S.x_t),
    (r"x_0(?![\w{])", S.x_0),
    (r"\\gamma", S.guidance_scale),
    (r"(?<![\\a-zA-Z])c(?![_a-zA-Z])", S.step_size),  # Langevin's step c (not c_1, c_2)
]
NOTATION_SYMBOLS = {symbol for _, symbol in NOTATION}
GREEK = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma "
    "tau upsilon phi chi psi omega Sigma Phi Omega Delta Gamma"
).split()
_SUB = r"_(?:\{[^{}]*\}|\\[a-zA-Z]+|[a-zA-Z0-9])"
# generic Greek letters (with a subscript and a star) and the densities/functions p(..), q_\phi(..)
_GREEK_RE = re.compile(
    rf"(?<!_)(?<!_\{{)\\({'|'.join(GREEK)})(?![a-zA-Z])({_SUB})?(\^\*)?(\^2(?=\())?"
)
_FUNC_RE = re.compile(rf"(?<![\\a-zA-Z])([pqfCsU])({_SUB})?(?=\()")
# matrix notation, read on one coordinate (1 x 1 matrices): a transpose and a trace do nothing,
# a determinant |Sigma| is Sigma, and the dimension d is 1
_MATRIX = [
    (r"\)\^T", ")"),
    (r"\\mathrm\{tr\}\(", "("),
    (r"\|(\\Sigma[^|]*)\|", r"(\1)"),
    (r"(?<![\\a-zA-Z])d(?![a-zA-Z_])", "1"),
]


class Unsupported(ValueError):
    """A line the reader does not turn into SymPy; the message is the reason."""


def _strip_wrapper(s: str, command: str) -> str:
    """`\\command{X}` (and `\\underbrace{X}_{label}`) -> `{X}`, balancing braces."""
    while (start := s.find(command + "{")) != -1:
        body_start = start + len(command)
        end = _match_brace(s, body_start)
        tail = end + 1
        if s.startswith("_{", tail):  # underbrace's label
            tail = _match_brace(s, tail + 1) + 1
        s = s[:start] + s[body_start : end + 1] + s[tail:]
    return s


def _match_brace(s: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(s)):
        depth += {"{": 1, "}": -1}.get(s[i], 0)
        if depth == 0:
            return i
    raise Unsupported("unbalanced braces")


def _name(base: str, sub: str | None) -> str:
    """SymPy name of a subscripted letter: `Z_\\theta` -> Z_theta, `x_{t-2}` -> x_{t-2}."""
    if not sub:
        return base
    sub = sub[1:].replace("\\", "")
    return f"{base}_{sub}"


@dataclass
class Canonical:
    text: str
    table: list  # \sym{k} and \fn{k} index this list
    notes: list[str] = field(default_factory=list)


def normalize(latex: str) -> Canonical:
    """Rewrite the paper's notation into the canonical tokens the grammar reads."""
    s, notes = latex, []
    if re.search(_MATRIX[0][0], s) or r"\mathrm{tr}" in s:
        notes.append("read on one coordinate: transpose, trace, determinant of 1 x 1, d = 1")
        for pattern, scalar in _MATRIX:
            s = re.sub(pattern, scalar, s)
    if r"\ldots" in s or "..." in s.split(r"\quad")[0]:
        raise Unsupported("an ellipsis: the paper elides the intermediate lines")
    # side conditions: "\quad \text{with } eps ~ N(...)", ",\quad i = 0, 1, ..., K"
    if (cut := re.search(r",?\s*\\quad", s)) is not None:
        notes.append(s[cut.end() :].strip())
        s = s[: cut.start()]
    for cmd in (r"\underbrace", r"\cancel"):
        s = _strip_wrapper(s, cmd)
    for old, new in [
        (r"\,", " "), (r"\therefore", ""), (r"\mathbf{s}", "s"), (r"U\{2, T\}", "U(2, T)"),
        (r"\bar{\alpha}", r"\bar\alpha"), (r"\hat{x}", r"\hat x"),
        (r"\hat{\epsilon}", r"\hat\epsilon"), (r"\boldsymbol{\epsilon}", r"\epsilon"),
        (r"\boldsymbol\epsilon", r"\epsilon"), (r"\mathbf{I}", "{1}"), (r"\mathbf{0}", "0"),
        (r"D_{\mathrm{KL}}", r"\KL"), (r"\mathcal{N}", r"\Normal"), (r"\mathbb{E}", r"\E"),
        (r"\mathrm{sigmoid}", r"\sigmoid"),
        (r"\rVert_2^2", r"\rVertsq"), (")dx", r")\dd{x}"),
    ]:  # fmt: skip
        s = s.replace(old, new)
    s = re.sub(r"\\(left|right)(?!arrow)", "", s)
    s = re.sub(r"_\{([a-zA-Z0-9])\}", r"_\1", s)  # x_{t} -> x_t
    s = re.sub(r"_\{(\\[a-zA-Z]+)\}", r"_\1", s)  # p_{\theta} -> p_\theta
    s = re.sub(r"\^\{(\d)\}", r"^\1", s)  # x^{2} -> x^2
    s = re.sub(r"\^([a-zA-Z])", r"^{\1}", s)  # \prod_{t=1}^Tp(..) -> \prod_{t=1}^{T}p(..)
    s = re.sub(r"(?<![\\a-zA-Z])e\^\{", r"\\exp{", s)  # e^{..} -> \exp{..}
    # the differential of an integral: "\\int f(z)\\,dz" (at the end of the line or of a bracket)
    s = re.sub(rf"\s+d([a-z](?:{_SUB})?)(?=\s*$|\s*\])", r"\\dd{\1}", s.rstrip())

    table: list = []

    def token(kind: str, what) -> str:
        table.append(what)
        return rf"\{kind}{{{len(table) - 1}}}"

    for pattern, symbol in NOTATION:
        s = re.sub(pattern, lambda _m, sym=symbol: token("sym", sym), s)

    def greek(m: re.Match) -> str:
        letter, sub, star, squared = m.groups()
        name = _name(letter, sub) + ("^*" if star else "")
        if squared:
            return token("fn", sp.Function(name + "^2"))
        if m.string.startswith("(", m.end()):  # \mu_\phi(x), \lambda(t): a function
            return token("fn", sp.Function(name))
        return token("sym", sp.Symbol(name, real=True))

    def argop(m: re.Match) -> str:
        over = [v.strip().lstrip("\\") for v in m.group(2).strip("{}").split(",")]
        return token("argop", (ARGOPS[m.group(1)], [sp.Symbol(v, real=True) for v in over]))

    s = re.sub(r"\\arg\\(min|max)_(\{[^{}]*\}|\\[a-zA-Z]+)", argop, s)
    s = _FUNC_RE.sub(lambda m: token("fn", sp.Function(_name(*m.groups()))), s)
    s = _GREEK_RE.sub(greek, s)
    if (left := re.search(r"\\(text|mathrm|mathbf|boldsymbol|hat|bar)\b", s)) is not None:
        raise Unsupported(f"notation the reader does not map: \\{left.group(1)}")
    return Canonical(s, table, notes)


# --- stage 2: the grammar -------------------------------------------------------------

GRAMMAR = r"""
line: REL? expr (REL expr)*

?expr: ARGOP expr                          -> argop
     | sum
?sum: sum ADDOP term                       -> add
    | "-" term                             -> neg
    | "+"? term
?term: term factor                         -> mul
     | factor
?factor: FUNCTION factor                   -> function
       | NABLA factor                      -> nabla
       | BIGOP "_" "{" SYMBOL REL expr "}" "^" atom term  -> bigop
       | power
?power: atom "^" atom                      -> pow
      | atom
?atom: NUMBER                              -> number
     | SYMBOL                              -> symbol
     | SYM                                 -> table_symbol
     | FN "(" args ("|" args)? ")"         -> call
     | "(" expr ")" | "[" expr "]" | "\\{" expr "\\}" | "{" expr "}"
     | "\\frac" "{" expr "}" "{" expr "}"  -> frac
     | "\\sqrt" "{" expr "}"               -> sqrt
     | "\\lVert" expr "\\rVertsq"          -> norm_sq
     | "\\E" e_dist? "[" expr e_given? "]"  -> expectation
     | "\\KL" "(" expr "\\|" expr ")"      -> kl
     | "\\Normal" "(" expr ";" expr "," expr ")" -> normal
     | "\\int" expr DIFF                   -> integral
args: expr ("," expr)*
e_dist: "_" "{" expr (REL expr)? "}"
e_given: "|" expr

REL: "=" | "\\propto" | "\\approx" | "\\geq" | "\\leq" | "\\sim" | "\\leftarrow"
ADDOP: "+" | "-"
ARGOP: /\\argop\{\d+\}/
FUNCTION: "\\log" | "\\exp" | "\\sigmoid"
NABLA: /\\nabla(_(\{[^{}]*\}|[a-zA-Z]))?/
BIGOP: "\\prod" | "\\sum"
DIFF: /\\dd\{[^{}]*(\{[^{}]*\})?\}/
SYM: /\\sym\{\d+\}/
FN: /\\fn\{\d+\}/
NUMBER: /\d+/
SYMBOL: /[a-zA-Z](_(\{[^{}]*\}|\\[a-zA-Z]+|[a-zA-Z0-9]))?/

%ignore /\s+/
"""

RELATIONS = {
    "=": "=",
    r"\propto": "propto",
    r"\approx": "approx",
    r"\geq": "geq",
    r"\leq": "leq",
    r"\sim": "sim",
    r"\leftarrow": "leftarrow",
}


def _plain_symbol(text: str) -> sp.Symbol:
    base, _, sub = text.partition("_")
    return sp.Symbol(_name(base, "_" + sub if sub else None), real=True)


def _default_wrt(expr) -> sp.Symbol:
    """The variable of a bare nabla: x_t, unless a density's first argument is another x (x_i)."""
    for f in expr.atoms(AppliedUndef):
        first = f.args[0] if f.args else None
        if f.func.__name__ not in OPAQUE and isinstance(first, sp.Symbol) and first != S.x_t:
            if first.name.startswith("x"):
                return first
    return S.x_t


@v_args(inline=True)
class _ToSympy(Transformer):
    def __init__(self, table):
        super().__init__()
        self.table = table

    def line(self, *items):
        return list(items)  # tokens (relations) and expressions, in order

    def number(self, tok):
        return sp.Integer(int(tok))

    def symbol(self, tok):
        return _plain_symbol(str(tok))

    def table_symbol(self, tok):
        return self.table[int(tok[5:-1])]

    def call(self, fn, args, given_args=None):
        f = self.table[int(fn[4:-1])]
        return f(*args, given(*given_args)) if given_args else f(*args)

    def args(self, *exprs):
        return list(exprs)

    def add(self, a, op, b):
        return a + b if op == "+" else a - b

    def neg(self, a):
        return -a

    def mul(self, a, b):
        return a * b

    def pow(self, a, b):
        return a**b

    def frac(self, a, b):
        return a / b

    def sqrt(self, a):
        return sp.sqrt(a)

    def norm_sq(self, a):
        return a**2  # one coordinate: ||u||_2^2 = u^2

    def function(self, name, arg):
        if name == r"\sigmoid":
            return 1 / (1 + sp.exp(-arg))
        return {r"\log": sp.log, r"\exp": sp.exp}[str(name)](arg)

    def nabla(self, tok, arg):
        sub = str(tok)[len(r"\nabla_") :].strip("{}")  # \nabla_x, \nabla_{x_t} or \nabla
        if not sub:
            return sp.Derivative(arg, _default_wrt(arg))
        return sp.Derivative(arg, S.x_t if sub == "x_t" else _plain_symbol(sub))

    def bigop(self, op, index, _eq, lower, upper, body):
        """prod_{i=1}^{t} alpha_i: the symbol alpha_i becomes the indexed alpha[i]."""
        i = _plain_symbol(str(index))
        indexed = {
            s: sp.IndexedBase(s.name[: -len(i.name) - 1])[i]
            for s in body.free_symbols
            if s.name.endswith("_" + i.name) and s not in NOTATION_SYMBOLS
        }
        cls = sp.Product if op == r"\prod" else sp.Sum
        return cls(body.xreplace(indexed), (i, lower, upper))

    def integral(self, body, diff):
        return sp.Integral(body, _plain_symbol(str(diff)[4:-1]))

    def e_dist(self, what, _rel=None, law=None):
        return ("over", what if law is None else sp.Tuple(what, law))  # t ~ U{2, T}

    def e_given(self, what):
        return ("over", given(what))

    def expectation(self, *parts):
        """E(body, distribution), E(body, given(b)) for E[a | b], or E(body)."""
        body = next(p for p in parts if not isinstance(p, tuple))
        return E(body, *(p[1] for p in parts if isinstance(p, tuple)))

    def kl(self, q, p):
        return KL(q, p)

    def normal(self, x, mean, var):
        return Normal(x, mean, var)

    def argop(self, tok, objective):
        op, over = self.table[int(tok[7:-1])]
        return op(objective, *over)


@v_args(inline=True)
class _Held(_ToSympy):
    """The same reading with nothing evaluated: the tree keeps the paper's grouping and order,
    so `held_latex` prints the line as the paper writes it (a - b stays a - b, p q / q stays)."""

    def add(self, a, op, b):
        left = a.args if isinstance(a, sp.Add) else (a,)  # a + b + c, not (a + b) + c
        return sp.Add(*left, b if op == "+" else self.neg(b), evaluate=False)

    def neg(self, a):
        return sp.Mul(-1, a, evaluate=False)

    def mul(self, a, b):
        return sp.Mul(a, b, evaluate=False)

    def pow(self, a, b):
        return sp.Pow(a, b, evaluate=False)

    def frac(self, a, b):
        if a.is_Integer and b.is_Integer:
            return sp.Rational(a, b)
        if a == 1:
            return sp.Pow(b, -1, evaluate=False)
        if isinstance(a, (sp.Mul, sp.Add)):  # the whole numerator over b, not its last factor
            a = sp.UnevaluatedExpr(a)
        return sp.Mul(a, sp.Pow(b, -1, evaluate=False), evaluate=False)

    def sqrt(self, a):
        return sp.Pow(a, sp.S.Half, evaluate=False)

    def function(self, name, arg):
        if name == r"\sigmoid":
            return super().function(name, arg)
        return {r"\log": sp.log, r"\exp": sp.exp}[str(name)](arg, evaluate=False)


@functools.cache
def _parser() -> Lark:
    return Lark(GRAMMAR, start="line", parser="lalr")


# --- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedLine:
    """One catalog line read into SymPy.

    `chain` is (lhs, rhs1, rhs2, ...) and `relations` the relations between them (one per
    link; usually one). `kind`: 'algebraic' (only the paper's symbols, sums, products,
    powers, sqrt, log, exp), 'structured' (also densities, E, KL, N, argmin, integrals,
    gradients), or 'reason' (not parsed: see `reason`). `lhs_from` is the catalog line whose
    left side a continuation line ('= ...') takes; `lhs` is None for a bare expression.
    """

    number: int
    latex: str
    kind: str
    chain: tuple = ()
    relations: tuple[str, ...] = ()
    reason: str | None = None
    lhs_from: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def lhs(self):
        return self.chain[0] if self.chain and self.relations else None

    @property
    def rhs(self):
        return self.chain[-1] if self.chain else None

    @property
    def relation(self) -> str | None:
        return self.relations[-1] if self.relations else None

    def to_json(self) -> dict:
        """A JSON-ready record (`udm eq N --json`): the sides as LaTeX and as SymPy text."""
        return {
            "number": self.number,
            "kind": self.kind,
            "relations": list(self.relations),
            "chain_latex": [S.tex(e) for e in self.chain],
            "chain_sympy": [str(e) for e in self.chain],
            "reason": self.reason,
            "lhs_from": self.lhs_from,
            "notes": list(self.notes),
        }


def is_algebraic(expr) -> bool:
    """True when expr uses no densities, expectations, KL, argmin, integrals or gradients."""
    if expr is None:
        return True
    return not (expr.atoms(AppliedUndef) or expr.has(sp.Integral, sp.Derivative))


def _read(latex: str, held: bool = False):
    """(leading relation or None, [expr, rel, expr, ...], notes) of one line."""
    canon = normalize(latex)
    try:
        tree = _parser().parse(canon.text)
        items = (_Held if held else _ToSympy)(canon.table).transform(tree)
    except LarkError as exc:
        inner = getattr(exc, "orig_exc", None)
        if isinstance(inner, Unsupported):
            raise inner from None
        first = str(exc).strip().splitlines()[0]
        raise Unsupported(f"the grammar does not cover this line ({first[:90]})") from None
    lead = None
    if items and hasattr(items[0], "type"):
        lead, items = RELATIONS[str(items[0])], items[1:]
    exprs = items[0::2]
    rels = [RELATIONS[str(r)] for r in items[1::2]]
    return lead, exprs, rels, canon.notes


def parse_latex(latex: str, lhs=None, lhs_from: int | None = None, number: int = 0) -> ParsedLine:
    """Parse one line of the paper's LaTeX; `lhs` is the left side a continuation line takes."""
    try:
        lead, exprs, rels, notes = _read(latex)
    except Unsupported as exc:
        return ParsedLine(number, latex, "reason", reason=str(exc))
    if lead is not None:
        if lhs is None:
            reason = "continues a line whose left side is not known"
            return ParsedLine(number, latex, "reason", reason=reason)
        exprs, rels = [lhs, *exprs], [lead, *rels]
    else:
        lhs_from = None
    kind = "algebraic" if all(is_algebraic(e) for e in exprs) else "structured"
    return ParsedLine(number, latex, kind, tuple(exprs), tuple(rels), None, lhs_from, tuple(notes))


def held_right_side(number: int):
    """The paper's right side of eq. (number) read with nothing evaluated, or None."""
    try:
        _, exprs, _, _ = _read(catalog.get(number).latex, held=True)
    except Unsupported:
        return None
    return exprs[-1] if exprs else None


_GREEK_NAME = re.compile(rf"^({'|'.join(GREEK)})(_|$)")


class _PaperPrinter(LatexPrinter):
    """SymPy's LaTeX, with the reader's structured constructs in the paper's notation."""

    def _print_Mul(self, expr):
        """Factors in the paper's order; a / b (held as a * b^-1) as one fraction."""
        args = list(expr.args)
        if args and args[0] == -1:
            return "- " + self._print(sp.Mul(*args[1:], evaluate=False))
        out: list[tuple[str, str]] = []  # (text, text in parentheses where a sum)
        for f in args:
            if isinstance(f, sp.Pow) and f.exp == -1 and out:
                out[-1] = (rf"\frac{{{out[-1][0]}}}{{{self._print(f.base)}}}",) * 2
                continue
            text = self._print(f)
            grouped = isinstance(f, sp.Add) or (
                isinstance(f, sp.UnevaluatedExpr) and isinstance(f.args[0], sp.Add)
            )
            out.append((text, rf"\left({text}\right)" if grouped else text))
        return " ".join(wrapped for _, wrapped in out)

    def _print_Pow(self, expr, exp=None):
        if expr.exp == -1:
            return rf"\frac{{1}}{{{self._print(expr.base)}}}"
        return super()._print_Pow(expr)

    def _print_exp(self, expr, exp=None):
        return rf"\exp\left\{{{self._print(expr.args[0])}\right\}}"

    def _print_Symbol(self, expr, style="plain"):
        if expr not in self._settings["symbol_names"] and _GREEK_NAME.match(expr.name):
            return "\\" + expr.name  # the reader's epsilon_{t-2}
        return super()._print_Symbol(expr, style)

    def _print_Function(self, expr, exp=None):
        name, args = expr.func.__name__, expr.args
        if name == "given":
            return ", ".join(self._print(a) for a in args)
        if name == "E":
            law = f"_{{{self._print(args[1])}}}" if len(args) > 1 else ""
            return rf"\mathbb{{E}}{law}\left[{self._print(args[0])}\right]"
        if name == "KL":
            return rf"D_{{\mathrm{{KL}}}}({self._print(args[0])} \| {self._print(args[1])})"
        if name == "N":
            return rf"\mathcal{{N}}({', '.join(self._print(a) for a in args)})"
        if name in ("argmin", "argmax"):
            over = ", ".join(self._print(a) for a in args[1:])
            return rf"\arg\{name[3:]}_{{{over}}} {self._print(args[0])}"
        if isinstance(expr, AppliedUndef):  # a density: p_theta(x_{t-1} | x_t)
            head = self._print(sp.Symbol(name))
            *inner, last = args
            if getattr(last, "func", None) == given:
                body = ", ".join(self._print(a) for a in inner) + " | " + self._print(last)
            else:
                body = ", ".join(self._print(a) for a in args)
            out = f"{head}({body})"
            return f"{out}^{{{self._print(exp)}}}" if exp is not None else out
        return super()._print_Function(expr, exp)


def held_latex(expr) -> str:
    """LaTeX of a held expression, terms in the order the paper wrote them."""
    return _PaperPrinter({"order": "none", "symbol_names": S.LATEX_NAMES}).doprint(expr)


def _continues(latex: str) -> bool:
    return latex.lstrip().startswith(tuple(RELATIONS))


@functools.cache
def parse_all() -> dict[int, ParsedLine]:
    """Every catalog equation, parsed (or with its reason), keyed by number."""
    out: dict[int, ParsedLine] = {}
    left: dict[int, tuple] = {}  # number -> (left side of its chain, line it comes from)
    for number, eq in sorted(catalog.load().items()):
        lhs, origin = left.get(number - 1, (None, None)) if _continues(eq.latex) else (None, None)
        line = out[number] = parse_latex(eq.latex, lhs, origin, number)
        if not _continues(eq.latex):
            lhs, origin = (line.lhs, number) if line.lhs is not None else (None, None)
        left[number] = (lhs, origin)
    return out


def parse_equation(number: int) -> ParsedLine:
    """The parsed form of catalog equation `number` (continuations resolved)."""
    catalog.get(number)  # KeyError names the valid range
    return parse_all()[number]


def counts(parsed: dict[int, ParsedLine] | None = None) -> dict[str, Counter]:
    """Per section module (and 'all'): how many lines are algebraic, structured, reason.

    'algebraic right side' counts the lines (of any kind) whose right side, or the objective
    of an argmin there, is algebraic: what a derivation's step can be compared with.
    """
    parsed = parse_all() if parsed is None else parsed
    eqs = catalog.load()
    table: dict[str, Counter] = {m: Counter() for m in catalog.SECTIONS}
    table["all"] = Counter()
    for n, line in parsed.items():
        for key in (eqs[n].module, "all"):
            table[key][line.kind] += 1
            table[key]["algebraic right side"] += line.kind != "reason" and is_algebraic(
                objective(line.rhs)
            )
    return table


def objective(expr):
    """argmin_theta f -> f; any other expression unchanged."""
    if isinstance(expr, AppliedUndef) and expr.func in ARGOPS.values():
        return expr.args[0]
    return expr


if __name__ == "__main__":  # python -m udm.latex_reader: the counts per section
    for section, row in counts().items():
        print(f"{section:16s}", ", ".join(f"{k} {v}" for k, v in sorted(row.items())))
