"""Write docs/sections/<section>.md from the registry: one page per paper section.

Each equation: its LaTeX (from the catalog), role, status, the derivation steps rendered
from the SymPy objects, the implementing functions (autodoc) and the tests that check it.
"""

from __future__ import annotations

import contextlib
import importlib
import io
from pathlib import Path

from examples import EXAMPLES, FIGURES

from udm import catalog, registry


def _derivation_md(path: str, shown: set[str]) -> list[str]:
    if path in shown:
        return [f"Derivation: see `{path}` above.", ""]
    shown.add(path)
    from derivations.symbols import tex

    module, name = path.rsplit(".", 1)
    d = getattr(importlib.import_module(module), name)()
    family = f" (on {d.family})" if d.family else ""
    lines = [f"Derivation `{path}`: {d.title}{family}", "", "$$", r"\begin{aligned}"]
    for i, s in enumerate(d.steps):
        rel = "" if i == 0 else s.latex_relation()
        label = rf"\quad ({s.eq})" if s.eq else ""
        rule = rf"&& \text{{[{s.rule}]}}"
        lines.append(rf"&{rel} {tex(s.expr)} {label} {rule} \\")
    lines += [r"\end{aligned}", "$$", ""]
    return lines


def render(section: str) -> str:
    index = registry.index()
    title = catalog.section_title(section)
    lines = [
        f"# {title}",
        "",
        f"Equations of section `{section}`, generated from the registry.",
        "",
    ]
    lines += worked_example(section)
    if section in FIGURES:
        name, caption = FIGURES[section]
        lines += [f"![{caption}](../_static/{name})", "", f"*{caption}.*", ""]
    shown: set[str] = set()
    for n in catalog.numbers_in(section):
        eq, record = catalog.get(n), index[n]
        lines += [
            f"## Eq. ({n})",
            "",
            "$$",
            eq.latex,
            "$$",
            "",
        ]
        if eq.erratum:  # the corrected statement beside the paper's line
            lines += [
                "Erratum (the status is for this corrected statement):",
                "",
                "$$",
                eq.erratum["statement"],
                "$$",
                "",
                f"*{eq.erratum['reason']}.*",
                "",
            ]
        lines += [
            f"*{eq.role}* ({eq.kind}). Status: **{record.status}** ({record.why}).",
            "",
        ]
        for impl in record.implementations["derivations"]:
            lines += _derivation_md(impl.path, shown)
        for layer in ("reference", "torch_impl"):
            for impl in record.implementations[layer]:
                lines += [
                    "```{eval-rst}",
                    f".. autofunction:: {impl.path}",
                    "   :no-index:",
                    "```",
                    "",
                ]
        if record.tests:
            lines += ["Tests:", ""] + [f"- `{t}`" for t in record.tests] + [""]
    return "\n".join(lines)


def run_example(code: str) -> str:
    """Execute a worked example and return what it printed."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exec(code, {})
    return buffer.getvalue()


def worked_example(section: str) -> list[str]:
    if section not in EXAMPLES:
        return []
    code = EXAMPLES[section]
    return [
        "## Worked example",
        "",
        "```python",
        code.rstrip(),
        "```",
        "",
        "prints",
        "",
        "```text",
        run_example(code).rstrip(),
        "```",
        "",
    ]


def write_all(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for section in catalog.SECTIONS:
        path = out_dir / f"{section}.md"
        text = render(section)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
