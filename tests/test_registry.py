"""The spine: catalog, registry (runtime and static views), import rules, the `udm` CLI."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import pkgutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from udm import catalog, registry
from udm.cli import main


@pytest.fixture(scope="module")
def all_layers_imported():
    for layer in registry.LAYERS:
        pkg = importlib.import_module(f"udm.{layer}")
        for info in pkgutil.walk_packages(pkg.__path__, f"udm.{layer}."):
            importlib.import_module(info.name)


# --- catalog --------------------------------------------------------------------------


def test_catalog_numbers_are_contiguous():
    numbers = sorted(catalog.load())
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) == 170  # the paper's last numbered equation is (170)


def test_catalog_entries_are_consistent():
    eqs = catalog.load()
    order = [eqs[n].module for n in sorted(eqs)]
    # sections appear in paper order, each as one contiguous block
    blocks = [m for i, m in enumerate(order) if i == 0 or order[i - 1] != m]
    assert blocks == list(catalog.SECTIONS)
    for eq in eqs.values():
        assert eq.kind in catalog.KINDS, eq
        assert eq.latex.strip() and eq.role.strip(), eq
        assert eq.confidence in ("high", "medium", "low"), eq
        assert all(d in eqs and d < eq.number for d in eq.depends_on), eq


def test_catalog_unknown_number_names_range():
    with pytest.raises(KeyError, match=r"1\.\.170"):
        catalog.get(171)


# --- registration rules -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "cited"),
    [
        ("Posterior variance, eq. (85).", {85}),
        ("eqs. (84), (85)", {84, 85}),
        ("ELBO, eqs. (34)-(37).", {34, 35, 36, 37}),
        ("see (85)", set()),  # no 'eq': a bare parenthesis is not a citation
        (None, set()),
    ],
)
def test_cited_equations(doc, cited):
    assert registry.cited_equations(doc) == cited


def _fake(module: str, doc: str | None):
    def f():
        pass

    f.__module__, f.__doc__ = module, doc
    return f


@pytest.mark.parametrize(
    ("eqs", "status", "module", "doc", "message"),
    [
        ((999,), None, "udm.reference.x", "eq. (999)", "not in the catalog"),
        ((0,), None, "udm.reference.x", "eq. (0)", "not in the catalog"),
        (("85",), None, "udm.reference.x", "eq. (85)", "ints"),
        ((), None, "udm.reference.x", "eq. (85)", "at least one"),
        ((85,), None, "udm.reference.x", "Posterior variance.", r"must cite eq\. \(85\)"),
        ((84, 85), None, "udm.reference.x", "eq. (84)", r"must cite eq\. \(85\)"),
        ((85,), None, "tests.x", "eq. (85)", "only derivations"),
        # statuses are computed by `udm verify`, never declared
        ((85,), "symbolic", "udm.reference.x", "eq. (85)", "computed by `udm verify`"),
        ((85,), "symbolic", "udm.derivations.x", "eq. (85)", "computed by `udm verify`"),
    ],
)
def test_register_refuses(eqs, status, module, doc, message):
    before = len(registry.runtime_registrations())
    with pytest.raises(registry.RegistrationError, match=message):
        registry.register(*eqs, status=status)(_fake(module, doc))
    assert len(registry.runtime_registrations()) == before


# --- a derivation's equations come from its registration -----------------------------------


def _builder(module: str, **derivation_kw):
    """A derivation builder in `module` proving eq. (85) by one algebra step."""
    import sympy as sp

    from udm.derivations.core import Derivation, Step

    a = sp.Symbol("a", positive=True)

    def build():
        """The posterior variance, eq. (85)."""
        steps = [Step(a, "definition"), Step(2 * a - a, "algebra", eq=85)]
        return Derivation("demo", steps, **derivation_kw)

    build.__module__, build.__qualname__ = module, "build"
    return build


def test_register_gives_a_derivation_its_equations(monkeypatch):
    monkeypatch.setattr(registry, "_RUNTIME", [])  # keep the fake out of the real registry
    plain = _builder("udm.derivations.fake")
    build = registry.register(85)(plain)
    assert build().equations == (85,)
    assert build.__wrapped__ is plain and build.__equations__ == (85,)
    assert build.__doc__ == plain.__doc__ and build.__name__ == plain.__name__
    same = registry.register(85)(_builder("udm.derivations.fake", equations=(85,)))
    assert same().equations == (85,)


def test_register_refuses_a_derivation_naming_other_equations(monkeypatch):
    monkeypatch.setattr(registry, "_RUNTIME", [])
    build = registry.register(85)(_builder("udm.derivations.fake", equations=(84, 85)))
    with pytest.raises(registry.RegistrationError) as refused:
        build()
    message = str(refused.value)
    assert "udm.derivations.fake.build" in message
    assert "(84, 85)" in message and "(85,)" in message


def test_every_derivation_proves_its_registered_equations(all_layers_imported):
    """Each registered builder's Derivation.equations is exactly its @register numbers."""
    from udm.derivations.core import Derivation

    built = 0
    for reg in registry.runtime_registrations():
        if reg.layer != "derivations" or "<locals>" in reg.path:
            continue
        module, _, name = reg.path.rpartition(".")
        derivation = getattr(importlib.import_module(module), name)()
        assert isinstance(derivation, Derivation), reg.path
        assert derivation.equations == reg.equations, reg.path
        built += 1
    assert built > 100


