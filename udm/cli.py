"""The `udm` command: `udm eq N`, `udm coverage`, `udm verify`, `udm generate`."""

from __future__ import annotations

import importlib
import json
import sys
import time

import click

from udm import catalog, registry


def _fail(message: str) -> None:
    click.echo(f"udm: {message}", err=True)
    sys.exit(2)


def _parse_eq(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        _fail(f"{text!r} is not an equation number (valid: 1..{max(catalog.load())})")
    if number not in catalog.load():
        _fail(f"no equation {number} in the paper (valid: 1..{max(catalog.load())})")
    return number


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="udm")
def main() -> None:
    """Understanding Diffusion Models (Luo 2022), verified in SymPy, NumPy and PyTorch."""


def _derivation_steps(path: str) -> dict:
    module_name, name = path.rsplit(".", 1)
    derivation = getattr(importlib.import_module(module_name), name)()
    from derivations.core import RULES
    from derivations.symbols import tex

    return {
        "title": derivation.title,
        "family": derivation.family,
        "steps": [
            {
                "eq": s.eq,
                "rule": s.rule,
                "rule_meaning": RULES[s.rule],
                "why": s.why,
                "relation": s.latex_relation(),
                "latex": tex(s.expr),
            }
            for s in derivation.steps
        ],
    }


@main.command("eq", context_settings={"ignore_unknown_options": True})
@click.argument("number")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--no-steps", is_flag=True, help="Skip building the derivation (no SymPy).")
def eq_command(number: str, as_json: bool, no_steps: bool) -> None:
    """Show equation NUMBER: LaTeX, role, implementations, derivation steps, tests."""
    n = _parse_eq(number)
    entry = catalog.get(n)
    record = registry.index()[n]
    derivations = (
        []
        if no_steps
        else [
            {"path": i.path, **_derivation_steps(i.path)}
            for i in record.implementations["derivations"]
        ]
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "number": n,
                    "section": entry.section,
                    "subsection": entry.subsection,
                    "module": entry.module,
                    "latex": entry.latex,
                    "kind": entry.kind,
                    "role": entry.role,
                    "confidence": entry.confidence,
                    "status": record.status,
                    "status_why": record.why,
                    "erratum": entry.erratum,
                    "implementations": {
                        layer: [i.path for i in impls]
                        for layer, impls in record.implementations.items()
                    },
                    "locations": {
                        layer: [f"{i.file}:{i.line}" for i in impls]
                        for layer, impls in record.implementations.items()
                    },
                    "derivations": derivations,
                    "tests": record.tests,
                },
                indent=2,
            )
        )
        return
    click.echo(
        f"eq. ({n})  [{entry.module}] {entry.section}"
        + (f" / {entry.subsection}" if entry.subsection else "")
    )
    click.echo(f"  {entry.latex}")
    if entry.erratum:
        click.echo(f"  erratum: {entry.erratum['statement']}")
        click.echo(f"           ({entry.erratum['reason']}; the status is for this statement)")
    click.echo(f"  role: {entry.role} ({entry.kind}; numbering confidence {entry.confidence})")
    click.echo(f"  status: {record.status} ({registry.STATUS_MEANING[record.status]})")
    click.echo(f"          computed by `udm verify`: {record.why}")
    for layer, impls in record.implementations.items():
        click.echo(f"  {layer}:")
        for i in impls or []:
            click.echo(f"    {i.path}  ({i.file}:{i.line})")
        if not impls:
            click.echo("    -")
    for d in derivations:
        family = f" on {d['family']}" if d["family"] else ""
        click.echo(f"  derivation {d['path']}: {d['title']}{family}")
        for s in d["steps"]:
            label = f"({s['eq']})" if s["eq"] else "    "
            click.echo(f"    {label:>6} {s['relation']} {s['latex']}")
            click.echo(f"           [{s['rule']}] {s['why']}")
    click.echo("  tests:")
    for node in record.tests or ["-"]:
        click.echo(f"    {node}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per equation.")
