"""`udm audit scheduler` and `udm audit elbo` (registered on the `udm` group by udm/cli.py).

Exit codes: 0 within tolerance, 1 when a finding fails (ulps above --max-ulps, a formula
difference), 2 for bad input (one line naming the argument and the valid range)."""

from __future__ import annotations

import json
import sys

import click


def _bad(message: str) -> None:
    click.echo(f"udm audit: {message}", err=True)
    sys.exit(2)


@click.group("audit")
def audit() -> None:
    """Check your own diffusion code (diffusers schedulers, tables, networks) against the
    verified math: coefficients in ulps against 50-digit truth, conventions, step(), ELBO."""


@audit.command("scheduler")
@click.argument("source", metavar="SOURCE")
@click.option(
    "--expect",
    help="linear, cosine, scaled-linear or sigmoid: the schedule SOURCE claims to be.",
)
@click.option("--beta-start", type=float, help="Expected first beta (linear schedules).")
@click.option("--beta-end", type=float, help="Expected last beta (linear schedules).")
@click.option("--T", "T", type=int, help="Expected number of training steps.")
@click.option(
    "--max-ulps",
    type=float,
    default=4.0,
    show_default=True,
    help="Tolerance per table in ulps of its dtype.",
)
@click.option(
    "--steps", type=int, default=50, show_default=True, help="Inference steps for the grid check."
)
@click.option(
    "--table", help="betas, alphas or alphas_cumprod: what an array file holds (default: guessed)."
)
@click.option("--no-step", is_flag=True, help="Skip the step() comparison.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Save ulps per t per coefficient.")
def scheduler_command(
    source, expect, beta_start, beta_end, T, max_ulps, steps, table, no_step, as_json, plot
) -> None:
    """Audit a scheduler config JSON, a folder holding one (scheduler_config.json or
    scheduler/scheduler_config.json), `udm schedule --json` output, or a .npy / .txt array of
    betas or alphas_cumprod (any float dtype, 0- or 1-based)."""
    from udm.audit import schedule

    if expect is not None and expect not in schedule.EXPECT_NAMES:
        _bad(f"--expect must be one of {', '.join(schedule.EXPECT_NAMES)}, got {expect!r}")
    if table is not None and table not in ("betas", "alphas", "alphas_cumprod"):
        _bad(f"--table must be betas, alphas or alphas_cumprod, got {table!r}")
    if not max_ulps >= 0:
        _bad(f"--max-ulps must be >= 0, got {max_ulps}")
    if T is not None and T < 2:
        _bad(f"--T must be an integer >= 2, got {T}")
    if steps < 1:
        _bad(f"--steps must be >= 1, got {steps}")
    for name, v in (("--beta-start", beta_start), ("--beta-end", beta_end)):
        if v is not None and not 0 < v < 1:
            _bad(f"{name} must lie in (0, 1), got {v}")
    try:
        report = schedule.scheduler_source(
            source,
            expect=expect,
            beta_start=beta_start,
            beta_end=beta_end,
            T=T,
            max_ulps=max_ulps,
            steps=steps,
            check_steps=not no_step,
            table=table,
        )
    except schedule.AuditInputError as err:
        _bad(str(err))
    if plot:
        write_plot(report, plot)
        click.echo(f"udm audit: wrote {plot}", err=True)
    click.echo(json.dumps(report.to_json(), indent=1) if as_json else report.render())
    sys.exit(0 if report.passed else 1)


def write_plot(report, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    coefs = report.coefficients
    cols = 4
    rows = max(1, -(-len(coefs) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(12, 2.4 * rows), squeeze=False, sharex=True)
    for ax, c in zip(axes.flat, coefs, strict=False):
        t = np.arange(1, c.ulps.size + 1)
        ax.semilogy(t, np.maximum(c.ulps, 1e-3), lw=0.6)
        ax.axhline(report.max_ulps, color="k", ls="--", lw=0.8)
        ax.set_title(f"{c.name} ({c.dtype}): max {c.max_ulps:.3g}", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(coefs) :]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("t", fontsize=8)
    fig.suptitle(
        f"udm audit: ulps per t, {report.declared}; dashed: tolerance {report.max_ulps:g}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@audit.command("elbo")
@click.argument("model", metavar="MODEL")
@click.option(
    "--images", required=True, help=".npy array [N, C, H, W] / [N, H, W, C], or a folder."
)
@click.option(
    "--scheduler", "scheduler_source", help="Scheduler config JSON / folder (default: MODEL's)."
)
@click.option("--module", "module_class", help="module:Class of a state dict's network.")
@click.option("--module-kwargs", default="{}", help="JSON keyword arguments for Class.")
@click.option("--n", type=int, default=None, help="Use the first N images (default all).")
@click.option("--batch", type=int, default=16, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32")
@click.option("--json", "as_json", is_flag=True)
@click.option("--plot", type=click.Path(dir_okay=False), help="Save the per-t terms plot.")
def elbo_command(
    model,
    images,
    scheduler_source,
    module_class,
    module_kwargs,
    n,
    batch,
    seed,
    dtype,
    as_json,
    plot,
) -> None:
    """Full-T negative ELBO in bits/dim (improved-diffusion's calc_bpd_loop quantity) of an
    eps-prediction network MODEL (a diffusers model folder, or a state dict / .safetensors
    with --module module:Class) on your 8-bit images, with our verified terms."""
    from udm.audit import likelihood

    if n is not None and n < 1:
        _bad(f"--n must be >= 1, got {n}")
    if batch < 1:
        _bad(f"--batch must be >= 1, got {batch}")
    try:
        kwargs = json.loads(module_kwargs)
        if not isinstance(kwargs, dict):
            raise ValueError
    except ValueError:
        _bad(f"--module-kwargs must be a JSON object, got {module_kwargs!r}")
    try:
        result = likelihood.elbo_from_files(
            model,
            images,
            scheduler_source=scheduler_source,
            module_class=module_class,
            module_kwargs=kwargs,
            n=n,
            batch=batch,
            seed=seed,
            dtype=dtype,
        )
    except likelihood.LoadError as err:
        _bad(str(err))
    if plot:
        likelihood.plot_terms(result, plot)
        click.echo(f"udm audit: wrote {plot}", err=True)
    if as_json:
        out = {k: v for k, v in result.items() if k != "terms"}
        out["terms_bits_per_dim"] = result["terms"].tolist()
        click.echo(json.dumps(out, indent=1))
    else:
        click.echo(likelihood.render(result))
