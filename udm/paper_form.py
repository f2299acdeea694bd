"""A derivation's numbered lines, shown as the paper prints them.

SymPy evaluates an expression as it is built, so a derivation's consecutive lines often
collapse into one canonical form: eqs. (39)-(43) regroup logs that SymPy flattens into the
same sum. The engine still proves each step from its predecessor; what is lost is the
reader's view. So each numbered step is shown in the paper's form wherever that form is
proved equal to it:

    line N as shown  =  the paper's line N, read with nothing evaluated
                        (`latex_reader.held_right_side`),
    proved equal to the step's expression by `udm/printed_match.py` (verdict True),
    which the engine proved from the step before by its rule.

Where there is no such proof (verdict False or None), the machine's line is shown as SymPy
writes it. `repeats()` lists the numbered lines that would still read identical to the line
before while the paper's two lines differ; the test suite requires none.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from udm import catalog, status
from udm import latex_reader as reader


@dataclass(frozen=True)
class Line:
    """One step of a derivation as shown: `form` is 'paper' or 'machine'."""

    step: object  # udm.derivations.core.Step
    latex: str
    form: str
    how: str  # for 'paper': how the printed line was proved equal to the step


def _paper_form(number: int, path: str, verdicts: dict) -> tuple[str, str] | None:
    record = verdicts.get(number)
    if not record or record["printed_match"] is not True or record["derivation"] != path:
        return None
    held = reader.held_right_side(number)
    return None if held is None else (reader.held_latex(held), record["reason"])


def lines(path: str, derivation, verdicts: dict | None = None) -> list[Line]:
    """The derivation's steps as shown (see the module docstring)."""
    from udm.derivations.symbols import tex

    verdicts = status.load_printed() if verdicts is None else verdicts
    out = []
    for step in derivation.steps:
        paper = _paper_form(step.eq, path, verdicts) if step.eq else None
        if paper is not None:
            out.append(Line(step, paper[0], "paper", paper[1]))
        else:
            out.append(Line(step, tex(step.expr), "machine", ""))
    return out


def _printed(number: int | None) -> str | None:
    """The paper's right side, read with nothing evaluated and printed again: markup such as
    \\cancel or \\underbrace, which the reader drops, does not make two lines differ."""
    if number is None:
        return None
    held = reader.held_right_side(number)
    return reader.held_latex(held) if held is not None else catalog.get(number).latex


def repeats(derivations: dict, verdicts: dict | None = None) -> list[tuple[str, int | None, int]]:
    """(path, previous line's number, number) for each numbered line that is shown identical
    to its predecessor while the paper's two lines differ. `derivations`: {path: Derivation}."""
    out = []
    for path, derivation in derivations.items():
        shown = lines(path, derivation, verdicts)
        for before, line in itertools.pairwise(shown):
            if not line.step.eq or line.latex != before.latex:
                continue
            same_paper = _printed(before.step.eq) == _printed(line.step.eq)
            if not same_paper:
                out.append((path, before.step.eq, line.step.eq))
    return out
