"""Accuracy and speed benchmarks: `python -m udm.bench` or `udm bench`.

`run(...)` returns one JSON-ready dict: machine, config, accuracy rows (`udm.bench.accuracy`),
speed rows and `udm verify` timings (`udm.bench.speed`); `udm.bench.report` prints and
compares them.
"""

from __future__ import annotations

import sys

QUICK_TS = (10,)
FULL_TS = (10, 1000, 4000)


def run(
    part: str = "all",
    Ts=FULL_TS,
    *,
    quick: bool = False,
    speed_T: int | None = None,
    verify_sections=None,
    log=None,
) -> dict:
    """Run the chosen part(s); quick: T = 10 only, tiny speed runs, verify of one section."""
    from udm.bench import accuracy, report, speed

    if part not in ("accuracy", "speed", "all"):
        raise ValueError(f"part must be accuracy, speed or all, got {part!r}")
    if quick:
        Ts = QUICK_TS if Ts == FULL_TS else Ts
        speed_T = speed_T or 20
        verify_sections = verify_sections or ["guidance"]
    speed_T = speed_T or 1000
    peers = accuracy.diffusers_available()
    result = {
        "schema": report.SCHEMA,
        "machine": report.machine(),
        "config": {
            "part": part,
            "Ts": list(Ts),
            "quick": quick,
            "speed_T": speed_T,
            "peers": peers,
            "verify_sections": verify_sections,
        },
    }
    if part in ("accuracy", "all"):
        result["accuracy"] = accuracy.run(Ts, peers=peers, log=log)
    if part in ("speed", "all"):
        result["speed"] = speed.run(
            speed_T, quick=quick, peers=peers, verify_sections=verify_sections, log=log
        )
    return result


def main(argv=None) -> int:
    import argparse
    import json

    from udm.bench import report

    parser = argparse.ArgumentParser(prog="python -m udm.bench", description=__doc__)
    parser.add_argument("--part", choices=["accuracy", "speed", "all"], default="all")
    parser.add_argument(
        "--T", default=None, help="comma-separated step counts (default 10,1000,4000)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny configuration (seconds)")
    parser.add_argument("--json", dest="json_path", default=None, help="write the results here")
    parser.add_argument("--compare", default=None, help="an earlier JSON to compare against")
    args = parser.parse_args(argv)
    Ts = tuple(int(v) for v in args.T.split(",")) if args.T else FULL_TS
    result = run(args.part, Ts, quick=args.quick, log=lambda m: print(m, file=sys.stderr))
    print(report.render(result))
    if args.compare:
        with open(args.compare, encoding="utf-8") as fh:
            print(report.compare(json.load(fh), result))
    if args.json_path:
        report.write_json(result, args.json_path)
        print(f"wrote {args.json_path}", file=sys.stderr)
    return 0
