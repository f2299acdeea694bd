"""Write docs/sections/<section>.md from the registry: one page per paper section.

Each equation: an anchor (`#eq-85`), its LaTeX (from the catalog), role, status, the
derivation steps rendered from the SymPy objects, the implementing functions (autodoc, with
[source] links from sphinx.ext.viewcode) and the tests that check it, the most direct first.

Presentation only: long displays scroll inside their own box (docs/_static/udm.css) and
derivations with very long machine lines are shown collapsed in a <details> element, so no
page is wider than the window.
"""

from __future__ import annotations

import contextlib
import functools
import html
import importlib
import io
import re
from pathlib import Path

from examples import EXAMPLES, FIGURES

from udm import catalog, paper_form, registry, status

# A derivation whose LaTeX is longer than this (characters, longest line or all lines
# together) is shown collapsed: SymPy's expanded forms run to thousands of characters.
LONG_LINE, LONG_TOTAL = 300, 2500


def anchor(n: int | str) -> str:
    """The label (and HTML id) of equation n: `eq-85`; of a formula beyond the paper: `ddim-12`."""
    return n.replace(".", "-").replace("_", "-") if isinstance(n, str) else f"eq-{n}"


def eq_ref(n: int | str, text: str | None = None) -> str:
    """A MyST cross-reference to equation n (or a beyond key), on whichever page it is."""
    shown = n if isinstance(n, str) else f"eq. ({n})"
    return f"{{ref}}`{text or shown} <{anchor(n)}>`"


def heading(n: int | str) -> str:
    """An equation's heading: 'Eq. (85)', or 'ddim.12: eq. (12) of the source'."""
    if isinstance(n, str):
        return f"{n}: {catalog.get(n).source_eq}"
    return f"Eq. ({n})"


_EQ_CITE = re.compile(r"\b(eqs?\.) \((\d+)\)((?:(?:,| and|-) \(\d+\))*)")


def link_citations(text: str) -> str:
    """Turn `eq. (84)` / `eqs. (84), (85)` in prose into links to the equations' anchors."""
    known = set(catalog.load())

    def one(m: re.Match) -> str:
        def link(num: str, shown: str) -> str:
            return eq_ref(int(num), shown) if int(num) in known else shown

        head = link(m.group(2), f"{m.group(1)} ({m.group(2)})")
        rest = re.sub(r"\((\d+)\)", lambda k: link(k.group(1), f"({k.group(1)})"), m.group(3))
        return head + rest

    return _EQ_CITE.sub(one, text)


_VAR = re.compile(r"(?<![\\A-Za-z])var_\{([^{}]*)\}")


def pretty_tex(latex: str) -> str:
    """Typeset names the symbol table leaves as words: var_{theta 1} -> sigma^2_{theta,1}."""

    def var(m: re.Match) -> str:
        sub = re.sub(r"(\\[A-Za-z]+) (\w+)", r"\1,\\mathrm{\2}", m.group(1))
        return rf"{{\sigma^2_{{{sub}}}}}"  # braced: a power of it is no double exponent

    return _VAR.sub(var, latex)


def _math_block(tex_lines: list[str]) -> list[str]:
    return ["$$", *tex_lines, "$$", ""]


def _collapsed(summary: str, tex_lines: list[str]) -> list[str]:
    """A <details> element holding one display (raw HTML: MathJax typesets class="math")."""
    body = html.escape("\n".join(tex_lines), quote=False)
    return [
        '<details class="derivation">',
        f"<summary>{summary}</summary>",
        '<div class="math notranslate nohighlight">',
        "\\[",
        body,
        "\\]",
        "</div>",
        "</details>",
        "",
    ]


