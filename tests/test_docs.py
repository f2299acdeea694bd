"""The docs: every worked example runs, every section page lists all of its equations."""

import sys
from pathlib import Path

import pytest

from udm import catalog

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


def test_figures_exist():
    for name, _ in examples.FIGURES.values():
        assert (Path(gen_sections.__file__).parent / "_static" / name).is_file()