def coverage(as_json: bool) -> None:
    """Per-section table of equations by status (as `udm verify` computed it) and by layer."""
    eqs, index = catalog.load(), registry.index()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "number": n,
                        "section": eqs[n].module,
                        "status": index[n].status,
                        "status_why": index[n].why,
                        "erratum": eqs[n].erratum,
                        "implementations": {
                            layer: [i.path for i in impls]
                            for layer, impls in index[n].implementations.items()
                        },
                        "tests": index[n].tests,
                    }
                    for n in sorted(eqs)
                ],
                indent=2,
            )
        )
        return
    cols = [*list(registry.STATUSES), "deriv", "ref", "torch", "tested"]
    head = f"{'section':<16}{'eqs':>5}" + "".join(f"{c:>11}" for c in cols)
    click.echo(head)
    click.echo("-" * len(head))
    totals = [0] * (len(cols) + 1)
    for section in catalog.SECTIONS:
        records = [index[n] for n in catalog.numbers_in(section)]
        counts = [len(records)]
        counts += [sum(r.status == s for r in records) for s in registry.STATUSES]
        counts += [
            sum(bool(r.implementations[layer]) for r in records) for layer in registry.LAYERS
        ]
        counts += [sum(bool(r.tests) for r in records)]
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        click.echo(f"{section:<16}{counts[0]:>5}" + "".join(f"{c:>11}" for c in counts[1:]))
    click.echo("-" * len(head))
    click.echo(f"{'total':<16}{totals[0]:>5}" + "".join(f"{c:>11}" for c in totals[1:]))


@main.command()
@click.argument("equations", nargs=-1)
@click.option("--section", type=click.Choice(catalog.SECTIONS), help="Only this section.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as a JSON list.")
def verify(equations: tuple[str, ...], section: str | None, as_json: bool) -> None:
    """Check every derivation step and every derivation-vs-reference closed form."""
    from udm import verify as verifier

    numbers = [_parse_eq(e) for e in equations]
    start = time.perf_counter()

    def show(row: verifier.Row) -> None:
        if not as_json:
            mark = "ok  " if row.ok else "FAIL"
            click.echo(
                f"{mark} eq. ({row.number:>3})  {row.status:<10} {row.seconds:7.2f}s  "
                f"{catalog.get(row.number).module}",
                err=False,
            )
            for failure in row.failures:
                click.echo(f"       {failure}")

    if not as_json:
        click.echo("verifying derivations and reference closed forms ...", err=True)
    rows = verifier.run(numbers, section, on_row=show)
    failed = [r for r in rows if not r.ok]
    elapsed = time.perf_counter() - start
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in rows], indent=2))
    else:
        numbers = {r.number for r in rows}
        click.echo(
            f"{len(rows) - len(failed)} passed, {len(failed)} failed "
            f"({len(numbers)} equations, {len(rows)} checks, {elapsed:.1f}s)"
        )
    if not rows and (numbers or section):
        click.echo("udm: nothing to verify for that selection yet", err=True)
    sys.exit(1 if failed else 0)


@main.command()
@click.option("--check", is_flag=True, help="Only report stale files; exit 1 if any.")
def generate(check: bool) -> None:
    """Regenerate reference/_generated/ from the derivations."""
    from derivations import codegen

    changed = codegen.generate(write=not check)
    for file, was_changed in changed.items():
        click.echo(
            f"{'stale' if check and was_changed else 'updated' if was_changed else 'unchanged'}"
            f" {file}"
        )
    sys.exit(1 if check and any(changed.values()) else 0)


# --- `udm schedule` (vdm-post) ---------------------------------------------------------------

_SCHEDULE_COLUMNS = ("t", "alpha_t", "alpha_bar_t", "var_q", "snr", "log_snr")