def _derivation_md(path: str, shown: dict[str, int], n: int) -> list[str]:
    if path in shown:
        first = shown[path]
        return [f"Derivation: `{path}`, shown under {eq_ref(first)} above.", ""]
    shown[path] = n
    d = _built(path)
    family = f" (on `{d.family}`)" if d.family else ""
    body = []
    for i, line in enumerate(paper_form.lines(path, d)):
        s = line.step
        rel = "" if i == 0 else s.latex_relation()
        # rule and paper number on the left, where they stay visible however long the line
        label = f"({s.eq}) " if s.eq else ""
        rule = rf"\text{{{label}[{s.rule}]}} \quad"
        body.append(pretty_tex(rf"{rule} &{rel} {line.latex} \\"))
    tex_lines = [r"\begin{aligned}", *body, r"\end{aligned}"]
    longest, total = max(len(b) for b in body), sum(len(b) for b in body)
    rules = ", ".join(dict.fromkeys(s.rule for s in d.steps))
    head = f"Derivation `{path}`: {link_citations(d.title)}{family}. Rules: {rules}."
    if longest > LONG_LINE or total > LONG_TOTAL:
        summary = (
            f"Show the machine's {len(d.steps)} lines (the paper's form where proved equal, "
            "else SymPy's expanded form, up to "
            f"{longest:,} characters of LaTeX a line; the box scrolls sideways)"
        )
        return [head, "", *_collapsed(summary, tex_lines)]
    return [head, "", *_math_block(tex_lines)]


VERDICT = {True: "matched", False: "differs", None: "not compared"}


@functools.cache
def _built(path: str):
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)()


def _machine_md(n: int, paths: list[str]) -> list[str]:
    """Each derivation line numbered n: its rule, why, and the line itself (in the paper's
    form where proved equal; SymPy's form when short; else a pointer to the derivation)."""
    out = []
    for path in paths:
        d = _built(path)
        for line in paper_form.lines(path, d):
            if line.step.eq != n:
                continue
            step = line.step
            why = link_citations(step.why.replace("see `", "by `"))  # names, not "see ..."
            head = f"Machine's line, rule `{step.rule}`" + (f" ({why})" if why else "")
            if line.form == "paper":
                out += [head + ", in the paper's form:", ""]
            elif len(line.latex) <= LONG_LINE:
                out += [head + ":", ""]
            else:
                out += [
                    f"{head}: SymPy's form, {len(line.latex):,} characters, in the derivation's box.",
                    "",
                ]
                continue
            out += _math_block([pretty_tex(f"{step.latex_relation()} {line.latex}")])
    return out


def _printed_md(n: int, paths: list[str]) -> list[str]:
    """The machine's lines numbered n, and the check of the paper's line against them."""
    ok, reason = status.printed(n)
    if ok is False and "catalog's erratum" in reason:  # the erratum is shown above in full
        reason = "the derivation proves the erratum above, not the printed line"
    verdict = f"Paper's line against the machine's: **{VERDICT[ok]}** ({link_citations(reason)})."
    return [*_machine_md(n, paths), verdict, ""]


SHOWN_TESTS = 5  # the rest of an equation's tests are listed collapsed


def _more_tests(tests: list[str]) -> list[str]:
    if not tests:
        return []
    items = "".join(f"<li><code>{html.escape(t)}</code></li>" for t in tests)
    return [
        f'<details class="tests"><summary>{len(tests)} more tests</summary>'
        f"<ul>{items}</ul></details>",
        "",
    ]


def _ordered_tests(section: str, tests: list[str], index) -> list[str]:
    """The most direct tests first: those of this section's test file (or folder), then those
    that check the fewest equations."""
    width: dict[str, int] = {}
    for record in index.values():
        for t in record.tests:
            width[t] = width.get(t, 0) + 1
    own = (f"tests/test_{section}.py::", f"tests/{section}/")
    return sorted(tests, key=lambda t: (not t.startswith(own), width.get(t, 0)))


