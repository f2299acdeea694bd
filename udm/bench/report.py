"""Tables, JSON and run-to-run comparison for `udm bench` / `python -m udm.bench`."""

from __future__ import annotations

import json
import platform
from pathlib import Path

SCHEMA = 1


def machine() -> dict:
    """CPU model, cores and library versions of this run."""
    import numpy
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import diffusers

        diffusers_version = diffusers.__version__
    except Exception:
        diffusers_version = None
    import os

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "diffusers": diffusers_version,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def _fmt(v, width=9) -> str:
    if v is None:
        return f"{'-':>{width}}"
    if isinstance(v, float):
        if v == 0:
            return f"{'0':>{width}}"
        if v != v or v in (float("inf"), float("-inf")):
            return f"{v!s:>{width}}"
        return f"{v:>{width}.3g}"
    return f"{v!s:>{width}}"


def accuracy_summary(rows: list[dict]) -> list[dict]:
    """Max over T of each (kind, schedule, quantity, impl): the table's rows."""
    out: dict[tuple, dict] = {}
    for r in rows:
        key = (r["kind"], r["schedule"], r["quantity"], r["impl"])
        cur = out.get(key)
        if cur is None:
            out[key] = dict(r, Ts=[r["T"]])
            continue
        cur["Ts"].append(r["T"])
        if r["max_ulps"] > cur["max_ulps"]:
            cur.update({k: r[k] for k in ("max_ulps", "T", "worst_t")})
        cur["max_rel"] = max(cur["max_rel"], r["max_rel"])
        if "max_ulps_scale" in r:
            cur["max_ulps_scale"] = max(cur.get("max_ulps_scale", 0.0), r["max_ulps_scale"])
        if "ok" in r:
            cur["ok"] = cur.get("ok", True) and r["ok"]
    return list(out.values())


def accuracy_table(rows: list[dict]) -> str:
    """One line per (kind, schedule, quantity): ours and the peers side by side, max over T."""
    summary = accuracy_summary(rows)
    impls = []
    for r in summary:
        if r["impl"] not in impls:
            impls.append(r["impl"])
    lines = []
    for kind in ("table", "function", "end_to_end"):
        sub = [r for r in summary if r["kind"] == kind]
        if not sub:
            continue
        kimpls = [i for i in impls if any(r["impl"] == i for r in sub)]
        scale = kind == "function"
        head = f"{'schedule':<14}{'quantity':<46}" + "".join(f"{i[:17]:>18}" for i in kimpls)
        title = {
            "table": "schedule tables vs 50-digit truth: max ulps (float32 in f32 ulps, float64 in f64 ulps) over T",
            "function": "float32 functions on float32 inputs: max ulps of the exact result / of the largest term",
            "end_to_end": "t -> table -> formula on float32 data vs the true schedule: max ulps / ulps of scale",
        }[kind]
        lines += ["", f"== {title}", head]
        cells: dict[tuple, dict] = {(r["schedule"], r["quantity"], r["impl"]): r for r in sub}
        keys = []
        for r in sub:
            if (r["schedule"], r["quantity"]) not in keys:
                keys.append((r["schedule"], r["quantity"]))
        for schedule, quantity in keys:
            line = f"{schedule:<14}{quantity[:45]:<46}"
            for impl in kimpls:
                r = cells.get((schedule, quantity, impl))
                if r is None:
                    line += f"{'n/a':>18}"
                    continue
                cell = _fmt(r["max_ulps"], 8).strip()
                if scale and "max_ulps_scale" in r:
                    cell += "/" + _fmt(r["max_ulps_scale"], 5).strip()
                if r.get("ok") is False:
                    cell += "!"
                line += f"{cell:>18}"
            lines.append(line)
    lines.append("  (! = misses its target: tables <= 1 ulp, functions <= 4 ulps)")
    return "\n".join(lines)