def _registered_functions(tree):
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(registry._decorator_calls(node, "register")):
            yield node


def test_no_derivation_types_its_equations_again():
    """A registered builder never passes its equations to Derivation (the registration does):
    no equation tuple as a positional argument anywhere in derivations/, no `equations=` in
    a registered builder (a private helper called by several builders may pass it)."""
    root = registry.repo_root() / "derivations"
    offenders = []
    for file in sorted(root.rglob("*.py")):
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        registered = {id(call) for fn in _registered_functions(tree) for call in ast.walk(fn)}
        for call in ast.walk(tree):
            if not (isinstance(call, ast.Call) and ast.unparse(call.func) == "Derivation"):
                continue
            where = f"{file.relative_to(root.parent)}:{call.lineno}"
            for arg in call.args[1:]:
                if isinstance(arg, ast.Tuple) and all(
                    isinstance(e, ast.Constant) and isinstance(e.value, (int, str))
                    for e in arg.elts
                ):
                    offenders.append(f"{where}: positional {ast.unparse(arg)}")
            if id(call) in registered and any(k.arg == "equations" for k in call.keywords):
                offenders.append(f"{where}: equations= in a registered builder")
    assert offenders == []


# --- the registry against the code --------------------------------------------------------


def test_every_registered_path_is_importable(all_layers_imported):
    for record in registry.index().values():
        for impls in record.implementations.values():
            for impl in impls:
                module, _, name = impl.path.rpartition(".")
                obj = importlib.import_module(module)
                for part in name.split("."):
                    obj = getattr(obj, part)
                assert record.number in obj.__equations__, impl


def test_static_index_matches_runtime(all_layers_imported):
    static = {
        (impl.path, n)
        for n, record in registry.index().items()
        for impls in record.implementations.values()
        for impl in impls
    }
    runtime = {
        (r.path, n)
        for r in registry.runtime_registrations()
        for n in r.equations
        if registry.layer_of(r.path) in registry.LAYERS and "<locals>" not in r.path
    }
    assert static == runtime


def test_every_public_function_is_registered(all_layers_imported):
    unregistered = []
    for layer in registry.LAYERS:
        pkg = importlib.import_module(f"udm.{layer}")
        for info in pkgutil.walk_packages(pkg.__path__, f"udm.{layer}."):
            if any(part.startswith("_") for part in info.name.split(".")[2:-1]):
                continue
            if info.name.rsplit(".", 1)[1].startswith("_") and "_generated" not in info.name:
                continue
            if info.name in (f"udm.{layer}.core", f"udm.{layer}.symbols", f"udm.{layer}.codegen"):
                continue  # the derivation engine itself, not a formula
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                    continue
                if obj.__module__ != module.__name__:
                    continue  # re-exported: registered where it is defined
                if not hasattr(obj, "__equations__"):
                    unregistered.append(f"{module.__name__}.{name}")
    assert unregistered == []


