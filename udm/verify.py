"""`udm verify`: run every derivation's step checks and every derivation-vs-reference check.

For each section: build each registered derivation and check its steps; compare each
generated reference function with its SymPy closed form at random points (30-digit
evaluation, relative error <= 1e-12); check that reference/_generated is up to date.
Rows are reported per equation, as soon as the section finishes.
"""

from __future__ import annotations

import importlib
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from udm import catalog

REFERENCE_RTOL = 1e-12  # float64 evaluation of a closed form vs its 30-digit value


@dataclass
class Row:
    number: int | str  # the paper's number or a beyond key ('ddim.12')
    status: str
    ok: bool
    seconds: float = 0.0
    checks: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _reference_check(cf, source: str, section: str, rng: random.Random) -> str | None:
    """None if the generated reference function matches the closed form, else a message."""
    import sympy as sp

    module = importlib.import_module(f"udm.reference._generated.{section}")
    fn = getattr(module, cf.name, None)
    if fn is None:
        return f"udm.reference._generated.{section}.{cf.name} is missing (run `udm generate`)"
    symbols = {s.name: s for s in cf.expr.free_symbols}
    for _ in range(5):
        point = {}
        for name in cf.args:
            domain = cf.domains[name]
            if domain == "real":
                value = rng.uniform(-2.0, 2.0)
            elif domain in ("negative", "nonpositive"):
                value = -rng.uniform(0.05, 2.0)
            else:
                value = rng.uniform(0.05, 0.95)
            point[name] = value
        exact = complex(
            sp.N(
                cf.expr.subs(
                    {symbols[k]: sp.Float(v, 30) for k, v in point.items() if k in symbols}
                ),
                30,
            )
        ).real
        got = float(fn(**point))
        if not math.isclose(got, exact, rel_tol=REFERENCE_RTOL, abs_tol=1e-300):
            return f"{source} -> {cf.name}{point}: reference {got!r} vs exact {exact!r}"
    return None


def verify_section(
    section: str, wanted: set[int] | None = None, built: dict | None = None
) -> list[Row]:
    """Verify one section; rows for the equations its derivations cover (filtered by wanted).

    Each derivation's facts, steps and closed-form ties are checked (`check`,
    `check_results`); `built` collects {path: (derivation, checks)} for the status.
    """
    from udm.derivations import codegen
    from udm.derivations.core import where

    rows: dict[int, Row] = {}
    rng = random.Random(0)
    derivations = codegen.derivations_of(section)
    fresh = codegen.render(section, derivations)
    stale = None
    if fresh is not None:
        path = codegen.GENERATED_DIR / f"{section}.py"
        if not path.exists() or path.read_text(encoding="utf-8") != fresh:
            stale = f"reference/_generated/{section}.py is out of date: run `udm generate`"
    for source, derivation in derivations:
        eqs = [n for n in derivation.equations if wanted is None or n in wanted]
        eqs += [
            n
            for cf in derivation.results
            for n in cf.equations
            if (wanted is None or n in wanted) and n not in eqs
        ]
        if not eqs:
            continue
        status = "?"  # filled in by run() once every derivation is checked
        start = time.perf_counter()
        failures = []
        checks = derivation.check() + derivation.check_results()
        if built is not None:
            built[source] = (derivation, checks)
        for check in checks:
            if not check.ok:
                failures.append(f"{source}: {where(check)} [{check.rule}] {check.detail}")
        for cf in derivation.results:
            problem = _reference_check(cf, source, section, rng)
            if problem:
                failures.append(problem)
        if stale:
            failures.append(stale)
        seconds = time.perf_counter() - start
        for n in eqs:
            row = rows.setdefault(n, Row(n, status, True))
            row.ok = row.ok and not failures
            row.seconds += seconds / len(eqs)
            row.checks.append(source)
            row.failures.extend(failures)
    return [rows[n] for n in sorted(rows, key=_order)]


def _order(n) -> tuple:
    """Paper numbers in order, then beyond keys ('ddim.12') in catalog order."""
    keys = list(catalog.load_beyond())
    return (1, keys.index(n)) if isinstance(n, str) else (0, n)


def _beyond_path(path: str) -> bool:
    """True for a derivation of a section beyond the paper (udm.derivations.ddim....)."""
    return path.split(".")[1] in catalog.BEYOND_SECTIONS


def run(
    equations: Iterable[int | str] = (),
    section: str | None = None,
    on_row: Callable[[Row], None] | None = None,
) -> list[Row]:
    """Verify the selected equations (all when none given); call on_row for each row.

    A full run (no selection) computes every equation's status from what it checked and
    writes udm/status.json, and compares every printed line with its derivation line
    (udm/printed_match.py) into udm/printed_match.json; a partial run shows the statuses of
    the last full run.
    """
    from udm import registry, status

    wanted = set(equations) or None
    sections = [section] if section else [*catalog.SECTIONS, *catalog.BEYOND_SECTIONS]
    if wanted:
        modules = {catalog.get(n).module for n in wanted}
        sections = [s for s in sections if s in modules]
    rows, built = [], {}
    for name in sections:
        rows.extend(verify_section(name, wanted, built))
    if wanted is None and section is None:
        paper = {p: b for p, b in built.items() if not _beyond_path(p)}
        statuses = status.compute(paper)
        if all(r.ok for r in rows) and statuses != status.load():
            status.write(statuses)
            registry.computed_statuses.cache_clear()
        beyond = status.compute(built, beyond=True)
        if all(r.ok for r in rows) and beyond != status.load_beyond():
            status.write_beyond(beyond)
            registry.computed_beyond_statuses.cache_clear()
        statuses = {**statuses, **beyond}
        if all(r.ok for r in rows):
            from udm import printed_match

            printed_match.store(printed_match.match_all(built=paper))
    else:
        statuses = {**registry.computed_statuses(), **registry.computed_beyond_statuses()}
    for row in rows:
        row.status = statuses.get(row.number, {}).get("status", "missing")
        if on_row:
            on_row(row)
    return rows
