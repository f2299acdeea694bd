"""The `udm` command: `udm eq N`, `udm coverage`, `udm verify`, `udm generate`."""

from __future__ import annotations

import errno
import importlib
import json
import math
import os
import sys
import time
from pathlib import Path

import click

from udm import catalog, registry, status
from udm.model import limits
from udm.model.config import FLOAT_RANGES, INT_RANGES, defaults


def _fail(message: str) -> None:
    click.echo(f"udm: {message}", err=True)
    sys.exit(2)


class _Udm(click.Group):
    """click's group, with a usage error as ONE line `udm: ...` on stderr (exit 2), like
    every other refusal of the command line."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as err:
            where = f" (try '{err.ctx.command_path} -h')" if err.ctx is not None else ""
            message = " ".join(err.format_message().split())
            click.echo(f"udm: {message}{where}", err=True)
            sys.exit(err.exit_code)
        except click.ClickException as err:
            click.echo(f"udm: {' '.join(err.format_message().split())}", err=True)
            sys.exit(err.exit_code)
        except click.Abort:
            click.echo("udm: aborted", err=True)
            sys.exit(1)
        except OSError as err:  # `udm schedule linear | head`: as click's standalone mode
            if err.errno != errno.EPIPE:
                raise
            sys.stdout = click.utils.PacifyFlushWrapper(sys.stdout)
            sys.stderr = click.utils.PacifyFlushWrapper(sys.stderr)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


class _FiniteFloatRange(click.FloatRange):
    """A float range that also refuses NaN and infinity (FloatRange lets NaN through)."""

    name = "finite float range"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(
                f"{value!r} is not a finite number in the range {self._describe_range()}",
                param,
                ctx,
            )
        return number


def _count(key: str) -> click.IntRange:
    """The click type of an integer option with the same range as Config's setting `key`."""
    return click.IntRange(*INT_RANGES[key])


def _parse_eq(text: str) -> int | str:
    """The paper's equation number, or a key of a formula beyond it ('ddim.12', 'pf_ode')."""
    if not text.strip().lstrip("-").isdigit():
        try:
            return catalog.lookup(text)
        except KeyError:
            _fail(
                f"{text!r} is not an equation number (valid: 1..{max(catalog.load())}) "
                f"nor a key beyond the paper (`udm coverage` lists them: ddim.12, v.pred, ...)"
            )
    try:
        number = int(text)
    except ValueError:
        _fail(f"{text!r} is not an equation number (valid: 1..{max(catalog.load())})")
    if number not in catalog.load():
        _fail(f"no equation {number} in the paper (valid: 1..{max(catalog.load())})")
    return number


@click.group(
    cls=_Udm, context_settings={"help_option_names": ["-h", "--help"], "show_default": True}
)
@click.version_option(package_name="udm")
def main() -> None:
    """Understanding Diffusion Models (Luo 2022), verified in SymPy, NumPy and PyTorch."""


