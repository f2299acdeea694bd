"""Closed forms are tied to proofs: perturbing any ClosedForm makes `udm verify` fail.

`udm verify` proves each ClosedForm (what `udm generate` prints into reference/_generated/)
equal to the derivation line it names (`Derivation.check_results`). Here every closed form
of every registered derivation is perturbed in turn, by a factor 1 + 1e-3 and by swapping
two of its symbols, and that check must fail for each one.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools

import pytest
import sympy as sp

from udm import catalog
from udm.derivations import codegen

FORMS = [
    (path, d, i)
    for section in (*catalog.SECTIONS, *catalog.BEYOND_SECTIONS)
    for path, d in codegen.derivations_of(section)
    for i in range(len(d.results))
]


def _ids():
    return [f"{d.results[i].name}@{path.rsplit('.', 1)[1]}" for path, d, i in FORMS]


def _swapped(expr):
    """expr with two of its symbols exchanged (a pair that changes it), or a shifted symbol."""
    syms = sorted(expr.free_symbols, key=str)
    for s, t in itertools.combinations(syms, 2):
        other = expr.subs({s: t, t: s}, simultaneous=True)
        if sp.simplify(other - expr) != 0:
            return other
    (s,) = syms  # one symbol: "swap" it for a neighbouring value
    return expr.subs(s, s + 1)


def _fails(d, i, expr) -> bool:
    bad = dataclasses.replace(d.results[i], expr=expr)
    broken = dataclasses.replace(d, results=(bad,))
    (check,) = broken.check_results()
    return not check.ok


def test_every_closed_form_is_tied_and_true():
    generated = set()
    for section in (*catalog.SECTIONS, *catalog.BEYOND_SECTIONS):
        if codegen.render(section) is None:
            continue  # nothing generated (no closed form in that section)
        generated |= set(importlib.import_module(f"udm.reference._generated.{section}").__all__)
    assert {d.results[i].name for _, d, i in FORMS} == generated  # every generated function
    for path, d, i in FORMS:
        (check,) = dataclasses.replace(d, results=(d.results[i],)).check_results()
        assert check.ok, f"{path}: {check.detail}"


@pytest.mark.parametrize(("path", "d", "i"), FORMS, ids=_ids())
def test_perturbed_closed_form_fails(path, d, i):
    expr = d.results[i].expr
    assert _fails(d, i, expr * (1 + sp.Rational(1, 1000))), f"{path}: 1 + 1e-3 accepted"
    assert _fails(d, i, _swapped(expr)), f"{path}: swapped symbols accepted"
