"""Generate reference/_generated/<section>.py from the closed forms of the derivations.

Run `udm generate` (or `python -m udm.derivations.codegen`) after editing a derivation; the
test suite and `udm verify` fail while a generated file is out of date.
"""

from __future__ import annotations

import importlib
import textwrap
from pathlib import Path

from sympy.printing.numpy import NumPyPrinter

from udm import catalog, registry
from udm.derivations.core import ClosedForm, Derivation
from udm.derivations.symbols import tex

GENERATED_DIR = Path(__file__).resolve().parent.parent / "reference" / "_generated"
DOMAIN_WORDS = {
    "real": "real",
    "positive": "> 0",
    "unit": "in (0, 1]",
    "open_unit": "in (0, 1)",
    "negative": "< 0",
    "nonpositive": "<= 0",
    "closed_unit": "in [0, 1]",
}


def derivations_of(section: str) -> list[tuple[str, Derivation]]:
    """(dotted path, built Derivation) of every registered derivation in a section module."""
    try:
        module = importlib.import_module(f"udm.derivations.{section}")
    except ModuleNotFoundError:
        return []
    out = []
    for reg in registry.runtime_registrations():
        if reg.layer == "derivations" and reg.path.startswith(module.__name__ + "."):
            builder = getattr(module, reg.path.rsplit(".", 1)[1])
            out.append((reg.path, builder()))
    return out


def closed_forms(section: str) -> list[tuple[str, ClosedForm]]:
    return [(path, cf) for path, d in derivations_of(section) for cf in d.results]


def _function_source(source: str, cf: ClosedForm) -> str:
    printer = NumPyPrinter({"fully_qualified_modules": True})
    body = printer.doprint(cf.expr)
    eqs = ", ".join(repr(n) for n in cf.equations)
    numbers = [n for n in cf.equations if isinstance(n, int)]
    keys = [n for n in cf.equations if isinstance(n, str)]  # formulas beyond the paper
    cites = ", ".join(f"({n})" for n in numbers)
    cites = f"eq{'s' if len(numbers) > 1 else ''}. {cites}" if numbers else ""
    cites = "; ".join(c for c in (cites, ", ".join(keys)) if c)
    domains = ", ".join(f"{a} {DOMAIN_WORDS[cf.domains[a]]}" for a in cf.args)
    lhs = f"{cf.lhs} = " if cf.lhs else ""
    doc = textwrap.dedent(f"""\
        {cf.summary}, {cites}.

        .. math:: {lhs}{tex(cf.expr)}

        Domains: {domains}. Arguments broadcast; float64 NumPy in and out.
        Generated from ``{source}``.""")
    conversions = "\n".join(f'    {a} = as_float64("{a}", {a}, "{cf.domains[a]}")' for a in cf.args)
    broadcast = ", ".join(f"{a}={a}" for a in cf.args)
    signature = ", ".join(f"{a}={cf.defaults[a]!r}" if a in cf.defaults else a for a in cf.args)
    doc = textwrap.indent(doc, "    ").lstrip()
    return (
        f"@register({eqs})\n"
        f"def {cf.name}(*, {signature}):\n"
        f'    r"""{doc}\n    """\n'
        f"{conversions}\n"
        f"    check_broadcast({broadcast})\n"
        f"    return {body}\n"
    )


def render(section: str, built: list | None = None) -> str | None:
    """Source text of reference/_generated/<section>.py, or None if nothing to generate.

    `built` is derivations_of(section) when the caller has it already (saves rebuilding)."""
    built = derivations_of(section) if built is None else built
    forms = [(path, cf) for path, d in built for cf in d.results]
    if not forms:
        return None
    names = [cf.name for _, cf in forms]
    bodies = [_function_source(src, cf) for src, cf in forms]
    # numerically stable routines (udm.derivations._stable) print as udm.reference._stable calls
    stable = "from udm.reference import _stable\n" if any("_stable." in b for b in bodies) else ""
    header = (
        f'"""{catalog.section_title(section)}: closed forms generated from derivations/{section}.py.\n\n'
        "Do not edit: run `udm generate`. Each function is the SymPy result printed as NumPy.\n"
        '"""\n\n'
        "import numpy\n\n"
        f"{stable}"
        "from udm.reference._args import as_float64, check_broadcast\n"
        "from udm import register\n\n"
        f"__all__ = {names!r}\n"
    )
    return header + "".join(f"\n\n{body}" for body in bodies)


def generate(write: bool = True) -> dict[str, bool]:
    """Regenerate every section; return {file: changed}. With write=False only compare."""
    changed = {}
    for section in (*catalog.SECTIONS, *catalog.BEYOND_SECTIONS):
        text = render(section)
        if text is None:
            continue
        path = GENERATED_DIR / f"{section}.py"
        old = path.read_text(encoding="utf-8") if path.exists() else None
        changed[str(path)] = old != text
        if write and old != text:
            path.write_text(text, encoding="utf-8")
    return changed


if __name__ == "__main__":
    for file, was_changed in generate().items():
        print(("updated " if was_changed else "unchanged ") + file)