def _derivation_steps(path: str) -> dict:
    module_name, name = path.rsplit(".", 1)
    derivation = getattr(importlib.import_module(module_name), name)()
    from udm import paper_form
    from udm.derivations.core import RULES
    from udm.derivations.symbols import tex

    return {
        "title": derivation.title,
        "family": derivation.family,
        "steps": [
            {
                "eq": line.step.eq,
                "rule": line.step.rule,
                "rule_meaning": RULES[line.step.rule],
                "why": line.step.why,
                "relation": line.step.latex_relation(),
                "paper_latex": catalog.get(line.step.eq).latex if line.step.eq else None,
                "shown_latex": line.latex,
                "shown_form": line.form,
                "shown_how": line.how,
                "latex": tex(line.step.expr),
            }
            for line in paper_form.lines(path, derivation)
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
    printed, printed_reason = status.printed(n)
    beyond = (
        {"source": entry.source, "source_equation": entry.source_eq, "aliases": list(entry.aliases)}
        if catalog.is_beyond(n)
        else {}
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "number": n,
                    **beyond,
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
                    "printed_match": printed,
                    "printed_match_reason": printed_reason,
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
    if beyond:
        click.echo(f"{n}  [{entry.module}] {entry.source}, {entry.source_eq}")
    else:
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
    click.echo(f"  printed line: {_printed_text(printed, printed_reason)}")
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
            if s["paper_latex"]:
                click.echo(f"    {label:>6} paper:   {s['paper_latex']}")
                label = ""
            form = "machine, paper form" if s["shown_form"] == "paper" else "machine"
            click.echo(f"    {label:>6} {form + ':':8} {s['relation']} {s['shown_latex']}")
            click.echo(f"           [{s['rule']}] {s['why']}")
    click.echo("  tests:")
    for node in record.tests or ["-"]:
        click.echo(f"    {node}")


def _printed_text(printed: bool | None, reason: str) -> str:
    """The paper's printed line against the derivation's line, in words."""
    if printed is True:
        return f"matched ({reason})"
    return f"differs: {reason}" if printed is False else f"not compared: {reason}"


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per equation.")
def coverage(as_json: bool) -> None:
    """Per-section table of equations by status (as `udm verify` computed it), by layer, and
    how many printed lines match their derivation line (`printed`)."""
    eqs, index = catalog.load_all(), registry.index()
    printed = {n: status.printed(n) for n in eqs}
    paper_then_beyond = [*sorted(catalog.load()), *catalog.load_beyond()]
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
                        "printed_match": printed[n][0],
                        "printed_match_reason": printed[n][1],
                        "implementations": {
                            layer: [i.path for i in impls]
                            for layer, impls in index[n].implementations.items()
                        },
                        "tests": index[n].tests,
                        **({"source": eqs[n].source} if catalog.is_beyond(n) else {}),
                    }
                    for n in paper_then_beyond
                ],
                indent=2,
            )
        )
        return
    cols = [*list(registry.STATUSES), "deriv", "ref", "torch", "tested", "printed"]
    head = f"{'section':<16}{'eqs':>5}" + "".join(f"{c:>11}" for c in cols)
    click.echo(head)
    click.echo("-" * len(head))
    for sections, total in ((catalog.SECTIONS, "total"), (catalog.BEYOND_SECTIONS, "beyond")):
        if total == "beyond":  # formulas from other papers: counted apart from the paper's 170
            click.echo("")
            click.echo(f"{'beyond the paper':<16}{'keys':>5}")
            click.echo("-" * len(head))
        totals = [0] * (len(cols) + 1)
        for section in sections:
            records = [index[n] for n in catalog.numbers_in(section)]
            counts = [len(records)]
            counts += [sum(r.status == s for r in records) for s in registry.STATUSES]
            counts += [
                sum(bool(r.implementations[layer]) for r in records) for layer in registry.LAYERS
            ]
            counts += [sum(bool(r.tests) for r in records)]
            counts += [sum(printed[n][0] is True for n in catalog.numbers_in(section))]
            totals = [a + b for a, b in zip(totals, counts, strict=True)]
            click.echo(f"{section:<16}{counts[0]:>5}" + "".join(f"{c:>11}" for c in counts[1:]))
        click.echo("-" * len(head))
        click.echo(f"{total:<16}{totals[0]:>5}" + "".join(f"{c:>11}" for c in totals[1:]))


@main.command()
@click.argument("equations", nargs=-1)
@click.option(
    "--section",
    type=click.Choice((*catalog.SECTIONS, *catalog.BEYOND_SECTIONS)),
    help="Only this section.",
)
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
                f"{mark} {_row_label(row.number)}  {row.status:<10} {row.seconds:7.2f}s  "
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


def _row_label(n) -> str:
    """'eq. ( 85)' for the paper's equations, the key ('ddim.12') for formulas beyond it."""
    return f"{n:<13}" if isinstance(n, str) else f"eq. ({n:>3})"


@main.command()
@click.option("--check", is_flag=True, help="Only report stale files; exit 1 if any.")
def generate(check: bool) -> None:
    """Regenerate reference/_generated/ from the derivations."""
    from udm.derivations import codegen

    changed = codegen.generate(write=not check)
    for file, was_changed in changed.items():
        click.echo(
            f"{'stale' if check and was_changed else 'updated' if was_changed else 'unchanged'}"
            f" {file}"
        )
    sys.exit(1 if check and any(changed.values()) else 0)


