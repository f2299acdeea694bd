"""The docs: every worked example runs, every section page lists all of its equations."""

import sys
from pathlib import Path

import pytest

from udm import catalog, registry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "docs"))

import examples
import gen_sections


@pytest.mark.parametrize("section", catalog.SECTIONS)
def test_worked_example_runs_and_prints(section):
    assert gen_sections.run_example(examples.EXAMPLES[section]).strip()


@pytest.mark.parametrize("section", catalog.SECTIONS)
def test_section_page_lists_every_equation(section):
    page = gen_sections.render(section)
    for n in catalog.numbers_in(section):
        assert f"## Eq. ({n})" in page
    assert "## Worked example" in page


@pytest.mark.parametrize("section", ["interpretations", "score"])
def test_section_page_shows_computed_status_and_errata(section):
    """The docs show the status `udm verify` computed, and each erratum beside the paper's line."""
    page = gen_sections.render(section)
    computed = registry.computed_statuses()
    for n in catalog.numbers_in(section):
        block = page.split(f"## Eq. ({n})\n", 1)[1].split("## Eq. (", 1)[0]
        assert f"Status: **{computed[n]['status']}** ({computed[n]['why']})" in block
        erratum = catalog.get(n).erratum
        assert (erratum is not None) == ("Erratum" in block)
        if erratum:
            assert erratum["statement"] in block and erratum["reason"] in block


def test_figures_exist():
    for name, _ in examples.FIGURES.values():
        assert (Path(gen_sections.__file__).parent / "_static" / name).is_file()


ROOT = Path(__file__).resolve().parent.parent


def test_notation_page_is_generated_from_the_one_table():
    """docs/notation.md is udm/notation.py rendered (docs/conf.py rewrites it on a build)."""
    from udm import notation

    page = (ROOT / "docs" / "notation.md").read_text(encoding="utf-8")
    assert page == notation.markdown(), "run the docs build (or gen_pages.write_all) and commit"
    for _, names, _ in notation.ROWS:
        assert names in page


def test_readme_links_the_notation_inside_the_repository():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/notation.md" in readme
    assert "shared/NOTATION" not in readme


@pytest.mark.parametrize("anchor", [e[0] for e in examples.TORCH_EXAMPLES])
def test_pytorch_examples_run(anchor):
    import gen_pages

    (code,) = [e[3] for e in examples.TORCH_EXAMPLES if e[0] == anchor]
    (printed,) = gen_pages.run_cells([code])
    assert printed.strip()


def test_derivation_tutorial_right_then_wrong():
    import gen_pages

    right, wrong = gen_pages.run_cells([code for _, code in examples.TUTORIAL])
    assert "2 algebra proved by" in right
    assert "step 2 [algebra] differs by" in wrong


def test_section_pages_anchor_every_equation_and_link_repeats():
    pages = {s: gen_sections.render(s) for s in catalog.SECTIONS}
    for section, page in pages.items():
        for n in catalog.numbers_in(section):
            assert f"(eq-{n})=\n## Eq. ({n})" in page
        assert "see `" not in page  # repeats are links, not "see ... above"
    assert "<details" in pages["vdm"]  # the very long machine lines are collapsed


def test_pretty_tex_and_citation_links():
    assert gen_sections.pretty_tex(r"var_{\theta 1} + var_{q2}^{2}") == (
        r"{\sigma^2_{\theta,\mathrm{1}}} + {\sigma^2_{q2}}^{2}"  # braced: no double exponent
    )
    linked = gen_sections.link_citations("see eqs. (84), (85) and eq. (999)")
    assert "{ref}`eqs. (84) <eq-84>`" in linked and "{ref}`(85) <eq-85>`" in linked
    assert "eq. (999)" in linked  # not an equation of the paper: left as text


def test_example_code_fits_its_box():
    """76 characters: the width of a code box at 1280 px; wider lines were cut off."""
    codes = list(examples.EXAMPLES.values())
    codes += [e[3] for e in examples.TORCH_EXAMPLES] + [c for _, c in examples.TUTORIAL]
    wide = [line for code in codes for line in code.splitlines() if len(line) > 76]
    assert not wide, wide


def test_landing_page_gives_readmes_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    for command in (
        "pip install torch==2.13.0 -e . && udm verify",
        "pip install torch==2.13.0 -e '.[test]' && python -m pytest",
    ):
        assert command in readme and command in index


@pytest.mark.parametrize("section", catalog.BEYOND_SECTIONS)
def test_beyond_page_lists_every_formula_with_its_source(section):
    """One page per source paper: every key, its place in the source, its computed status."""
    page = gen_sections.render(section)
    computed = registry.computed_beyond_statuses()
    for key in catalog.numbers_in(section):
        entry = catalog.get(key)
        assert f"## {key}: {entry.source_eq}\n" in page
        assert f"({gen_sections.anchor(key)})=" in page
        block = page.split(f"## {key}: ", 1)[1].split("\n## ", 1)[0]
        assert f"Status: **{computed[key]['status']}** ({computed[key]['why']})" in block
    assert entry.source in page