def test_statuses_are_known():
    assert {r.status for r in registry.index().values()} <= set(registry.STATUSES)


def test_tests_are_indexed_by_marker():
    record = registry.index()[86]
    assert any(node.startswith("tests/vdm/test_objective.py::") for node in record.tests)


# --- import rules ---------------------------------------------------------------------------


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_reference_never_imports_torch():
    mods = _modules_after("import reference, udm.reference.vdm")
    assert "torch" not in mods


def test_torch_impl_never_imports_sympy():
    mods = _modules_after("import torch_impl, udm.torch_impl.vdm")
    assert "sympy" not in mods


def test_registry_and_cli_import_no_layer():
    mods = _modules_after("import udm.cli, udm.registry; udm.registry.index()")
    assert not mods & {"torch", "sympy", "reference", "torch_impl", "derivations"}


# --- the udm command ------------------------------------------------------------------------


def test_udm_eq_json_has_the_promised_keys():
    result = CliRunner().invoke(main, ["eq", "86", "--json"])
    assert result.exit_code == 0, result.output
    obj = json.loads(result.output)
    assert obj["number"] == 86
    assert {"number", "section", "latex", "status", "implementations", "tests"} <= set(obj)
    assert set(obj["implementations"]) == set(registry.LAYERS)
    assert "udm.torch_impl.vdm.kl_normal" in obj["implementations"]["torch_impl"]
    steps = obj["derivations"][0]["steps"]
    assert [s["rule"] for s in steps if s["eq"] == 86] == ["expectation"]
    # then the form the reference evaluates (r - 1 - log r = expm1mx(log r)), proved equal
    assert steps[-1]["rule"] == "algebra" and "expm1" in steps[-1]["why"]


ERRATA = {22, 45, 132, 133, 149, 150, 151, 161}


def test_errata_are_data_shown_by_udm_eq_and_coverage():
    assert {n for n, e in catalog.load().items() if e.erratum} == ERRATA
    for n in ERRATA:
        erratum = catalog.get(n).erratum
        assert (
            set(erratum) == {"statement", "reason"} and erratum["statement"] != catalog.get(n).latex
        )
        obj = json.loads(CliRunner().invoke(main, ["eq", str(n), "--json", "--no-steps"]).output)
        assert obj["erratum"] == erratum
        text = CliRunner().invoke(main, ["eq", str(n), "--no-steps"]).output
        assert "erratum: " + erratum["statement"] in text and erratum["reason"] in text
    obj = json.loads(CliRunner().invoke(main, ["eq", "86", "--json", "--no-steps"]).output)
    assert obj["erratum"] is None  # the key is there, null, where the paper is right
    rows = json.loads(CliRunner().invoke(main, ["coverage", "--json"]).output)
    assert {r["number"] for r in rows if r["erratum"]} == ERRATA
    assert all("erratum" in r and "status_why" in r for r in rows)


