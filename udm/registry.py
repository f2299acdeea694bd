"""The equation registry: which functions implement, derive and test each equation.

Two views of the same facts:

* the *runtime* view: the `register` decorator validates each registration when the
  module that carries it is imported (unknown equation number, a docstring that does not
  cite the number, a layer outside the three, a bad status: all raise at import);
* the *static* view (`index()`): the source files of the three layers and of `tests/` are
  parsed with `ast` (each file only when its content changed: a cache in the user's cache
  folder), never imported, so `udm eq 85` answers without loading torch or sympy. A test
  (tests/test_registry.py) checks that both views agree.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from udm import catalog
from udm._source_cache import SourceCache

LAYERS = ("derivations", "reference", "torch_impl")
# Ordered from strongest to weakest evidence.
STATUSES = ("symbolic", "instance", "definition", "numeric", "missing")
STATUS_MEANING = {
    "symbolic": "proved by SymPy in general",
    "instance": "proved symbolically on a named concrete family",
    "definition": "a definition: nothing to prove",
    "numeric": "checked only by Monte Carlo / quadrature / cross-layer tests",
    "missing": "not implemented yet",
}


class RegistrationError(ValueError):
    """A function was registered under an equation in a way the registry refuses."""


# --- citations in docstrings -----------------------------------------------------------

_RANGE = re.compile(r"\((\d+)\)\s*(?:-|–|--|to)\s*\((\d+)\)")
_SINGLE = re.compile(r"\((\d+)\)")


def cited_equations(doc: str | None) -> set[int]:
    """Equation numbers a docstring cites: '(85)', and ranges '(34)-(45)'.

    A docstring cites nothing unless it says 'eq' somewhere (eq., eqs., equation).
    """
    if not doc or not re.search(r"\beqs?\b|\bequations?\b", doc, re.IGNORECASE):
        return set()
    cited = {int(n) for n in _SINGLE.findall(doc)}
    for lo, hi in _RANGE.findall(doc):
        cited.update(range(int(lo), int(hi) + 1))
    return cited


def cited_keys(doc: str | None) -> set[str]:
    """Keys of formulas beyond the paper (udm/catalog_beyond.yaml) a docstring names, e.g.
    'ddim.12': the key itself must appear, as a word."""
    if not doc:
        return set()
    return {
        key
        for key in catalog.load_beyond()
        if re.search(rf"(?<![\w.]){re.escape(key)}(?![\w])", doc)
    }


# --- runtime registration --------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    equations: tuple[int | str, ...]
    layer: str
    path: str  # dotted import path, e.g. "udm.reference.vdm.var_q"
    status: str | None = None  # only derivations declare one


_RUNTIME: list[Registration] = []
F = TypeVar("F", bound=Callable)


def _validate(equations: tuple, status: str | None, layer: str, path: str, doc: str | None):
    if not equations:
        raise RegistrationError(f"{path}: register() needs at least one equation number")
    known = catalog.load()
    beyond = catalog.load_beyond()
    for n in equations:
        if isinstance(n, str) and not n.strip().isdigit():  # '85' stays refused as not an int
            if n not in beyond:
                raise RegistrationError(
                    f"{path}: {n!r} is not a key of udm/catalog_beyond.yaml "
                    f"(valid: {', '.join(beyond)})"
                )
            continue
        if isinstance(n, bool) or not isinstance(n, int):
            raise RegistrationError(f"{path}: equation numbers are ints, got {n!r}")
        if n not in known:
            raise RegistrationError(
                f"{path}: equation {n} is not in the catalog (valid: 1..{max(known)})"
            )
    if layer not in LAYERS:
        raise RegistrationError(f"{path}: only {', '.join(LAYERS)} may register, not {layer!r}")
    if status is not None:
        # statuses are computed from what `udm verify` proved (udm/status.py), never declared
        raise RegistrationError(f"{path}: status is computed by `udm verify`, not declared")
    numbers = {n for n in equations if isinstance(n, int)}
    missing = sorted(numbers - cited_equations(doc))
    if missing:
        raise RegistrationError(
            f"{path}: docstring must cite eq. {', '.join(f'({n})' for n in missing)}"
        )
    keys = {n for n in equations if isinstance(n, str)}
    missing_keys = sorted(keys - cited_keys(doc))
    if missing_keys:
        raise RegistrationError(f"{path}: docstring must name {', '.join(missing_keys)}")


def _stamp_equations(result, equations: tuple, path: str):
    """A derivation builder's result with `equations` = its registration.

    Duck-typed (the spine imports no layer): a dataclass instance with an `equations` field
    (udm.derivations.core.Derivation) that leaves it empty gets the registered numbers; one
    that names the same numbers is returned as is; one that names others is refused. Any
    other result passes through unchanged.
    """
    if not dataclasses.is_dataclass(result) or isinstance(result, type):
        return result
    if "equations" not in {f.name for f in dataclasses.fields(result)}:
        return result
    given = tuple(result.equations)
    if given == equations:
        return result
    if given:
        raise RegistrationError(
            f"{path}: its Derivation says equations={given!r}, but it is registered under "
            f"{equations!r}; drop equations= (the registration supplies them) or fix one"
        )
    return dataclasses.replace(result, equations=equations)


def _stamping(builder: F, equations: tuple, path: str) -> F:
    """`builder` wrapped so that the Derivation it returns carries `equations`."""

    @functools.wraps(builder)
    def wrapper(*args, **kwargs):
        return _stamp_equations(builder(*args, **kwargs), equations, path)

    return wrapper


def register(*equations: int | str, status: str | None = None) -> Callable[[F], F]:
    """Register the decorated function or class under the paper's equation number(s), or
    under keys of formulas beyond the paper ('ddim.12', udm/catalog_beyond.yaml).

    The layer is the top-level package of the defining module. No status is declared: it is
    computed from what `udm verify` proved (udm/status.py). The object gains `__equations__`.

    A function of the derivations layer is wrapped (`functools.wraps`; the original is
    `__wrapped__`) so that the Derivation it builds proves exactly the registered equations:
    builders never type the numbers a second time (see `_stamp_equations`).
    """

    def decorate(obj: F) -> F:
        path = f"{obj.__module__}.{obj.__qualname__}"
        layer = layer_of(obj.__module__)
        _validate(equations, status, layer, path, obj.__doc__)
        registered = tuple(equations)
        if layer == "derivations" and inspect.isfunction(obj):
            obj = _stamping(obj, registered, path)
        obj.__equations__ = registered
        _RUNTIME.append(Registration(registered, layer, path, status))
        return obj

    return decorate


def runtime_registrations() -> list[Registration]:
    """Registrations made so far by imported modules."""
    return list(_RUNTIME)


# --- static index (no imports of the layers) -------------------------------------------


@dataclass(frozen=True)
class Implementation:
    path: str  # dotted import path
    file: str  # repository-relative file
    line: int
    layer: str
    status: str | None


@dataclass
class EquationRecord:
    number: int | str
    implementations: dict[str, list[Implementation]] = field(
        default_factory=lambda: {layer: [] for layer in LAYERS}
    )
    tests: list[str] = field(default_factory=list)  # pytest node ids

    @property
    def status(self) -> str:
        """The status `udm verify` computed (udm/status.json); see udm/status.py."""
        computed = _statuses_for(self.number).get(self.number)
        if computed:
            return computed["status"]
        if self.tests and any(self.implementations[layer] for layer in LAYERS):
            return "numeric"
        return "missing"

    @property
    def why(self) -> str:
        return _statuses_for(self.number).get(self.number, {}).get("why", "not computed yet")


@functools.cache
def computed_statuses() -> dict[int, dict]:
    """udm/status.json, written by `udm verify` (a full run): number -> {status, why}."""
    path = Path(__file__).with_name("status.json")
    if not path.exists():
        return {}
    return {int(k): v for k, v in json.loads(path.read_text(encoding="utf-8")).items()}


@functools.cache
def computed_beyond_statuses() -> dict[str, dict]:
    """udm/status_beyond.json, written by `udm verify` (a full run): key -> {status, why}."""
    path = Path(__file__).with_name("status_beyond.json")
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _statuses_for(key) -> dict:
    return computed_beyond_statuses() if isinstance(key, str) else computed_statuses()


def layer_of(module: str) -> str:
    """'derivations', 'reference' or 'torch_impl' for a module udm.<layer>...; else its first
    component (which registration refuses)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "udm" and len(parts) > 1 and parts[1] in LAYERS else parts[0]


