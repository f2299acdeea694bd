"""`udm elbo` and `udm sample`: load a checkpoint, bound the likelihood, draw samples."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from udm.model import checkpoint, data, likelihood, optimum, progress
from udm.model.config import Config
from udm.model.train import build, resolve_device


def load_model(path: str | Path, device: str = "cpu", use_ema: bool = True, n: int = 2000):
    """(model, config, held-out data) from a checkpoint; EMA weights by default.

    Held-out data: n fresh draws of an analytic dataset, or the fixed held-out split of
    digits / a user's data (its size, whatever n asks). A user's data must still be where
    training found it, with the same content (sha256)."""
    saved = checkpoint.load(path, map_location=device)
    try:
        config = Config(**saved["config"]).validate()
    except (TypeError, ValueError) as err:
        raise checkpoint.CheckpointError(f"{path}: unusable configuration: {err}") from err
    dev, dtype = resolve_device(device), getattr(torch, config.dtype)
    _check_training_data(path, config)
    dataset = data.load(config.data, n, seed=config.seed, split="test")
    model = build(config, dataset, dev, dtype)
    try:
        model.load_state_dict(saved["ema" if use_ema else "model"])
    except RuntimeError as err:
        raise checkpoint.CheckpointError(f"{path} does not fit its configuration: {err}") from err
    model.eval()
    return model, config, dataset


def _check_training_data(path, config: Config) -> None:
    if config.data in data.BUILTIN:
        return
    if not Path(config.data).exists():
        raise checkpoint.CheckpointError(
            f"{path} was trained on {config.data!r}, which is not there any more"
            + ("" if Path(config.data).is_absolute() else " (a path relative to another folder)")
        )
    if config.data_sha256 and data.fingerprint(config.data) != config.data_sha256:
        raise checkpoint.CheckpointError(
            f"{config.data} changed since {path} was trained on it "
            f"(sha256 then {config.data_sha256[:12]}..., now {data.fingerprint(config.data)[:12]}...)"
        )


def elbo_report(
    path: str | Path,
    n: int = 1000,
    batch: int = 100,
    seed: int = 0,
    device: str = "cpu",
    show_progress: bool = False,
    exact: bool = False,
    ode_steps: int = likelihood.ODE_STEPS,
) -> dict:
    """Full-T negative ELBO on held-out data, bits/dim and nats, with its standard error
    (over samples: it covers the data and the Monte Carlo noise of x_t together).

    For data with a known density (gaussian, mixture) also the class optimum (the best bound
    the model's class reaches, `udm.model.optimum`: closed form for gaussian data and the
    discrete model, else Monte Carlo on the bound's own noise), and the per-sample paired
    gaps: gap = bound - true NLL, training gap = bound - optimum (same x and noise), class
    gap = optimum - true NLL, and gap_controlled: the gap estimated with the optimum as a
    control variate (training gap + class gap per sample, far less noisy). exact: -log p(x) by the probability-flow ODE
    (`udm.model.likelihood`), `ode_steps` RK4 steps."""
    model, config, dataset = load_model(path, device, n=n)
    dev, dtype = next(model.parameters()).device, next(model.parameters()).dtype
    x = dataset.x[:n].to(dev, dtype)
    y = dataset.y[:n].to(dev) if (dataset.y is not None and model.num_classes) else None
    gen = torch.Generator().manual_seed(seed)
    mixture = data.gaussian_mixture(config.data) if dataset.log_prob is not None else None
    posterior = None
    if mixture is not None:

        def posterior(x_t, log_ab):
            return optimum.posterior_moments(x_t, log_ab, mixture)

    bits, best = [], []
    with progress.bar(total=len(x), enabled=show_progress, unit="sample") as bar:
        for i in range(0, len(x), batch):
            yb = y[i : i + batch] if y is not None else None
            xb = x[i : i + batch]
            state = gen.get_state()
            bits.append(model.neg_elbo_bits_per_dim(xb, yb, generator=gen).double().cpu())
            if posterior is not None:  # the same noise: the training gap is paired
                twin = torch.Generator().set_state(state)
                best.append(
                    model.neg_elbo_bits_per_dim(xb, yb, generator=twin, posterior=posterior)
                    .double()
                    .cpu()
                )
            bar.update(len(xb))
    bits = torch.cat(bits).numpy()
    dims = dataset.dims
    nats = bits * dims * math.log(2)
    out = {
        "checkpoint": str(path),
        "data": config.data,
        "n": len(bits),
        "n_requested": n,  # more than the held-out split holds: n is the whole split
        "T": model.T,  # None: continuous time (learned schedule)
        "bits_per_dim": float(bits.mean()),
        "nll_nats": float(nats.mean()),
        "stderr": float(nats.std(ddof=1) / math.sqrt(len(nats))) if len(nats) > 1 else math.nan,
        "stderr_bits_per_dim": float(bits.std(ddof=1) / math.sqrt(len(bits)))
        if len(bits) > 1
        else math.nan,
        "discrete_levels": dataset.levels,
    }
    if dataset.log_prob is not None:
        true = -dataset.log_prob(x.double().cpu().numpy())
        out["true_nll_nats"] = float(true.mean())
        out["true_nll_stderr"] = float(true.std(ddof=1) / math.sqrt(len(true)))
        out["gap_nats"], out["gap_stderr"] = optimum.paired(nats - true)
    if best:
        best_mc = torch.cat(best).numpy() * dims * math.log(2)
        if model.T is not None and len(mixture[0]) == 1:
            opt = optimum.closed_form_optimum(model.schedule, model.variance, x, mixture).numpy()
            out["optimal_method"] = "closed form (Gaussian data)"
        elif len(mixture[0]) == 1:  # continuous time: its ends fix the optimum
            opt = optimum.closed_form_optimum_continuous(
                float(model.noise.omega_min.detach()),
                float(model.noise.omega_max.detach()),
                x,
                mixture,
            ).numpy()
            out["optimal_method"] = "closed form (Gaussian data; the schedule's ends)"
        else:
            opt = best_mc
            out["optimal_method"] = "Monte Carlo (posterior moments of the mixture, same noise)"
        out["variance"] = model.variance
        out["optimal_nll_nats"], out["optimal_stderr"] = optimum.paired(opt)
        out["training_gap_nats"], out["training_gap_stderr"] = optimum.paired(nats - best_mc)
        out["class_gap_nats"], out["class_gap_stderr"] = optimum.paired(opt - true)
        # the gap with the optimum on the same noise as a control variate: per sample
        # (bound - optimum_mc) + (optimum - true), unbiased for E[bound] - E[-log p] since
        # E[optimum_mc] = E[optimum]; its variance lacks most of the bound's Monte Carlo noise
        if opt is not best_mc:  # (with the Monte Carlo optimum it is the gap itself)
            out["gap_controlled_nats"], out["gap_controlled_stderr"] = optimum.paired(
                nats - best_mc + opt - true
            )
    if exact:
        ll = likelihood.model_nll_nats(model, x, y, steps=ode_steps, seed=seed)
        out["exact_nll_nats"], out["exact_nll_stderr"] = optimum.paired(ll["nll"])
        out["exact_divergence"] = ll["divergence"]
        out["exact_ode_steps"] = ode_steps
        if dataset.log_prob is not None:
            out["exact_gap_nats"], out["exact_gap_stderr"] = optimum.paired(ll["nll"] - true)
    return out


def sample_to_files(
    path: str | Path,
    out: str | Path,
    n: int = 64,
    sampler: str = "ancestral",
    steps: int | None = None,
    label: int | None = None,
    guidance_scale: float | None = None,
    seed: int = 0,
    device: str = "cpu",
    show_progress: bool = False,
    eta: float = 0.0,
) -> dict:
    """Draw n samples, write samples.npy and samples.png next to each other in `out`."""
    model, config, dataset = load_model(path, device)
    if label is not None and not (0 <= label < max(model.num_classes, 1)):
        raise ValueError(f"label must lie in 0..{model.num_classes - 1} for this model")
    dev, dtype = next(model.parameters()).device, next(model.parameters()).dtype
    gen = torch.Generator().manual_seed(seed)
    x = model.sample(
        n,
        sampler=sampler,
        steps=steps,
        y=label,
        guidance_scale=guidance_scale,
        eta=eta,
        clip=dataset.levels is not None,
        generator=gen,
        device=dev,
        dtype=dtype,
        progress=show_progress,
    )
    arr = x.double().cpu().numpy()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "samples.npy", arr)
    from udm.model import plots

    title = f"{config.data}: {sampler}" + (
        f", label {label}, gamma {guidance_scale}" if label is not None else ""
    )
    png = plots.samples_figure(
        arr,
        out / "samples.png",
        title,
        reference=dataset.x.double().numpy() if arr.ndim == 2 else None,
    )
    return {"npy": str(out / "samples.npy"), "png": str(png), "n": n, "sampler": sampler}
