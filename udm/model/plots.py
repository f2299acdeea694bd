"""PNG figures a person wants to see: loss curve, ELBO terms per t, samples (scatter or grid)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt
import numpy as np


def samples_figure(
    x: np.ndarray, path: Path, title: str = "samples", reference: np.ndarray | None = None
) -> Path:
    """1-D: histogram; 2-D: scatter; images [N, C, H, W]: a grid. Optional data overlay."""
    fig = plt.figure(figsize=(5, 5))
    if x.ndim == 2 and x.shape[1] == 1:
        bins = np.linspace(-4, 4, 81)
        if reference is not None:
            plt.hist(reference[:, 0], bins=bins, density=True, alpha=0.4, label="data")
        plt.hist(x[:, 0], bins=bins, density=True, alpha=0.6, label="model")
        plt.legend()
    elif x.ndim == 2 and x.shape[1] == 2:
        if reference is not None:
            plt.scatter(*reference[:2000].T, s=2, alpha=0.3, label="data")
        plt.scatter(*x[:2000].T, s=2, alpha=0.6, label="model")
        plt.axis("equal")
        plt.legend(markerscale=4)
    else:
        images = x[:, 0] if x.ndim == 4 else x
        n = int(np.ceil(np.sqrt(len(images))))
        grid = np.ones((n * 9, n * 9))
        for i, img in enumerate(images[: n * n]):
            r, c = divmod(i, n)
            grid[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8] = img
        plt.imshow(grid, cmap="gray_r", vmin=-1, vmax=1)
        plt.axis("off")
    plt.title(title)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def loss_figure(history: list[tuple[int, float]], path: Path) -> Path:
    fig = plt.figure(figsize=(6, 3.5))
    steps, losses = zip(*history, strict=True) if history else ((), ())
    plt.plot(steps, losses)
    plt.yscale("log")
    plt.xlabel("step")
    plt.ylabel("training loss")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def elbo_terms_figure(
    t: np.ndarray, per_t: np.ndarray, parts: dict[str, float], path: Path, *, continuous: bool
) -> Path:
    """Left: the bound's per-t terms (positive, log axis) against t. Right: the bound split
    into its parts (eq. (58): reconstruction, denoising matching, prior matching), signed,
    since the reconstruction term of continuous data is a log-density and may be negative."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5), gridspec_kw={"width_ratios": [2, 1]})
    left.plot(t, per_t)
    if len(per_t) and (per_t > 0).all():
        left.set_yscale("log")
    left.set_xlabel("t" if not continuous else "t (continuous time, in [0, 1])")
    left.set_ylabel(
        "denoising KL L_t, t >= 2 (nats / dim)"
        if not continuous
        else "(1/2) d(-log SNR)/dt ||eps - eps_hat||^2\n(nats / dim)"
    )
    left.set_title("denoising-matching terms" if not continuous else "diffusion-loss integrand")
    names, values = list(parts), list(parts.values())
    bars = right.barh(names, values, color=["C0" if v >= 0 else "C3" for v in values])
    right.bar_label(bars, fmt="%.3g", label_type="center")
    right.margins(x=0.15)
    right.axvline(0, color="k", lw=0.5)
    right.invert_yaxis()
    right.set_xlabel("nats / dim")
    right.set_title(f"-ELBO = {sum(values):.4g} nats / dim")
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def _elbo_parts(model, x_0, y, dims: int, generator) -> tuple[np.ndarray, np.ndarray, dict]:
    """(t, per-t terms, parts) per dimension, averaged over the held-out batch x_0."""
    import torch

    terms, prior = model.elbo_terms(x_0, y, generator=generator)
    terms = terms.double().mean(0).cpu().numpy() / dims
    prior = float(prior.double().mean()) / dims
    if model.T is None:  # continuous time: terms are integrand / grid at midpoints
        grid = len(terms)
        eps = torch.randn(x_0.shape, generator=generator, dtype=x_0.dtype).to(x_0.device)
        recon = float(model.reconstruction_term(x_0, eps).double().mean()) / dims
        t = (np.arange(grid) + 0.5) / grid
        parts = {"reconstruction": recon, "diffusion loss": terms.sum(), "prior KL": prior}
        return t, terms * grid, parts
    t = np.arange(2, len(terms) + 1)
    parts = {"L_1 reconstruction": terms[0], "sum of L_t, t >= 2": terms[1:].sum()}
    return t, terms[1:], {**parts, "prior KL": prior}


def training_report(
    out: Path,
    model,
    ema,
    dataset,
    history,
    device,
    dtype,
    snapshots: list[tuple[int, np.ndarray]] | None = None,
) -> list[Path]:
    """loss.png, elbo_terms.png (the bound's terms for the EMA model on held-out data),
    samples.png (EMA model, ancestral sampler) and, if given, samples_during_training.png."""
    import copy

    import torch

    out = Path(out)
    paths = [loss_figure(history, out / "loss.png")]
    model_ema = copy.deepcopy(model)
    model_ema.load_state_dict(ema.state_dict())
    model_ema.eval()
    held_out = dataset.x[:64].to(device=device, dtype=dtype)
    y = dataset.y[:64].to(device) if (dataset.y is not None and model.num_classes) else None
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        t, per_t, parts = _elbo_parts(model_ema, held_out, y, dataset.dims, gen)
    paths.append(
        elbo_terms_figure(t, per_t, parts, out / "elbo_terms.png", continuous=model.T is None)
    )
    x = sample_preview(model_ema, dataset, device, dtype, n=256 if dataset.dims <= 2 else 64)
    ref = dataset.x.double().numpy() if dataset.dims <= 2 else None
    paths.append(samples_figure(x, out / "samples.png", "EMA samples (ancestral)", ref))
    if snapshots:
        paths.append(snapshots_figure(snapshots, out / "samples_during_training.png", ref))
    return paths


def sample_preview(model, dataset, device, dtype, n: int) -> np.ndarray:
    """Samples for a figure: the ancestral sampler (eqs. (84), (85)), whose fresh noise at
    every step forgives a denoiser's error at the noisiest t; DDIM amplifies it there (see
    README, "DDIM and the first step"). Fixed seed, so figures over training compare."""
    import torch

    with torch.no_grad():
        x = model.sample(
            n,
            sampler="ancestral",
            clip=dataset.levels is not None,
            generator=torch.Generator().manual_seed(0),
            device=device,
            dtype=dtype,
        )
    return x.double().cpu().numpy()


def snapshots_figure(
    snapshots: list[tuple[int, np.ndarray]], path: Path, reference: np.ndarray | None = None
) -> Path:
    """A row of small sample plots at the training steps given."""
    fig, axes = plt.subplots(1, len(snapshots), figsize=(3 * len(snapshots), 3), squeeze=False)
    for ax, (step, x) in zip(axes[0], snapshots, strict=True):
        if x.ndim == 2 and x.shape[1] == 2:
            if reference is not None:
                ax.scatter(*reference[:1000].T, s=1, alpha=0.2)
            ax.scatter(*x.T, s=2)
            ax.set_aspect("equal")
        elif x.ndim == 2:
            ax.hist(x[:, 0], bins=40, density=True)
        else:
            images = x[:16, 0]
            ax.imshow(
                np.concatenate(
                    [
                        np.concatenate(list(images[r * 4 : r * 4 + 4]), 1)
                        for r in range(len(images) // 4)
                    ],
                    0,
                ),
                cmap="gray_r",
                vmin=-1,
                vmax=1,
            )
            ax.axis("off")
        ax.set_title(f"step {step}")
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path
