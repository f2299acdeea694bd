"""Write the docs pages that hold executed code or generated tables (run by docs/conf.py).

* notation.md: from udm/notation.py (committed too, so README can link it; tests/test_docs.py
  checks it is current);
* pytorch.md: the PyTorch worked examples of examples.TORCH_EXAMPLES, each run and shown
  with what it printed;
* derivation_tutorial.md: examples.TUTORIAL's cells, run in order in one namespace.

Nothing printed on these pages was typed by hand: the code runs on every build.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from examples import TORCH_EXAMPLES, TUTORIAL
from gen_sections import link_citations, output_block

from udm import notation


@contextlib.contextmanager
def _one_thread():
    """Examples are timed for one core: torch's default thread pool only contends on a
    shared machine."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_cells(cells: list[str]) -> list[str]:
    """Execute code cells in order in one namespace; return what each printed."""
    namespace: dict = {"__name__": "__docs_example__"}
    outputs = []
    with _one_thread():
        for code in cells:
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                exec(compile(code, "<docs example>", "exec"), namespace)
            outputs.append(buffer.getvalue())
    return outputs


def _code_and_output(code: str, printed: str) -> list[str]:
    return [
        "```python",
        code.rstrip(),
        "```",
        "",
        "prints",
        "",
        *output_block(printed),
    ]


def pytorch_page() -> str:
    lines = [
        "# The PyTorch layer, worked",
        "",
        "Three short programs that use `torch_impl` the way a training script does. Each is "
        "executed when the docs are built (and by `tests/test_docs.py`), and what it printed "
        "is shown below it. Function names and keyword arguments follow the "
        "[notation](notation.md); equation numbers link to their section pages.",
        "",
    ]
    for anchor, title, text, code in TORCH_EXAMPLES:
        (printed,) = run_cells([code])
        lines += [f"({anchor})=", f"## {title}", "", link_citations(text), ""]
        lines += _code_and_output(code, printed)
    return "\n".join(lines)


def tutorial_page() -> str:
    lines = [
        "# Write your own derivation",
        "",
        "The derivation engine (`derivations/core.py`) checks a derivation line by line. "
        "This page writes one in a few lines of Python, then breaks it on purpose to show "
        "what the engine says. The cells run in order when the docs are built.",
        "",
    ]
    outputs = run_cells([code for _, code in TUTORIAL])
    for (text, code), printed in zip(TUTORIAL, outputs, strict=True):
        lines += [link_citations(text), "", *_code_and_output(code, printed)]
    lines += [
        "## Making it part of the project",
        "",
        "Put the function in `derivations/<section>.py`, decorate it with "
        "`@register(N, status=...)` (N: the paper's equation number, cited in the docstring "
        "as `eq. (N)`) and give closed forms the reference layer needs in `results=`; "
        "`udm verify N` then checks it, `udm generate` writes the NumPy function, and "
        "`udm eq N` shows it. README's *Adding an equation* lists the four steps.",
        "",
    ]
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def write_all(docs: Path) -> None:
    _write(docs / "notation.md", notation.markdown())
    _write(docs / "pytorch.md", pytorch_page())
    _write(docs / "derivation_tutorial.md", tutorial_page())