def speed_table(speed: dict) -> str:
    lines = ["", f"== speed (threads: {speed.get('threads')}; medians)"]
    lines.append(
        f"{'benchmark':<52}{'device':>7}{'ours s':>11}{'peer s':>11}{'ratio':>8}{'target':>9}  ok"
    )
    for r in speed.get("rows", []):
        cmp = ">=" if r["ratio_is"].startswith("peer") else "<="
        lines.append(
            f"{r['name'][:51]:<52}{r['device']:>7}{_fmt(r['ours_s'], 11)}{_fmt(r['peer_s'], 11)}"
            f"{r['ratio']:>8.2f}{cmp + format(r['target'], 'g'):>9}  {'yes' if r['ok'] else 'NO'}"
        )
        if "samples_per_s_ours" in r:
            lines.append(
                f"  samples/s: ours {r['samples_per_s_ours']:.0f}, "
                f"diffusers {r['samples_per_s_peer']:.0f} (batch {r['batch']})"
            )
    v = speed.get("verify")
    if v:
        lines += [
            "",
            f"== {v['command']}: {v['wall_s']:.1f} s wall (target < {v['target_s']:g} s), "
            f"{v['equations']} equations, {'all ok' if v['all_ok'] else 'FAILURES'}",
        ]
        for section, s in v["sections_s"].items():
            lines.append(f"  {section:<18}{s:8.2f} s")
        if v.get("slowest"):
            lines.append("  slowest proofs:")
            for p in v["slowest"]:
                lines.append(f"  {p['seconds']:8.2f} s  {p['proof']} ({p['steps']} steps)")
    return "\n".join(lines)


def render(result: dict) -> str:
    m = result["machine"]
    parts = [
        f"udm bench ({'quick' if result['config'].get('quick') else 'full'}): {m['cpu']}, "
        f"{m['cores']} cores, torch {m['torch']}, numpy {m['numpy']}, diffusers {m['diffusers']}"
    ]
    if result.get("accuracy"):
        parts.append(accuracy_table(result["accuracy"]))
    if result.get("speed"):
        parts.append(speed_table(result["speed"]))
    return "\n".join(parts)


def write_json(result: dict, path) -> None:
    Path(path).write_text(json.dumps(result, indent=1, allow_nan=True) + "\n", encoding="utf-8")


def _acc_key(r):
    return (r["kind"], r["schedule"], r["T"], r["quantity"], r["impl"])


def compare(old: dict, new: dict) -> str:
    """Lines for every accuracy row whose max ulps changed, and every speed ratio, old -> new."""
    lines = ["", "== compared with the earlier run"]
    before = {_acc_key(r): r for r in old.get("accuracy", [])}
    changed = 0
    for r in new.get("accuracy", []):
        o = before.get(_acc_key(r))
        if o is None:
            continue
        a, b = o["max_ulps"], r["max_ulps"]
        if a != b and not (abs(a - b) <= 1e-9 * max(abs(a), abs(b))):
            changed += 1
            lines.append(
                f"  {r['kind']:<11}{r['schedule']:<14}T={r['T']:<5}{r['quantity'][:40]:<41}"
                f"{r['impl']:<16}{_fmt(a, 9)} -> {_fmt(b, 9)} ulps"
            )
    lines.append(f"  accuracy: {changed} row(s) changed")
    old_speed = {(r["name"], r["device"]): r for r in old.get("speed", {}).get("rows", [])}
    for r in new.get("speed", {}).get("rows", []):
        o = old_speed.get((r["name"], r["device"]))
        if o:
            lines.append(
                f"  speed {r['name']} [{r['device']}]: ratio {o['ratio']:.2f} -> {r['ratio']:.2f}"
            )
    ov, nv = old.get("speed", {}).get("verify"), new.get("speed", {}).get("verify")
    if ov and nv:
        lines.append(f"  udm verify: {ov['wall_s']:.1f} s -> {nv['wall_s']:.1f} s")
    return "\n".join(lines)
