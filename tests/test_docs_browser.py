"""The built docs as a reader sees them: every page in headless Chromium, offline, at 1280 px.

Each page of docs/_build/html (or $UDM_DOCS_HTML) is loaded from file with the network off
(any request that is not file:// is refused and reported) and checked for:

* MathJax error nodes (`mjx-merror`) once MathJax has finished typesetting;
* raw TeX left in the text (`$$`, `\\(`, `\\[`, `\\begin{`), outside code blocks;
* horizontal overflow at a 1280 x 800 window: document scrollWidth <= clientWidth;
* links: every internal link's file exists and its #anchor is an id in that file;
* JavaScript errors thrown by the page.

Screenshots of the index, the VDM section page at eq. (85) and the first benchmark table are
written to docs/_build/screenshots/ (next to the html folder) for a person to look at.

Needs Debian's chromium (/usr/bin/chromium, or $CHROMIUM) and the `playwright` package
(`pip install -e '.[docs]'`); Playwright drives that binary, it downloads no browser.
Build the docs first: `sphinx-build -W -b html docs docs/_build/html`. Without the docs,
Chromium or playwright the test is skipped, saying which; with UDM_REQUIRE_DOCS_BROWSER=1
(as .ci/run sets) it fails instead.
"""

from __future__ import annotations

import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTML = Path(os.environ.get("UDM_DOCS_HTML", ROOT / "docs" / "_build" / "html")).resolve()
SHOTS = HTML.parent / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
WIDTH, HEIGHT = 1280, 800
# page -> (file, what to scroll to first): the top, eq. (85), the first benchmark table
SCREENSHOTS = {
    "index.html": ("index.png", None),
    "sections/vdm.html": ("vdm_eq85.png", "#eq-85"),
    "benchmarks.html": ("benchmarks.png", "table"),
}
# Pages that are Sphinx's own machinery rather than content.
SKIP = {"search.html", "genindex.html", "py-modindex.html"}


def _pages() -> list[str]:
    if not (HTML / "index.html").is_file():
        return []
    return sorted(
        p.relative_to(HTML).as_posix()
        for p in HTML.rglob("*.html")
        if not p.relative_to(HTML).parts[0].startswith("_static")
        and p.relative_to(HTML).as_posix() not in SKIP
    )


PAGES = _pages()

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None

_MISSING = [
    reason
    for missing, reason in (
        (
            not PAGES,
            f"no built docs at {HTML} (run: sphinx-build -W -b html docs docs/_build/html)",
        ),
        (
            not Path(CHROMIUM).is_file(),
            f"no Chromium at {CHROMIUM} (apt-get install chromium, or set $CHROMIUM)",
        ),
        (sync_playwright is None, "playwright is not installed (pip install -e '.[docs]')"),
    )
    if missing
]
if _MISSING and os.environ.get("UDM_REQUIRE_DOCS_BROWSER"):  # CI: a skip would hide a gap
    raise RuntimeError("UDM_REQUIRE_DOCS_BROWSER is set but: " + "; ".join(_MISSING))
pytestmark = pytest.mark.skipif(bool(_MISSING), reason="; ".join(_MISSING))

# Typeset (when the page has MathJax), then measure. Text nodes inside code, scripts and
# MathJax's own output are not prose and are not searched for raw TeX.
MEASURE = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight';
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement && n.parentElement.closest(skip)) continue;
    for (const token of ['$$', '\\\\(', '\\\\[', '\\\\begin{']) {
      const i = n.textContent.indexOf(token);
      if (i >= 0) raw.push(n.textContent.slice(Math.max(0, i - 30), i + 50).trim());
    }
  }
  const root = document.documentElement;
  // the outermost element that sticks out on the right: its parent fits, it does not
  let widest = null;
  if (root.scrollWidth > root.clientWidth) {
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      const parent = el.parentElement.getBoundingClientRect();
      if (r.right > root.clientWidth + 1 && parent.right <= root.clientWidth + 1) {
        const cls = (typeof el.className === 'string' && el.className) ? '.' + el.className.split(' ')[0] : '';
        widest = {tag: el.tagName.toLowerCase() + cls, width: Math.round(r.width),
                  text: (el.textContent || '').slice(0, 60)};
        break;
      }
    }
  }
  return {
    mathjax: !!(window.MathJax && MathJax.startup),
    merror: document.querySelectorAll('mjx-merror, [data-mjx-error]').length,
    merror_text: Array.from(document.querySelectorAll('mjx-merror')).slice(0, 3)
                      .map(e => e.getAttribute('data-mjx-error') || e.textContent),
    raw: raw.slice(0, 5),
    scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, overflowing: widest,
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  };
}"""


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.ids.add(value)


_ID_CACHE: dict[Path, set[str]] = {}


def _ids(path: Path) -> set[str]:
    if path not in _ID_CACHE:
        parser = _Ids()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        _ID_CACHE[path] = parser.ids
    return _ID_CACHE[path]


def broken_links(links: list[str]) -> list[str]:
    """Internal (file://) links whose file or #anchor does not exist."""
    bad = []
    for link in sorted(set(links)):
        url = urlsplit(link)
        if url.scheme != "file":
            continue
        target = Path(unquote(url.path))
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            bad.append(f"{link} (no such file)")
        elif url.fragment and target.suffix == ".html":
            if unquote(url.fragment) not in _ids(target):
                bad.append(f"{link} (no anchor #{url.fragment})")
    return bad


@pytest.fixture(scope="module")
def browser():
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield b
        b.close()


@pytest.mark.parametrize("page_path", PAGES)
def test_page_reads_well_offline(browser, page_path):
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}, offline=True)
    external: list[str] = []

    def refuse(route):
        external.append(route.request.url)
        route.abort()

    context.route(lambda url: not url.startswith("file:"), refuse)
    page = context.new_page()
    js_errors: list[str] = []
    page.on("pageerror", lambda e: js_errors.append(str(e)))
    try:
        page.goto((HTML / page_path).as_uri(), wait_until="load")
        m = page.evaluate(MEASURE)
        if page_path in SCREENSHOTS:
            name, target = SCREENSHOTS[page_path]
            if target:
                page.eval_on_selector(target, "e => e.scrollIntoView()")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / name))
    finally:
        context.close()

    problems = []
    if m["merror"]:
        problems.append(f"{m['merror']} MathJax error node(s): {m['merror_text']}")
    if m["raw"]:
        problems.append(f"raw TeX left in the text: {m['raw']}")
    if m["scrollWidth"] > m["clientWidth"]:
        problems.append(
            f"scrolls sideways at {WIDTH} px: scrollWidth {m['scrollWidth']} > clientWidth "
            f"{m['clientWidth']} (e.g. {m['overflowing']})"
        )
    problems += [f"broken link: {b}" for b in broken_links(m["links"])]
    problems += [f"network request refused: {u}" for u in external]
    problems += [f"JavaScript error: {e}" for e in js_errors]
    assert not problems, f"{page_path}:\n  " + "\n  ".join(problems)