# --- `udm schedule` (vdm-post) ---------------------------------------------------------------

_SCHEDULE_COLUMNS = ("t", "alpha_t", "alpha_bar_t", "var_q", "snr", "log_snr")


def _plot_formats() -> dict[str, str]:
    """File extensions matplotlib can save, with their descriptions (needs matplotlib)."""
    from matplotlib.figure import Figure

    return Figure().canvas.get_supported_filetypes()


def _check_plot_path(plot: str, option: str = "--plot") -> bool:
    """The figure path's folder exists and is writable, and matplotlib knows its extension.
    False (with a note on stderr) when matplotlib, an optional dependency, is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        click.echo(f"udm: {option} needs matplotlib (optional; pip install matplotlib)", err=True)
        return False
    formats = _plot_formats()
    path = Path(plot)
    ext = path.suffix.lower().lstrip(".")
    if ext not in formats:
        _fail(
            f"{option} {plot}: unsupported extension {path.suffix or '(none)'!r}; "
            f"matplotlib writes {', '.join('.' + f for f in sorted(formats))}"
        )
    folder = path.parent
    if not folder.is_dir():
        _fail(f"{option} {plot}: folder {folder} does not exist")
    if path.is_dir():
        _fail(f"{option} {plot} is a folder; give a file name such as schedule.png")
    if not os.access(folder, os.W_OK | os.X_OK):
        _fail(f"{option} {plot}: no permission to write in {folder}")
    return True


@main.command("schedule")
@click.argument("name", type=click.Choice(["linear", "scaled-linear", "cosine"]))
@click.option("--T", "T", type=int, default=1000, help=f"Number of steps, 1..{limits.MAX_T}.")
@click.option(
    "--beta-start",
    type=_FiniteFloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="First beta, in (0, 1) (linear schedules; default per schedule).",
)
@click.option(
    "--beta-end",
    type=_FiniteFloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Last beta, in (0, 1) (linear schedules; default per schedule).",
)
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32")
@click.option("--json", "as_json", is_flag=True, help="One object: t and one array per column.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    help="Save a plot (needs matplotlib): .png, .pdf, .svg, ...",
)
def schedule_command(name, T, beta_start, beta_end, dtype, as_json, plot) -> None:
    """Print schedule NAME's coefficients for t = 1..T (torch implementation, chosen dtype).

    Defaults: linear = DDPM (beta 1e-4..0.02), scaled-linear = Stable Diffusion
    (0.00085..0.012), cosine = improved DDPM (s = 0.008); T = 1000. Columns: alpha_t,
    alpha_bar_t, var_q (0 at t = 1), snr, log_snr, indexed by the paper's t (1-based).
    """
    need = T * limits.SCHEDULE_BYTES_PER_T
    if not 1 <= T <= limits.MAX_T:
        extra = f" (it would need about {limits.human(need)}, {need} bytes)" if T > 0 else ""
        _fail(f"--T must be an int >= 1, at most {limits.MAX_T}, got {T}{extra}")
    problem = limits.memory_problem(need)
    if problem:
        _fail(f"--T {T}: {problem}; lower --T")
    if name == "cosine" and (beta_start is not None or beta_end is not None):
        _fail("--beta-start and --beta-end apply to linear and scaled-linear, not cosine")
    if plot and not _check_plot_path(plot):
        plot = None  # no matplotlib: the table, without the figure

    import torch  # lazily: `udm eq` must stay fast

    from udm.torch_impl import vdm

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
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

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
        try:
            fig.savefig(plot)
        except (OSError, ValueError) as err:
            Path(plot).unlink(missing_ok=True)  # no partial figure
            _fail(f"--plot {plot}: cannot write it: {err}")
        finally:
            plt.close(fig)
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

_DEFAULTS = defaults()  # Config's dataclass defaults: what `udm train` uses without a flag


def _train_help(key: str, text: str) -> str:
    """Help text of a `udm train` flag with its range and Config's default (one source)."""
    if key in INT_RANGES:
        lo, hi = INT_RANGES[key]
        text += f" Integer, {lo}..{hi}."
    if key in FLOAT_RANGES:
        lo, hi, lo_open, hi_open = FLOAT_RANGES[key]
        text += f" In {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}."
    default = _DEFAULTS[key]
    if key == "width":
        default = f"{limits.default_width((2,))} for vectors, {limits.default_width((1, 8, 8))} for images"
    elif isinstance(default, bool):
        default = str(default).lower()
    return f"{text}  [default: {default}]"


