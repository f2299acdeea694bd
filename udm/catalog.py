"""The paper's equation catalog (udm/catalog.yaml): number -> section, LaTeX, role."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")

# Section modules in paper order: the same name in derivations/, reference/, torch_impl/,
# tests/test_<name>.py and docs/sections/<name>.md.
SECTIONS = (
    "elbo",
    "vae",
    "hvae",
    "vdm",
    "noise_params",
    "interpretations",
    "score",
    "guidance",
)
KINDS = ("definition", "identity", "derivation-step", "bound", "objective", "algorithm")


@dataclass(frozen=True)
class Equation:
    number: int
    module: str
    section: str
    subsection: str | None
    latex: str
    kind: str
    role: str
    depends_on: tuple[int, ...]
    confidence: str
    # where the paper's line is wrong: {"statement": corrected LaTeX, "reason": one line};
    # the computed status describes the corrected statement
    erratum: dict | None = None


@functools.cache
def load() -> dict[int, Equation]:
    """All catalogued equations keyed by number (read once per process)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with CATALOG_PATH.open(encoding="utf-8") as fh:
        raw = yaml.load(fh, Loader=loader)
    eqs = {}
    for item in raw:
        item["depends_on"] = tuple(item.get("depends_on") or ())
        eq = Equation(**item)
        eqs[eq.number] = eq
    return eqs


def get(number: int) -> Equation:
    """The catalog entry for equation `number`; KeyError names the valid range."""
    eqs = load()
    if number not in eqs:
        raise KeyError(f"equation {number} is not in the catalog (valid: 1..{max(eqs)})")
    return eqs[number]


def section_title(module: str) -> str:
    """Human title of a section module, e.g. 'vdm' -> 'Variational Diffusion Models'."""
    for eq in load().values():
        if eq.module == module:
            return eq.section if module not in ("elbo", "vae", "hvae") else eq.subsection
    raise KeyError(f"unknown section {module!r}; valid: {', '.join(SECTIONS)}")


def numbers_in(module: str) -> list[int]:
    return [n for n, eq in load().items() if eq.module == module]
