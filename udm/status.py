"""Computed status: what `udm verify` proved about each equation, never what code declares.

An equation N is

* `symbolic` when a line numbered N (not a chain's first line; or the last line of a chain
  whose whole statement is N, `Derivation.claims`) is reached by steps that were each proved, in a derivation with no concrete family whose facts are all licensed and
  whose lemmas are themselves proved (recursively, by the same rule);
* `instance` when the same holds on a declared family (the family is named in `why`);
* `definition` when the catalog's kind is definition (and something implements it);
* `numeric` when only tests touch it; `missing` otherwise.

Checking every derivation takes ~30 s, so `udm verify` writes the result to
udm/status.json (checked in) and `udm eq` / `udm coverage` read that file; a test checks
that the file is current.
"""

from __future__ import annotations

import json
from pathlib import Path

from udm import catalog, registry

STATUS_PATH = Path(__file__).with_name("status.json")
BEYOND_STATUS_PATH = Path(__file__).with_name("status_beyond.json")  # keys like 'ddim.12'
# udm/printed_match.py's verdicts (the paper's printed line N against the derivation's line N),
# written by a full `udm verify` and `python -m udm.printed_match --write`
PRINTED_PATH = Path(__file__).with_name("printed_match.json")
_RANK = {s: i for i, s in enumerate(registry.STATUSES)}


def _weaker(a: str, b: str) -> str:
    return a if _RANK[a] >= _RANK[b] else b


def compute(built: dict | None = None, beyond: bool = False) -> dict:
    """Each equation's status and why, from {path: (derivation, checks)} of every registered
    derivation (checked here when not given: ~30 s).

    beyond=True: the formulas of udm/catalog_beyond.yaml instead (keyed 'ddim.12'; their
    derivations are checked here when `built` is not given, a few seconds); a lemma they
    take from the paper passes on the paper's status as last stored (udm/status.json).
    """
    from udm.derivations import codegen

    if built is None:
        built = {}
        for section in catalog.BEYOND_SECTIONS if beyond else catalog.SECTIONS:
            for path, d in codegen.derivations_of(section):
                built[path] = (d, d.check() + d.check_results())
    built = dict(built)  # lemmas checked on demand are added to a copy
    index = registry.index()
    memo: dict = {}

    def lemma_status(by) -> str:
        """Status a lemma's source earns: an equation's status or a derivation's."""
        if isinstance(by, int) and beyond:
            return load().get(by, {}).get("status", "missing")
        if isinstance(by, int) or catalog.is_beyond(by):
            return equation(by)["status"]
        if by not in built and beyond and isinstance(by, str) and by.startswith("udm.derivations."):
            # a paper derivation that a formula beyond the paper uses: check it here
            import importlib

            module, name = by.rsplit(".", 1)
            try:
                d = getattr(importlib.import_module(module), name)()
            except (ImportError, AttributeError):
                return "missing"
            built[by] = (d, d.check() + d.check_results())
        if by not in built:
            return "missing"
        d, checks = built[by]
        if not all(c.ok for c in checks):
            return "missing"
        return derivation_bound(d)

    def derivation_bound(d) -> str:
        """The best status a line of d can earn: its family and its lemmas bound it."""
        best = "instance" if d.family else "symbolic"
        for f in d.fact_list:
            if getattr(f, "kind", None) == "lemma":
                source = lemma_status(f.by)
                if source not in ("symbolic", "instance", "definition"):
                    return "missing"  # an unproved lemma proves nothing
                if source == "instance":
                    best = _weaker(best, "instance")
        return best

    def equation(n: int) -> dict:
        if n in memo:
            return memo[n] or {"status": "missing", "why": "circular lemma"}
        memo[n] = None  # in progress: a cycle proves nothing
        entry = catalog.get(n)
        record = index[n]
        implemented = any(record.implementations[layer] for layer in registry.LAYERS)
        result = None
        if entry.kind == "definition" and implemented:
            result = {"status": "definition", "why": "the catalog's kind is definition"}
        else:
            for path, (d, checks) in list(built.items()):
                for i, step in enumerate(d.steps):
                    # a line numbered n, or the last line of a chain that claims n as a whole
                    claimed = n in d.claims and i == len(d.steps) - 1
                    if (step.eq != n and not claimed) or i == 0:
                        continue
                    upto = [c for c in checks if c.index in (-1, *range(i + 1))]
                    if not all(c.ok for c in upto):
                        continue
                    status = derivation_bound(d)
                    if status == "missing":
                        continue
                    why = f"line ({n}) of {path}" + (f" on {d.family}" if d.family else "")
                    if result is None or _RANK[status] < _RANK[result["status"]]:
                        result = {"status": status, "why": why}
        if result is None:
            if record.tests and implemented:
                result = {"status": "numeric", "why": "checked only by tests"}
            else:
                result = {"status": "missing", "why": "no proof and no test"}
        memo[n] = result
        return result

    if beyond:
        return {k: equation(k) for k in catalog.load_beyond()}
    return {n: equation(n) for n in sorted(catalog.load())}


def write(statuses: dict[int, dict]) -> None:
    text = json.dumps({str(n): v for n, v in sorted(statuses.items())}, indent=1) + "\n"
    STATUS_PATH.write_text(text, encoding="utf-8")


def write_beyond(statuses: dict[str, dict]) -> None:
    """Store the statuses of the formulas beyond the paper (udm/status_beyond.json)."""
    text = json.dumps(statuses, indent=1, sort_keys=True) + "\n"
    BEYOND_STATUS_PATH.write_text(text, encoding="utf-8")


def load_beyond() -> dict[str, dict]:
    """The statuses of the formulas beyond the paper `udm verify` last computed."""
    if not BEYOND_STATUS_PATH.exists():
        return {}
    return json.loads(BEYOND_STATUS_PATH.read_text(encoding="utf-8"))


def load() -> dict[int, dict]:
    """The statuses `udm verify` last computed (empty if never written)."""
    if not STATUS_PATH.exists():
        return {}
    return {int(k): v for k, v in json.loads(STATUS_PATH.read_text(encoding="utf-8")).items()}


def write_printed(records: dict[int, dict]) -> None:
    """Store {number: {"printed_match": True/False/None, "reason": str, "derivation": str}}."""
    text = json.dumps({str(n): v for n, v in sorted(records.items())}, indent=1) + "\n"
    PRINTED_PATH.write_text(text, encoding="utf-8")


def load_printed() -> dict[int, dict]:
    """The printed-line verdicts last stored (empty if never written)."""
    if not PRINTED_PATH.exists():
        return {}
    return {int(k): v for k, v in json.loads(PRINTED_PATH.read_text(encoding="utf-8")).items()}


def printed(number: int | str) -> tuple[bool | None, str]:
    """(printed_match, printed_match_reason) of equation `number` as last stored."""
    if isinstance(number, str):
        return None, "not a line of Luo 2022: printed lines are compared for the paper only"
    record = load_printed().get(number)
    if record is None:
        return None, "not computed: run `udm verify` (a full run) to compare the printed lines"
    return record["printed_match"], record["reason"]
