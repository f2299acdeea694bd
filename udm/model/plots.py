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


def elbo_terms_figure(terms_per_t: np.ndarray, path: Path) -> Path:
    """Mean per-t denoising-matching KL (nats per dimension) against t."""
    fig = plt.figure(figsize=(6, 3.5))
    t = np.arange(1, len(terms_per_t) + 1)
    plt.plot(t, terms_per_t)
    plt.yscale("log")
    plt.xlabel("t")
    plt.ylabel("KL term (nats / dim)")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


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
    """loss.png, elbo_terms.png (per-t terms of the EMA model on held-out data),
    samples.png (EMA model) and, if given, samples_during_training.png."""
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
    terms, _ = model_ema.elbo_terms(held_out, y, generator=gen)
    paths.append(
        elbo_terms_figure(
            terms.mean(0).double().cpu().numpy() / dataset.dims, out / "elbo_terms.png"
        )
    )
    x = model_ema.sample(
        256 if dataset.dims <= 2 else 64,
        sampler="ddim",
        steps=100,
        clip=dataset.levels is not None,
        generator=gen,
        device=device,
        dtype=dtype,
    )
    ref = dataset.x.double().numpy() if dataset.dims <= 2 else None
    paths.append(samples_figure(x.double().cpu().numpy(), out / "samples.png", "EMA samples", ref))
    if snapshots:
        paths.append(snapshots_figure(snapshots, out / "samples_during_training.png", ref))
    return paths


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
