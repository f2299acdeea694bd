"""Sphinx configuration: MyST markdown, MathJax served from the package (no CDN)."""

import shutil
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen_sections  # noqa: E402

project = "Understanding Diffusion Models, verified"
author = "udm developers"
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
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
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
html_theme = "alabaster"
autodoc_default_options = {"members": False}
suppress_warnings = ["myst.header"]


def _copy_mathjax(app, exc):
    if exc is None and app.builder.format == "html":
        shutil.copytree(MATHJAX_DIR, Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True)


def setup(app):
    gen_sections.write_all(Path(__file__).resolve().parent / "sections")
    app.connect("build-finished", _copy_mathjax)
