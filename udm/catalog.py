"""The paper's equation catalog (udm/catalog.yaml): number -> section, LaTeX, role.

Beside the paper's numbered equations (int keys 1..170), udm/catalog_beyond.yaml holds
formulas from other papers under string keys such as 'ddim.12' (`load_beyond`); `get`,
`lookup` and `load_all` accept both kinds of key, `load` stays the paper's 170.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")
BEYOND_PATH = Path(__file__).with_name("catalog_beyond.yaml")

# Section modules in paper order: the same name in derivations/, reference/, torch_impl/,
# tests/test_<name>.py (vdm: tests/vdm/) and docs/sections/<name>.md.
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
# Section modules of formulas from other papers (udm/catalog_beyond.yaml), one per source paper.
BEYOND_SECTIONS = ("ddim", "vpred", "zt_snr", "iddpm", "sde")
KINDS = ("definition", "identity", "derivation-step", "bound", "objective", "algorithm")


@dataclass(frozen=True)
class Equation:
    number: int | str  # the paper's number, or a key of udm/catalog_beyond.yaml
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
    # formulas beyond the paper: the source paper and where the formula stands in it
    source: str | None = None
    source_eq: str | None = None
    aliases: tuple[str, ...] = ()


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


@functools.cache
def load_beyond() -> dict[str, Equation]:
    """Formulas from other papers keyed by their string key, e.g. 'ddim.12' (read once)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with BEYOND_PATH.open(encoding="utf-8") as fh:
        raw = yaml.load(fh, Loader=loader)
    eqs = {}
    for item in raw:
        key = item.pop("key")
        if not isinstance(key, str) or key.isdigit() or key in eqs:
            raise ValueError(f"{BEYOND_PATH.name}: bad or repeated key {key!r}")
        if item["module"] not in BEYOND_SECTIONS:
            raise ValueError(f"{BEYOND_PATH.name}: {key}: unknown module {item['module']!r}")
        eqs[key] = Equation(
            number=key,
            module=item["module"],
            section=item["source"],
            subsection=item["source_eq"],
            latex=item["latex"],
            kind=item["kind"],
            role=item["role"],
            depends_on=tuple(item.get("depends_on") or ()),
            confidence=item["confidence"],
            source=item["source"],
            source_eq=item["source_eq"],
            aliases=tuple(item.get("aliases") or ()),
        )
    return eqs


def load_all() -> dict[int | str, Equation]:
    """The paper's equations and the formulas beyond it, in one mapping."""
    return {**load(), **load_beyond()}


def is_beyond(key) -> bool:
    """True for a key of udm/catalog_beyond.yaml (a string), False for the paper's numbers."""
    return isinstance(key, str) and key in load_beyond()


def lookup(text: str) -> int | str:
    """The catalog key that `text` names: '85' -> 85, 'ddim.12' -> 'ddim.12', an alias -> its
    key; KeyError (naming both ranges) when it names nothing."""
    text = text.strip()
    if text.isdigit() and int(text) in load():
        return int(text)
    beyond = load_beyond()
    if text in beyond:
        return text
    for key, eq in beyond.items():
        if text in eq.aliases:
            return key
    raise KeyError(
        f"{text!r} is not in the catalog (the paper: 1..{max(load())}; "
        f"beyond it: {', '.join(beyond)})"
    )


def get(number: int | str) -> Equation:
    """The catalog entry for equation `number` (or a beyond key); KeyError names the range."""
    eqs = load()
    if isinstance(number, str) and number in load_beyond():
        return load_beyond()[number]
    if number not in eqs:
        raise KeyError(f"equation {number} is not in the catalog (valid: 1..{max(eqs)})")
    return eqs[number]


def section_title(module: str) -> str:
    """Human title of a section module, e.g. 'vdm' -> 'Variational Diffusion Models'."""
    for eq in load_beyond().values():
        if eq.module == module:
            return re.sub(r"^.*?\d{4}, | \(arXiv:.*$", "", eq.source)
    for eq in load().values():
        if eq.module == module:
            return eq.section if module not in ("elbo", "vae", "hvae") else eq.subsection
    raise KeyError(f"unknown section {module!r}; valid: {', '.join(SECTIONS)}")


def numbers_in(module: str) -> list[int | str]:
    if module in BEYOND_SECTIONS:
        return [k for k, eq in load_beyond().items() if eq.module == module]
    return [n for n, eq in load().items() if eq.module == module]