@main.command("schedule")
@click.argument("name", type=click.Choice(["linear", "scaled-linear", "cosine"]))
@click.option("--T", "T", type=int, default=1000, show_default=True, help="Number of steps.")
@click.option("--beta-start", type=float, default=None, help="First beta (linear schedules).")
@click.option("--beta-end", type=float, default=None, help="Last beta (linear schedules).")
@click.option(
    "--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="One object: t and one array per column.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Save a plot (needs matplotlib).")
def schedule_command(name, T, beta_start, beta_end, dtype, as_json, plot) -> None:
    """Print schedule NAME's coefficients for t = 1..T (torch implementation, chosen dtype).

    Defaults: linear = DDPM (beta 1e-4..0.02), scaled-linear = Stable Diffusion
    (0.00085..0.012), cosine = improved DDPM (s = 0.008); T = 1000. Columns: alpha_t,
    alpha_bar_t, var_q (0 at t = 1), snr, log_snr, indexed by the paper's t (1-based).
    """
    import torch  # lazily: `udm eq` must stay fast

    from torch_impl import vdm

    try:
        sched = vdm.make_schedule(
            name,
            T,
            beta_start=beta_start,
            beta_end=beta_end,
            dtype=getattr(torch, dtype),
        )
    except ValueError as err:
        _fail(str(err))
    columns = {"t": list(range(1, sched.T + 1))}
    for key in _SCHEDULE_COLUMNS[1:]:
        # .tolist() of a float32 tensor gives the nearest double of each float32 value
        columns[key] = getattr(sched, key).tolist()
    if plot:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            click.echo("udm: --plot needs matplotlib (optional; pip install matplotlib)", err=True)
        else:
            fig, axes = plt.subplots(1, 2, figsize=(10, 4))
            axes[0].plot(columns["t"], columns["alpha_bar_t"], label="alpha_bar_t")
            axes[0].plot(columns["t"], columns["alpha_t"], label="alpha_t")
            axes[0].set_xlabel("t")
            axes[0].legend()
            axes[1].plot(columns["t"], columns["log_snr"])
            axes[1].set_xlabel("t")
            axes[1].set_ylabel("log SNR(t)")
            fig.suptitle(f"{name} schedule, T = {sched.T} ({dtype})")
            fig.tight_layout()
            fig.savefig(plot)
            click.echo(f"udm: wrote {plot}", err=True)
    if as_json:
        click.echo(json.dumps({"schedule": name, "T": sched.T, "dtype": dtype, **columns}))
        return
    click.echo("".join(f"{c:>22}" if c != "t" else f"{c:>6}" for c in _SCHEDULE_COLUMNS))
    for i in range(sched.T):
        row = [f"{columns['t'][i]:>6}"]
        row += [f"{columns[c][i]:>22.15g}" for c in _SCHEDULE_COLUMNS[1:]]
        click.echo("".join(row))


# --- the model people run: udm train / elbo / sample (torch imported lazily) ---------------


@main.command()
@click.option("--data", help="gaussian, mixture, moons, digits, or a .npy file / image folder.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    help="TOML file with the same keys as the flags (top level or [train]).",
)
@click.option("--steps", type=int)
@click.option("--batch-size", type=int)
@click.option("--lr", type=float)
@click.option("--T", "T", type=int, help="Number of diffusion steps.")
@click.option(
    "--schedule",
    type=click.Choice(["linear", "cosine", "scaled-linear", "learned"]),
    help="learned: continuous-time VDM with a learned noise schedule (--T ignored).",
)
@click.option("--target", type=click.Choice(["x0", "eps", "score", "v"]))
@click.option("--weighting", type=click.Choice(["simple", "elbo"]))
@click.option("--width", type=int, help="Network width (default depends on the data).")
@click.option("--conditional/--unconditional", default=None, help="Class-conditional (CFG).")
@click.option("--ema-decay", type=float)
@click.option("--seed", type=int)
@click.option("--device", help="cpu, cuda, cuda:N (torchrun sets the rank's GPU).")
@click.option("--dtype", type=click.Choice(["float32", "float64"]))
@click.option("--out", help="Output folder (checkpoint model.pt, PNG figures).")
@click.option("--resume", is_flag=True, help="Continue the checkpoint in --out.")
@click.option("--no-plot", is_flag=True, help="Skip the PNG figures.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(config_file, resume, no_plot, quiet, **flags) -> None:
    """Train a diffusion model (multi-process: torchrun --nproc_per_node N -m udm train ...)."""
    from udm.model import checkpoint
    from udm.model import train as trainer
    from udm.model.config import Config

    if no_plot:
        flags["plot"] = False
    try:
        config = Config.from_sources(config_file, **flags)
        path = trainer.train(config, resume=resume, progress=not quiet)
    except (ValueError, FileExistsError, checkpoint.CheckpointError) as err:
        _fail(str(err))
    click.echo(f"checkpoint: {path}")


@main.command()
@click.argument("checkpoint_path", metavar="CHECKPOINT")
@click.option("--n", default=1000, show_default=True, help="Held-out samples.")
@click.option("--batch", default=100, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def elbo(checkpoint_path, n, batch, seed, device, as_json) -> None:
    """Full-T ELBO / NLL bound in bits per dimension on held-out data, with standard error."""
    from udm.model import checkpoint, evaluate

    try:
        report = evaluate.elbo_report(checkpoint_path, n=n, batch=batch, seed=seed, device=device)
    except (ValueError, checkpoint.CheckpointError) as err:
        _fail(str(err))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(
        f"{report['data']}: -ELBO = {report['bits_per_dim']:.4f} "
        f"+- {report['stderr_bits_per_dim']:.4f} bits/dim "
        f"({report['nll_nats']:.4f} +- {report['stderr']:.4f} nats), "
        f"n = {report['n']}, T = {report['T'] or 'oo (continuous time, learned schedule)'}"
    )
    if "true_nll_nats" in report:
        click.echo(
            f"true NLL of the data: {report['true_nll_nats']:.4f} "
            f"+- {report['true_nll_stderr']:.4f} nats (the bound must not fall below it)"
        )


@main.command()
@click.argument("checkpoint_path", metavar="CHECKPOINT")
@click.option("--n", default=64, show_default=True)
@click.option(
    "--sampler", type=click.Choice(["ancestral", "ddim"]), default="ancestral", show_default=True
)
@click.option(
    "--steps",
    type=int,
    help="DDIM steps (default min(T, 100)); learned schedule: grid steps (1000 / 100 DDIM).",
)
@click.option("--label", type=int, help="Class label (class-conditional models).")
@click.option("--guidance-scale", type=float, help="Classifier-free guidance gamma, eq. (170).")
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--out", default=None, help="Folder for samples.npy and samples.png.")
def sample(checkpoint_path, n, sampler, steps, label, guidance_scale, seed, device, out) -> None:
    """Draw samples: .npy array and a PNG (grid for images, scatter/histogram otherwise)."""
    from pathlib import Path

    from udm.model import checkpoint, evaluate

    if guidance_scale is not None and guidance_scale != guidance_scale:
        _fail("--guidance-scale must be a number, got NaN")
    out = out or str(Path(checkpoint_path).parent / "samples")
    try:
        result = evaluate.sample_to_files(
            checkpoint_path,
            out,
            n=n,
            sampler=sampler,
            steps=steps,
            label=label,
            guidance_scale=guidance_scale,
            seed=seed,
            device=device,
        )
    except (ValueError, checkpoint.CheckpointError) as err:
        _fail(str(err))
    click.echo(f"wrote {result['npy']} and {result['png']}")


# --- `udm bench` (issue 9): accuracy and speed benchmarks ---


@main.command("bench")
@click.option(
    "--part", type=click.Choice(["accuracy", "speed", "all"]), default="all", show_default=True
)
@click.option("--T", "Ts", default=None, help="Comma-separated step counts (default 10,1000,4000).")
@click.option("--quick", is_flag=True, help="Tiny configuration (T = 10, short speed runs).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write results here.")
@click.option(
    "--compare", type=click.Path(exists=True, dir_okay=False), help="An earlier JSON to compare."
)
def bench_command(part, Ts, quick, json_path, compare) -> None:
    """Accuracy (vs 50-digit mpmath, beside diffusers and the NumPy recipe) and speed ratios.

    Prints the tables; see docs/benchmarks.md. diffusers is optional (`pip install udm[bench]`):
    without it the peer columns and the diffusers speed ratios are skipped.
    """
    import benchmarks  # lazily: `udm eq` must stay fast
    from benchmarks import report

    try:
        steps = tuple(int(v) for v in Ts.split(",")) if Ts else benchmarks.FULL_TS
    except ValueError:
        _fail(f"--T must be comma-separated integers, got {Ts!r}")
    if any(T < 1 for T in steps):
        _fail("--T values must be >= 1")
    result = benchmarks.run(part, steps, quick=quick, log=lambda m: click.echo(m, err=True))
    click.echo(report.render(result))
    if compare:
        with open(compare, encoding="utf-8") as fh:
            click.echo(report.compare(json.load(fh), result))
    if json_path:
        report.write_json(result, json_path)
        click.echo(f"udm: wrote {json_path}", err=True)