@functools.cache
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _layer_dir(layer: str) -> Path | None:
    spec = importlib.util.find_spec(f"udm.{layer}")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).resolve()  # the real folder


def _literal_ints(call: ast.Call) -> tuple[int | str, ...]:
    """The literal equation numbers and beyond keys of a register(...) or mark.eq(...) call."""
    return tuple(a.value for a in call.args if isinstance(a, ast.Constant))


def _decorator_calls(node: ast.AST, name: str):
    for dec in getattr(node, "decorator_list", []):
        if isinstance(dec, ast.Call):
            func = dec.func
            dotted = ast.unparse(func)
            if dotted == name or dotted.endswith("." + name):
                yield dec


def _walk_defs(tree: ast.Module):
    """Top-level functions/classes and methods of top-level classes, with qualnames."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node, node.name
            if isinstance(node, ast.ClassDef):
                for sub in node.body:
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        yield sub, f"{node.name}.{sub.name}"


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(repo_root()))
    except ValueError:
        return str(path)


def _scan(decorator: str) -> Callable[[str], list]:
    """A scanner of source text: [qualname, line, numbers, status] per `decorator` call."""

    def scan(text: str) -> list:
        found = []
        for node, qualname in _walk_defs(ast.parse(text)):
            for call in _decorator_calls(node, decorator):
                status = next((k.value.value for k in call.keywords if k.arg == "status"), None)
                found.append([qualname, node.lineno, list(_literal_ints(call)), status])
        return found

    return scan


@functools.cache
def index() -> dict[int | str, EquationRecord]:
    """Equation number (or beyond key) -> implementations per layer and tests, read from the
    sources (each file parsed only when its content changed: udm/_source_cache.py)."""
    records = {n: EquationRecord(n) for n in catalog.load_all()}
    cache = SourceCache(repo_root())
    scan_register, scan_marks = _scan("register"), _scan("mark.eq")
    for layer in LAYERS:
        root = _layer_dir(layer)
        if root is None:
            continue
        for file in sorted(root.rglob("*.py")):
            module = ".".join(("udm", layer, *file.relative_to(root).with_suffix("").parts))
            module = module.removesuffix(".__init__")
            for qualname, line, numbers, status in cache.get("register", file, scan_register):
                impl = Implementation(f"{module}.{qualname}", _rel(file), line, layer, status)
                for n in numbers:
                    if n in records:
                        records[n].implementations[layer].append(impl)
    tests_dir = repo_root() / "tests"
    if tests_dir.is_dir():
        for file in sorted(tests_dir.rglob("test_*.py")):
            for qualname, _, numbers, _ in cache.get("mark.eq", file, scan_marks):
                node_id = f"{_rel(file)}::{qualname.replace('.', '::')}"
                for n in numbers:
                    if n in records and node_id not in records[n].tests:
                        records[n].tests.append(node_id)
    cache.save()
    return records