def test_readme_lists_every_erratum():
    readme = (registry.repo_root() / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Where the paper and this code differ")[1].split("\n## ")[0]
    for n in ERRATA:
        assert f"({n})" in section or f"{n})" in section, n


def test_udm_eq_text_names_file_and_line():
    result = CliRunner().invoke(main, ["eq", "70"])
    assert result.exit_code == 0
    assert "torch_impl/vdm.py:" in result.output and "[sum_gaussians]" in result.output


@pytest.mark.parametrize("arg", ["0", "9999", "abc", "-3"])
def test_udm_eq_unknown_exits_2_with_one_line(arg):
    proc = subprocess.run([sys.executable, "-m", "udm", "eq", arg], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "udm:" in proc.stderr


def test_udm_coverage_lists_every_equation():
    result = CliRunner().invoke(main, ["coverage", "--json"])
    rows = json.loads(result.output)
    # the paper's 170 first, in order, then the formulas beyond it in catalog order
    assert [r["number"] for r in rows] == [*range(1, 171), *catalog.load_beyond()]
    text = CliRunner().invoke(main, ["coverage"]).output
    totals = [line.split() for line in text.splitlines() if line.startswith(("total", "beyond "))]
    assert totals[0][:2] == ["total", "170"]
    assert totals[-1][:2] == ["beyond", str(len(catalog.load_beyond()))]


def test_udm_verify_passes_and_reports_rows():
    result = CliRunner().invoke(main, ["verify", "86", "70", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["number"] for r in rows} == {70, 86} and all(r["ok"] for r in rows)


def test_udm_verify_fails_on_a_broken_step(monkeypatch):
    import sympy as sp

    from udm.derivations import vdm
    from udm.derivations.core import Step

    original = vdm.gaussian_kl

    def broken():
        d = original()
        i = next(i for i, s in enumerate(d.steps) if s.eq == 86)  # the expectation step
        line = d.steps[i]
        d.steps[i] = Step(
            line.expr + sp.Rational(1, 10**6), line.rule, line.why, line.eq, over=line.over
        )
        return d

    monkeypatch.setattr(vdm, "gaussian_kl", broken)
    result = CliRunner().invoke(main, ["verify", "86"])
    assert result.exit_code == 1
    assert "FAIL" in result.output and "[expectation]" in result.output


def test_generated_reference_is_up_to_date():
    from udm.derivations import codegen

    assert not any(codegen.generate(write=False).values()), "run `udm generate`"


def test_the_layers_import_under_udm_only(tmp_path):
    """Installed, the layers are udm.derivations / udm.reference / udm.torch_impl (links to the
    root folders); outside the checkout no generic top-level name is importable."""
    import subprocess
    import sys

    code = (
        "import importlib.util as u, udm.reference.vdm, udm.torch_impl.vdm, udm.derivations.core;"
        "print([u.find_spec(n) is None for n in "
        "('reference', 'derivations', 'torch_impl', 'benchmarks')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[True, True, True, True]"
    root = registry.repo_root()
    for layer in registry.LAYERS:
        assert (root / "udm" / layer).resolve() == (root / layer).resolve()


# --- the index's cache (udm/_source_cache.py) ----------------------------------------------


def _fresh_index(monkeypatch, cache_dir):
    """The static index built anew (not the process's functools.cache) with its file cache in
    cache_dir; returns (index, files parsed)."""
    from udm import _source_cache

    monkeypatch.setenv("UDM_CACHE_DIR", str(cache_dir))
    parsed = []
    real_parse = registry.ast.parse
    monkeypatch.setattr(registry.ast, "parse", lambda text: parsed.append(1) or real_parse(text))
    assert _source_cache.folder() == cache_dir
    return registry.index.__wrapped__(), len(parsed)


def _as_data(index):
    return {n: (r.implementations, r.tests) for n, r in index.items()}


def test_a_warm_index_parses_no_file_and_equals_the_cold_one(monkeypatch, tmp_path):
    cold, parsed_cold = _fresh_index(monkeypatch, tmp_path)
    warm, parsed_warm = _fresh_index(monkeypatch, tmp_path)
    assert parsed_cold > 100 and parsed_warm == 0
    assert _as_data(warm) == _as_data(cold) == _as_data(registry.index())


def test_the_cache_follows_a_file_s_content_not_its_timestamp(tmp_path, monkeypatch):
    from udm._source_cache import SourceCache

    monkeypatch.setenv("UDM_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "m.py"
    scan = registry._scan("register")

    def read():
        cache = SourceCache(tmp_path)
        found = cache.get("register", src, scan)
        cache.save()
        return found, cache.scanned

    src.write_text("@register(85)\ndef f():\n    pass\n")
    stamp = src.stat()
    assert read() == ([["f", 2, [85], None]], 1)
    assert read() == ([["f", 2, [85], None]], 0)
    src.write_text("@register(84)\ndef f():\n    pass\n")  # same size, same mtime below
    os.utime(src, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert read() == ([["f", 2, [84], None]], 1)


def test_an_unusable_cache_folder_costs_only_speed(monkeypatch, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    index, parsed = _fresh_index(monkeypatch, blocked / "udm")
    assert parsed > 100 and _as_data(index) == _as_data(registry.index())
