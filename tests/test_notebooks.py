"""The notebooks: one per paper section, MyST text, executed by the docs build.

docs/notebooks/<section>.md is a MyST-NB text notebook (a jupytext header naming the
`python3` kernel, ```{code-cell} blocks). `sphinx-build` runs every one in a fresh kernel
(docs/conf.py: nb_execution_mode = "force", nb_execution_raise_on_error = True), so a
failing cell fails the docs build. Here each is also run in-process, cell after cell in one
namespace, so `pytest` alone catches a notebook that rots; and a section without a notebook
fails.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from udm import catalog

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "docs" / "notebooks"
CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)
HEADER = re.compile(r"\A---\n(.*?)\n---\n", re.S)


def code_cells(text: str) -> list[str]:
    """The code of each ```{code-cell}``` block (cell options `:key: value` dropped)."""
    return [
        "\n".join(line for line in body.splitlines() if not line.startswith(":"))
        for body in CELL.findall(text)
    ]


def _read(section: str) -> str:
    path = NOTEBOOKS / f"{section}.md"
    assert path.is_file(), f"section {section!r} has no notebook: write {path}"
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("section", catalog.SECTIONS)
def test_every_section_has_a_text_notebook(section):
    text = _read(section)
    header = HEADER.match(text)
    assert header, f"{section}.md: no YAML header (jupytext / kernelspec)"
    assert "format_name: myst" in header.group(1)
    assert re.search(r"kernelspec:\n(?:  .*\n)*  name: python3", header.group(1) + "\n")
    cells = code_cells(text)
    assert len(cells) >= 2, f"{section}.md: fewer than two code cells"
    code = "\n".join(cells)
    assert re.search(r"^\s*assert ", code, re.M), f"{section}.md checks nothing"
    assert "import udm.reference" in code, f"{section}.md: not through the reference layer"
    assert "torch_impl" in code, f"{section}.md: no torch_impl use"
    assert f"../sections/{section}.md" in text, f"{section}.md: no link to its section page"
    assert re.search(r"\{ref\}`[^`]*<eq-\d+>`", text), f"{section}.md cites no equation"


def test_notebooks_are_in_the_index_and_only_for_sections():
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    for section in catalog.SECTIONS:
        assert f"<notebooks/{section}>" in index, f"docs/index.md lists no notebook {section}"
    extra = {p.stem for p in NOTEBOOKS.glob("*.md")} - set(catalog.SECTIONS)
    assert not extra, f"notebooks for no section: {sorted(extra)}"


def test_the_docs_build_executes_the_notebooks_and_fails_on_an_error():
    conf = (ROOT / "docs" / "conf.py").read_text(encoding="utf-8")
    assert '"myst_nb"' in conf
    assert 'nb_execution_mode = "force"' in conf
    assert "nb_execution_raise_on_error = True" in conf


def test_notebook_code_fits_its_box():
    """76 characters: the width of a code box at 1280 px (as tests/test_docs.py)."""
    wide = [
        f"{section}.md: {line}"
        for section in catalog.SECTIONS
        for code in code_cells(_read(section))
        for line in code.splitlines()
        if len(line) > 76
    ]
    assert not wide, wide


@contextlib.contextmanager
def _quiet_one_thread():
    import matplotlib
    import torch

    backend, threads = matplotlib.get_backend(), torch.get_num_threads()
    matplotlib.use("Agg")
    torch.set_num_threads(1)
    try:
        yield
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")
        torch.set_num_threads(threads)
        with contextlib.suppress(Exception):
            matplotlib.use(backend)


@pytest.mark.parametrize("section", catalog.SECTIONS)
def test_notebook_runs(section, capsys):
    namespace: dict = {"__name__": "__notebook__"}
    with _quiet_one_thread():
        for i, code in enumerate(code_cells(_read(section)), 1):
            exec(compile(code, f"docs/notebooks/{section}.md, cell {i}", "exec"), namespace)
    assert capsys.readouterr().out.strip(), f"{section}.md printed nothing"


def test_the_notebook_kernel_is_installed():
    """ipykernel (in the `docs` extras) provides the `python3` kernel the notebooks name."""
    pytest.importorskip("myst_nb", reason="the docs extras are not installed")
    from jupyter_client.kernelspec import KernelSpecManager

    assert "python3" in KernelSpecManager().find_kernel_specs()
