"""Figure for the score-based models and guidance pages (eqs. (158), (161), (166), (170)).

Left: annealed Langevin trajectories (eq. (158) at the noise levels of eq. (161)) on a 2-D
Gaussian mixture, driven by the exact scores of the sigma-perturbed mixtures. Right:
samples of the VP probability-flow ODE driven by the classifier-free guided score
(eq. (170)) of the mixture, for several guidance scales gamma.

Run from the repository root: `python docs/figures/make_score_figure.py [out.png]`.
Needs matplotlib (optional; nothing in the package or the tests imports it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import udm.torch_impl.guidance as guidance
import udm.torch_impl.score as score

WEIGHTS = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
MEANS = torch.tensor([[-3.0, 0.0], [3.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
VARIANCES = torch.tensor([0.3, 0.3, 0.3], dtype=torch.float64)


def _annealed(n=400, seed=0):
    def score_fn(x, sigma):
        w, m, v = score.noise_perturbed_mixture(
            weights=WEIGHTS, means=MEANS, variances=VARIANCES, sigma=sigma
        )
        return score.gaussian_mixture_score(x=x, weights=w, means=m, variances=v)

    gen = torch.Generator().manual_seed(seed)
    x0 = torch.rand((n, 2), generator=gen, dtype=torch.float64) * 16 - 8
    return score.annealed_langevin_sample(
        score_fn=score_fn,
        x=x0,
        sigmas=np.geomspace(0.05, 5.0, 10),
        step_size=2.5e-4,
        n_steps_each=100,
        generator=gen,
        return_trajectory=True,
    )


def _guided(gamma, y=1, n=600, seed=1):
    def score_fn(x, t):
        return score.vp_mixture_score(x=x, t=t, weights=WEIGHTS, means=MEANS, variances=VARIANCES)

    def cond_fn(x, t):
        w, m, v = score.vp_perturbed_mixture(
            weights=WEIGHTS, means=MEANS, variances=VARIANCES, alpha_bar_t=score.vp_alpha_bar(t=t)
        )
        return guidance.mixture_conditional_score(x=x, y=y, weights=w, means=m, variances=v)

    fn = guidance.cfg_score_fn(score_fn=score_fn, cond_score_fn=cond_fn, guidance_scale=gamma)
    gen = torch.Generator().manual_seed(seed)
    x1 = torch.randn((n, 2), generator=gen, dtype=torch.float64)
    return score.probability_flow_sample(score_fn=fn, x=x1, n_steps=100)


def main(out: str = "docs/figures/score_guidance.png") -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed; nothing drawn")
        return
    scales = (0.0, 1.0, 3.0)
    fig, axes = plt.subplots(1, 1 + len(scales), figsize=(4 * (1 + len(scales)), 4))
    final, traj = _annealed()
    ax = axes[0]
    for i in range(5):  # a few chains, every 10th step
        ax.plot(traj[::10, i, 0], traj[::10, i, 1], lw=0.6, alpha=0.8)
    ax.scatter(final[:, 0], final[:, 1], s=2, c="k")
    ax.set_title("annealed Langevin, eqs. (158), (161)")
    for ax, gamma in zip(axes[1:], scales, strict=True):
        x = _guided(gamma)
        ax.scatter(x[:, 0], x[:, 1], s=2)
        ax.set_title(f"CFG, class 1, gamma = {gamma:g} (eq. (170))")
    for ax in axes:
        ax.set_xlim(-6, 6)
        ax.set_ylim(-4, 6)
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
