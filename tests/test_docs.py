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