def first_listings() -> dict[str, int]:
    """Implementation path -> the equation under which it is described in full (the first
    that lists it, in the paper's order); later equations link there."""
    index, out = registry.index(), {}
    for section in (*catalog.SECTIONS, *catalog.BEYOND_SECTIONS):
        for n in catalog.numbers_in(section):
            for layer in ("reference", "torch_impl"):
                for impl in index[n].implementations[layer]:
                    out.setdefault(impl.path, n)
    return out


def _implementation_md(path: str, section: str, n: int, first: dict[str, int]) -> list[str]:
    """The signature, docstring and [source] link, once; elsewhere a link to that entry."""
    if first.get(path, n) != n:
        return [f"- {{py:obj}}`{path}`: described under {eq_ref(first[path])}.", ""]
    return ["```{eval-rst}", f".. autofunction:: {path}", "```", ""]


def render(section: str) -> str:
    index = registry.index()
    title = catalog.section_title(section)
    beyond = section in catalog.BEYOND_SECTIONS
    intro = (
        f"Equations of section `{section}`, generated from the registry. "
        f"Its [notebook](../notebooks/{section}.md) evaluates the key equations and checks "
        "them against an independent computation; it runs on every docs build."
    )
    if beyond:
        source = catalog.get(catalog.numbers_in(section)[0]).source
        intro = (
            f"Formulas from {source}, beyond Luo 2022, with the same chain: catalog "
            f"(`udm/catalog_beyond.yaml`), derivation, generated reference, torch, tests. "
            f"Keys like `{catalog.numbers_in(section)[0]}` work as `udm eq "
            f"{catalog.numbers_in(section)[0]}`; notation is this project's (alpha_bar_t is "
            f"the source's alpha_t where it writes so); equation numbers in the text below "
            f"are the source's."
        )
    lines = [f"# {title}", "", intro, ""]
    lines += worked_example(section)
    if section in FIGURES:
        name, caption = FIGURES[section]
        lines += [f"![{caption}](../_static/{name})", "", f"*{caption}.*", ""]
    shown: dict[str, int] = {}
    first = first_listings()
    for n in catalog.numbers_in(section):
        eq, record = catalog.get(n), index[n]
        lines += [
            f"({anchor(n)})=",
            f"## {heading(n)}",
            "",
            *_math_block([eq.latex]),
        ]
        if eq.erratum:  # the corrected statement beside the paper's line
            lines += [
                "Erratum (the status is for this corrected statement):",
                "",
                *_math_block([eq.erratum["statement"]]),
                f"*{eq.erratum['reason']}.*",
                "",
            ]
        lines += [
            f"*{eq.role if beyond else link_citations(eq.role)}* ({eq.kind}). "
            f"Status: **{record.status}** ({record.why}).",
            "",
            *_printed_md(n, [i.path for i in record.implementations["derivations"]]),
        ]
        for impl in record.implementations["derivations"]:
            lines += _derivation_md(impl.path, shown, n)
        for layer in ("reference", "torch_impl"):
            for impl in record.implementations[layer]:
                lines += _implementation_md(impl.path, section, n, first)
        if record.tests:
            tests = _ordered_tests(section, record.tests, index)
            lines += ["Tests (the most direct first):", ""]
            lines += [f"- `{t}`" for t in tests[:SHOWN_TESTS]] + [""]
            lines += _more_tests(tests[SHOWN_TESTS:])
    return "\n".join(lines)


def run_example(code: str) -> str:
    """Execute a worked example and return what it printed."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exec(code, {})
    return buffer.getvalue()


def output_block(printed: str) -> list[str]:
    """What an example printed: a text block that wraps (class `output`, docs/_static/udm.css)."""
    return ["```{code-block} text", ":class: output", "", printed.rstrip(), "```", ""]


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
        *output_block(run_example(code)),
    ]


def write_all(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for section in (*catalog.SECTIONS, *catalog.BEYOND_SECTIONS):
        path = out_dir / f"{section}.md"
        text = render(section)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