@main.command()
@click.option(
    "--data",
    help=_train_help("data", "gaussian, mixture, moons, digits, or a .npy file / image folder."),
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, readable=True),
    help="TOML file with the same keys as the flags (top level or [train]); flags win.",
)
@click.option("--steps", type=int, help=_train_help("steps", "Optimizer steps."))
@click.option("--batch-size", type=int, help=_train_help("batch_size", "Samples per step."))
@click.option("--lr", type=float, help=_train_help("lr", "Adam's learning rate."))
@click.option("--T", "T", type=int, help=_train_help("T", "Number of diffusion steps."))
@click.option(
    "--schedule",
    type=click.Choice(["linear", "cosine", "scaled-linear", "learned"]),
    help=_train_help(
        "schedule", "learned: continuous-time VDM with a learned noise schedule (--T ignored)."
    ),
)
@click.option(
    "--target",
    type=click.Choice(["x0", "eps", "score", "v"]),
    help=_train_help("target", "What the network predicts."),
)
@click.option(
    "--weighting",
    type=click.Choice(["simple", "elbo"]),
    help=_train_help("weighting", "DDPM's unweighted eps loss, or the true negative ELBO."),
)
@click.option(
    "--variance",
    type=click.Choice(["small", "large", "learned"]),
    help=_train_help(
        "variance",
        "Reverse variance: sigma_q^2, beta_t, or learned (iDDPM's interpolation, trained "
        "with L_simple + 0.001 L_vlb; with --weighting elbo on the bound).",
    ),
)
@click.option(
    "--width",
    type=int,
    help=_train_help("width", "Network width: even (a multiple of 8 for images)."),
)
@click.option(
    "--conditional/--unconditional",
    default=None,
    help=_train_help("conditional", "Class-conditional (CFG); needs labelled data."),
)
@click.option("--ema-decay", type=float, help=_train_help("ema_decay", "EMA of the weights."))
@click.option("--seed", type=int, help=_train_help("seed", "Random seed."))
@click.option(
    "--device", help=_train_help("device", "cpu, cuda, cuda:N, mps (torchrun sets the rank's GPU).")
)
@click.option(
    "--dtype", type=click.Choice(["float32", "float64"]), help=_train_help("dtype", "Precision.")
)
@click.option(
    "--out",
    help=_train_help("out", "Output folder (checkpoint model.pt, PNG figures); must be writable."),
)
@click.option("--resume", is_flag=True, help="Continue the checkpoint in --out.")
@click.option("--no-plot", is_flag=True, help="Skip the PNG figures.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(config_file, resume, no_plot, quiet, **flags) -> None:
    """Train a diffusion model (multi-process: torchrun --nproc_per_node N -m udm train ...).

    Every value (flag or TOML) is checked before training starts: its type and range, the
    data, the device, that --out is writable, and that the run fits in memory.
    """
    from udm.model import checkpoint
    from udm.model import train as trainer
    from udm.model.config import Config

    if no_plot:
        flags["plot"] = False
    try:
        config = Config.from_sources(config_file, **flags)
        config.preflight(resume=resume)
    except ValueError as err:
        _fail(str(err))
    try:
        path = trainer.train(config, resume=resume, progress=not quiet)
    except (ValueError, FileExistsError, checkpoint.CheckpointError) as err:
        _fail(str(err))
    if int(os.environ.get("RANK", "0")) == 0:  # torchrun: one line, not one per process
        click.echo(f"checkpoint: {path}")


def _open_checkpoint(path: str, device: str):
    """Before `udm elbo` / `udm sample` start: the device exists, the file is a udm checkpoint
    with a usable configuration and finite weights. Returns (config, data info or None)."""
    import torch

    from udm.model import checkpoint
    from udm.model.config import Config, check_device, describe_data

    try:
        check_device(device, "--device")
    except ValueError as err:
        _fail(str(err))
    try:
        saved = checkpoint.load(path, map_location="cpu")
        config = Config(**saved["config"]).validate()
    except checkpoint.CheckpointError as err:
        _fail(str(err))
    except (KeyError, TypeError, ValueError) as err:
        _fail(f"CHECKPOINT {path} is not a usable udm checkpoint: bad configuration ({err})")
    for part in ("ema", "model"):
        weights = saved.get(part)
        if not isinstance(weights, dict):
            _fail(f"CHECKPOINT {path} is not a usable udm checkpoint: no {part} weights")
        for name, value in weights.items():
            if (
                isinstance(value, torch.Tensor)
                and value.is_floating_point()
                and not bool(torch.isfinite(value).all())
            ):
                _fail(
                    f"CHECKPOINT {path} holds NaN or infinite weights ({part}.{name}): the "
                    "run diverged; retrain it"
                )
    try:
        info = describe_data(config.data, "the checkpoint's data")
    except ValueError:
        info = None  # the loader says what is wrong with the data
    return config, info


def _check_memory(need: int, what: str, hint: str) -> None:
    problem = limits.memory_problem(need)
    if problem:
        _fail(f"{what}: {problem}; {hint}")


@main.command()
@click.argument(
    "checkpoint_path", metavar="CHECKPOINT", type=click.Path(exists=True, dir_okay=False)
)
@click.option(
    "--n",
    type=click.IntRange(2, limits.MAX_N),
    default=1000,
    help="Held-out samples (>= 2: the standard error needs two).",
)
@click.option(
    "--batch",
    type=click.IntRange(1, limits.MAX_BATCH),
    default=100,
    help="Samples per pass (the full-T bound feeds T * batch inputs to the network at once).",
)
@click.option("--seed", type=_count("seed"), default=0)
@click.option("--device", default="cpu", help="cpu, cuda, cuda:N or mps.")
@click.option(
    "--exact",
    is_flag=True,
    help="Also -log p(x) by the probability-flow ODE (exact divergence up to 16 coordinates, "
    "Hutchinson's estimator above).",
)
@click.option(
    "--ode-steps",
    type=click.IntRange(1, 100_000),
    default=200,
    help="RK4 steps in log SNR for --exact.",
)
@click.option("--json", "as_json", is_flag=True)
def elbo(checkpoint_path, n, batch, seed, device, exact, ode_steps, as_json) -> None:
    """Full-T ELBO / NLL bound in bits per dimension on held-out data, with standard error.

    For data with a known density (gaussian, mixture): the true NLL, the best bound the
    model's class can reach (optimal_nll_nats) and the per-sample paired gaps: training
    (bound - optimum) and class (optimum - true NLL)."""
    from udm.model import checkpoint, evaluate

    config, info = _open_checkpoint(checkpoint_path, device)
    if info is not None:
        per_pass = config.T if config.schedule != "learned" else 16
        need = limits.elbo_bytes(
            per_pass, min(batch, n), info.shape, config.width, 8 if config.dtype == "float64" else 4
        )
        _check_memory(need, f"--batch {batch} with T = {per_pass}", "lower --batch")
    try:
        report = evaluate.elbo_report(
            checkpoint_path,
            n=n,
            batch=batch,
            seed=seed,
            device=device,
            show_progress=True,
            exact=exact,
            ode_steps=ode_steps,
        )
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
    if report["n"] < report["n_requested"]:
        click.echo(
            f"n = {report['n']}: the whole held-out split (--n asked {report['n_requested']})"
        )
    if "true_nll_nats" in report:
        click.echo(
            f"true NLL of the data: {report['true_nll_nats']:.4f} "
            f"+- {report['true_nll_stderr']:.4f} nats (the bound must not fall below it); "
            f"bound - true NLL, paired per sample: {report['gap_nats']:.4f} "
            f"+- {report['gap_stderr']:.4f} nats"
        )
    if "optimal_nll_nats" in report:
        click.echo(
            f"best bound of this model class ({report.get('variance', 'small')} variance; "
            f"{report['optimal_method']}): {report['optimal_nll_nats']:.4f} "
            f"+- {report['optimal_stderr']:.4f} nats"
        )
        click.echo(
            f"  training gap (bound - class optimum, same x and noise): "
            f"{report['training_gap_nats']:.4f} +- {report['training_gap_stderr']:.4f} nats: "
            "what more training or a better network can remove"
        )
        click.echo(
            f"  class gap (class optimum - true NLL): {report['class_gap_nats']:.4f} "
            f"+- {report['class_gap_stderr']:.4f} nats: the limit of the model class "
            "(its reverse variance and its prior), no training removes it"
        )
    if "gap_controlled_nats" in report:
        click.echo(
            f"  bound - true NLL as training gap + class gap (the optimum as a control "
            f"variate): {report['gap_controlled_nats']:.4f} "
            f"+- {report['gap_controlled_stderr']:.4f} nats"
        )
    if "exact_nll_nats" in report:
        line = (
            f"probability-flow ODE: -log p = {report['exact_nll_nats']:.4f} "
            f"+- {report['exact_nll_stderr']:.4f} nats ({report['exact_divergence']} "
            f"divergence, {report['exact_ode_steps']} RK4 steps)"
        )
        if "exact_gap_nats" in report:
            line += (
                f"; minus the true NLL, paired: {report['exact_gap_nats']:.4f} "
                f"+- {report['exact_gap_stderr']:.4f}"
            )
        click.echo(line)


@main.command()
@click.argument(
    "checkpoint_path", metavar="CHECKPOINT", type=click.Path(exists=True, dir_okay=False)
)
@click.option("--n", type=click.IntRange(1, limits.MAX_N), default=64, help="Samples to draw.")
@click.option("--sampler", type=click.Choice(["ancestral", "ddim"]), default="ancestral")
@click.option(
    "--steps",
    type=click.IntRange(1, limits.MAX_T),
    help="Steps on an evenly spaced grid of t, 1..T: DDIM default min(T, 100), ancestral "
    "default all T (fewer: the respaced chain, q(x_s | x_t, x_0_hat) between grid levels); "
    "learned schedule: default 1000 ancestral / 100 DDIM.",
)
@click.option(
    "--label", type=click.IntRange(0, None), help="Class label, 0..classes-1 (conditional models)."
)
@click.option(
    "--guidance-scale",
    type=_FiniteFloatRange(0, limits.MAX_GUIDANCE),
    help="Classifier-free guidance gamma, eq. (170) (needs --label).",
)
@click.option(
    "--eta",
    type=_FiniteFloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="DDIM's eta (ddim.16): 0 deterministic, 1 the ancestral variance between grid levels.",
)
@click.option("--seed", type=_count("seed"), default=0)
@click.option("--device", default="cpu", help="cpu, cuda, cuda:N or mps.")
@click.option(
    "--out",
    default=None,
    help="Folder for samples.npy and samples.png.  [default: CHECKPOINT's folder/samples]",
)
def sample(
    checkpoint_path, n, sampler, steps, label, guidance_scale, eta, seed, device, out
) -> None:
    """Draw samples: .npy array and a PNG (grid for images, scatter/histogram otherwise)."""
    from udm.model import checkpoint, evaluate
    from udm.model.config import check_writable_folder

    config, info = _open_checkpoint(checkpoint_path, device)
    learned = config.schedule == "learned"
    if steps is not None and not learned:
        if steps > config.T:
            _fail(f"--steps must lie in 1..{config.T} (this model's T), got {steps}")
    if label is not None:
        if not config.conditional:
            _fail(
                "--label applies to a class-conditional model; this one is unconditional "
                "(trained without --conditional)"
            )
        if info is not None and label >= info.num_classes:
            _fail(
                f"--label must lie in 0..{info.num_classes - 1} for this model "
                f"({config.data}, {info.num_classes} classes), got {label}"
            )
    if guidance_scale is not None and label is None:
        _fail("--guidance-scale needs --label (guidance steers towards a class)")
    if eta and sampler != "ddim":
        _fail("--eta applies to --sampler ddim only")
    if info is not None:
        need = limits.sample_bytes(
            n, info.shape, config.width, 8 if config.dtype == "float64" else 4
        )
        _check_memory(need, f"--n {n}", "draw fewer samples per call")
    out = out or str(Path(checkpoint_path).parent / "samples")
    try:
        check_writable_folder(out, "--out")
    except ValueError as err:
        _fail(str(err))
    try:
        result = evaluate.sample_to_files(
            checkpoint_path,
            out,
            n=n,
            sampler=sampler,
            steps=steps,
            label=label,
            guidance_scale=guidance_scale,
            eta=eta,
            seed=seed,
            device=device,
            show_progress=True,
        )
    except (ValueError, checkpoint.CheckpointError) as err:
        _fail(str(err))
    click.echo(f"wrote {result['npy']} and {result['png']}")


# --- `udm bench`: accuracy and speed benchmarks ---


@main.command("bench")
@click.option("--part", type=click.Choice(["accuracy", "speed", "all"]), default="all")
@click.option(
    "--T",
    "Ts",
    default=None,
    help=f"Comma-separated step counts, each 1..{limits.MAX_BENCH_T} (default 10,1000,4000).",
)
@click.option("--quick", is_flag=True, help="Tiny configuration (T = 10, short speed runs).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write results here.")
@click.option(
    "--compare",
    type=click.Path(exists=True, dir_okay=False),
    help="An earlier JSON of udm bench --json to compare.",
)
def bench_command(part, Ts, quick, json_path, compare) -> None:
    """Accuracy (vs 50-digit mpmath, beside diffusers and the NumPy recipe) and speed ratios.

    Prints the tables; see docs/benchmarks.md. diffusers is optional (`pip install udm[bench]`):
    without it the peer columns and the diffusers speed ratios are skipped.
    """
    try:
        steps = tuple(int(v) for v in Ts.split(",")) if Ts else None
    except ValueError:
        _fail(f"--T must be comma-separated integers, got {Ts!r}")
    if steps is not None and any(not 1 <= T <= limits.MAX_BENCH_T for T in steps):
        _fail(f"--T values must lie in 1..{limits.MAX_BENCH_T}, got {Ts}")
    earlier = None
    if compare:
        try:
            with open(compare, encoding="utf-8") as fh:
                earlier = json.load(fh)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            _fail(f"--compare {compare} is not a JSON file of udm bench --json ({err})")
        if not isinstance(earlier, dict) or not ({"accuracy", "speed"} & set(earlier)):
            _fail(
                f"--compare {compare} is JSON but not from udm bench --json "
                "(no 'accuracy' or 'speed' results)"
            )
    if json_path:
        folder = Path(json_path).parent
        if not folder.is_dir():
            _fail(f"--json {json_path}: folder {folder} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            _fail(f"--json {json_path}: no permission to write in {folder}")

    from udm import bench as benchmarks  # lazily: `udm eq` must stay fast
    from udm.bench import report

    result = benchmarks.run(
        part, steps or benchmarks.FULL_TS, quick=quick, log=lambda m: click.echo(m, err=True)
    )
    click.echo(report.render(result))
    if earlier is not None:
        try:
            click.echo(report.compare(earlier, result))
        except (KeyError, TypeError, ValueError) as err:
            _fail(f"--compare {compare}: its results have another layout ({err!r})")
    if json_path:
        report.write_json(result, json_path)
        click.echo(f"udm: wrote {json_path}", err=True)


# --- `udm audit`: the command group lives in udm/audit/cli.py ---
from udm.audit.cli import audit as _audit  # noqa: E402

main.add_command(_audit)
