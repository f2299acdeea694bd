"""Sphinx configuration: MyST markdown and notebooks (MyST-NB), MathJax served from the package
(no CDN)."""

import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen_pages  # noqa: E402
import gen_sections  # noqa: E402

project = "Understanding Diffusion Models, verified"
author = "the udm developers"
copyright = "2026, the udm developers (code: MIT); the paper: Calvin Luo, arXiv:2208.11970"
extensions = [
    "myst_nb",  # MyST markdown (it includes myst_parser) and the notebooks of docs/notebooks/
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",  # [source] links: every implementation's code, highlighted
]
# MathJax 3 from the sphinx-mathjax-offline wheel, copied next to the pages: no CDN.
# (That package's own module name has a hyphen and cannot be imported as an extension.)
MATHJAX_DIR = Path(
    metadata.distribution("sphinx-mathjax-offline").locate_file(
        "sphinx-mathjax-offline/static/mathjax"
    )
)
mathjax_path = "mathjax/tex-chtml.js"
myst_enable_extensions = ["dollarmath", "amsmath"]
source_suffix = {".md": "myst-nb", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
# The notebooks (docs/notebooks/<section>.md, MyST Markdown text with a kernelspec header)
# run on every build, in a fresh `python3` kernel (ipykernel), and any error in a cell fails
# the build, so no example can rot. Their kernel imports this checkout's packages.
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 120
# One thread each: the notebooks' tensors are small, and torch's thread pool only contends
# on a shared machine (a Langevin loop ran 9x slower with two threads on two busy cores).
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
)
os.environ.setdefault("OMP_NUM_THREADS", "1")
# sphinx-book-theme: made for scientific books (MathJax, a per-page table of contents in the
# right margin, i.e. one entry per equation, a full-screen button for projecting). Its
# fonts, icons and scripts ship in the wheel: nothing is loaded from the network.
html_theme = "sphinx_book_theme"
html_title = "udm: Understanding Diffusion Models, verified"
html_static_path = ["_static"]
html_css_files = ["udm.css"]
html_theme_options = {
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "use_download_button": False,
    "use_fullscreen_button": True,
    "show_navbar_depth": 1,
}
html_show_sourcelink = False
# The right-hand contents list the equations, not every function documented under them.
toc_object_entries = False
autodoc_default_options = {"members": False}
suppress_warnings = ["myst.header"]


def _copy_mathjax(app, exc):
    if exc is None and app.builder.format == "html":
        shutil.copytree(MATHJAX_DIR, Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True)


def _docstring_as_text(app, what, name, obj, options, lines):
    """Show hand-written docstrings as written: plain text with pseudo-math (x_{t-1},
    N(a_t x_t + c_t, var_theta), q(x_t | x_0)) that reStructuredText would misread."""
    if not name.startswith(("udm.reference.", "udm.torch_impl.", "udm.derivations.")) or not lines:
        return
    if name.startswith("udm.reference._generated.") or any(
        ":math:" in line or ".. math::" in line for line in lines
    ):
        return  # written as reStructuredText with real math (e.g. by derivations/codegen.py)
    text = [line.rstrip() for line in lines]
    while text and not text[-1]:
        text.pop()
    lines[:] = [".. code-block:: text", "   :class: docstring", ""]
    lines += [f"   {line}" if line else "" for line in text] + [""]


def setup(app):
    app.connect("autodoc-process-docstring", _docstring_as_text)
    here = Path(__file__).resolve().parent
    gen_sections.write_all(here / "sections")
    gen_pages.write_all(here)
    app.connect("build-finished", _copy_mathjax)
