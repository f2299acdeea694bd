"""Computed status: `udm verify` earns each status; every interface shows the same one."""

from __future__ import annotations

import json

import sympy as sp
from click.testing import CliRunner

from udm import catalog, registry, status
from udm.cli import main
from udm.derivations.core import Derivation, Step, lemma

x, y = sp.symbols("x y", real=True)


def _statuses(*derivations):
    built = {
        f"udm.derivations.fake.d{i}": (d, d.check() + d.check_results())
        for i, d in enumerate(derivations)
    }
    return status.compute(built)


def test_status_file_is_current():
    """udm/status.json is what checking every derivation now gives (run `udm verify`)."""
    assert status.compute() == status.load()


def test_beyond_status_file_is_current():
    """udm/status_beyond.json (keys like 'ddim.12') is what checking their derivations gives."""
    assert status.compute(beyond=True) == status.load_beyond()


def test_symbolic_needs_a_proved_line_without_family():
    line = [Step(x * (x + 1), "definition"), Step(x**2 + x, "algebra", eq=89)]
    assert _statuses(Derivation("d", line, equations=(89,)))[89]["status"] == "symbolic"
    on_family = Derivation("d", line, equations=(89,), family="Gaussian data")
    assert _statuses(on_family)[89] == {
        "status": "instance",
        "why": "line (89) of udm.derivations.fake.d0 on Gaussian data",
    }
    wrong = [Step(x * (x + 1), "definition"), Step(x**2, "algebra", eq=89)]
    assert _statuses(Derivation("d", wrong, equations=(89,)))[89]["status"] != "symbolic"
    first_line_only = [Step(x, "definition", eq=89)]
    assert _statuses(Derivation("d", first_line_only, equations=(89,)))[89]["status"] != "symbolic"


def _using(source):
    steps = [Step(x, "definition"), Step(y, "substitute", eq=89)]
    return Derivation("d", steps, equations=(89,), facts=(lemma(x, y, source),))


def test_a_lemma_passes_on_its_source_status():
    # a line proved from an instance is an instance; from an unproved equation, nothing
    source = Derivation(
        "src", [Step(x, "definition"), Step(x, "algebra", eq=2)], equations=(2,), family="F"
    )
    assert _statuses(source, _using(2))[89]["status"] == "instance"
    assert _statuses(_using(2))[89]["status"] == "numeric"  # (2) unproved: (89) keeps its tests


def test_definition_status_only_for_catalog_definitions():
    for n, entry in status.load().items():
        is_definition = catalog.get(n).kind == "definition"
        assert (entry["status"] == "definition") == is_definition or entry["status"] == "missing", n


def test_every_interface_shows_the_computed_status():
    computed = {n: v["status"] for n, v in status.load().items()}
    assert set(computed) == set(catalog.load())
    computed |= {k: v["status"] for k, v in status.load_beyond().items()}
    assert set(computed) == set(catalog.load_all())  # and the formulas beyond the paper
    assert {n: r.status for n, r in registry.index().items()} == computed
    runner = CliRunner()
    records = json.loads(runner.invoke(main, ["coverage", "--json"]).output)
    assert {r["number"]: r["status"] for r in records} == computed
    for n in (1, 85, 132, 151, 161):
        obj = json.loads(runner.invoke(main, ["eq", str(n), "--json", "--no-steps"]).output)
        assert obj["status"] == computed[n]
    from udm import verify

    for row in verify.run(section="guidance"):
        assert row.status == computed[row.number]


def test_readme_quotes_the_counts_udm_coverage_prints():
    readme = (registry.repo_root() / "README.md").read_text(encoding="utf-8")
    quoted = readme.split("$ udm coverage\n", 1)[1].split("```", 1)[0]
    printed = CliRunner().invoke(main, ["coverage"]).output
    assert quoted.strip() == printed.strip()
