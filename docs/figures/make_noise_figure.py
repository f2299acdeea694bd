"""Draw the noise-schedule figure of the noise_params / interpretations pages.

Left: log SNR(t) of the linear (DDPM), cosine (Nichol & Dhariwal), scaled-linear (Stable
Diffusion) and a learned VDM schedule (`udm.torch_impl.noise_params.LearnedNoiseSchedule` at its
random initialization, endpoints -13.3 and 5). Middle: SNR(t) on a log axis with the x_0-loss
weight (SNR(t-1) - SNR(t)) / 2 of eq. (110). Right: the three parameterizations for 1-D
Gaussian-mixture data at one noise level: the optimal x_0, eps and score predictions as
functions of x_t (eqs. (115), (133), (151)), from the exact mixture oracle.

    python docs/figures/make_noise_figure.py [out.png]

matplotlib is an optional dependency: only this script needs it; tests never import it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere in the repo


def _alpha_bars(T: int = 1000) -> dict[str, np.ndarray]:
    t = np.arange(1, T + 1)
    linear = np.cumprod(1 - np.linspace(1e-4, 0.02, T))
    scaled = np.cumprod(1 - np.linspace(0.00085**0.5, 0.012**0.5, T) ** 2)
    s = 0.008
    f = np.cos((t / T + s) / (1 + s) * np.pi / 2) ** 2 / np.cos(s / (1 + s) * np.pi / 2) ** 2
    betas = np.clip(1 - f / np.concatenate([[1.0], f[:-1]]), 0, 0.999)
    cosine = np.cumprod(1 - betas)
    return {"linear": linear, "cosine": cosine, "scaled linear": scaled}


def main(out: str = "noise_schedules.png") -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # optional dependency
        sys.exit("matplotlib is not installed: pip install matplotlib")
    import torch

    import udm.reference.interpretations as ri
    import udm.torch_impl.noise_params as tnp

    T = 1000
    u = np.arange(1, T + 1) / T
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.2))
    for name, ab in _alpha_bars(T).items():
        log_snr = np.log(ab) - np.log1p(-ab)
        (line,) = ax1.plot(u, log_snr, label=name)
        snr, color = np.exp(log_snr), line.get_color()
        ax2.semilogy(u, snr, color=color, label=f"SNR, {name}")
        ax2.semilogy(
            u[1:], (snr[:-1] - snr[1:]) / 2, ls=":", color=color, label=f"weight (110), {name}"
        )
    torch.manual_seed(0)
    learned = tnp.LearnedNoiseSchedule(hidden=64, dtype=torch.float64)
    with torch.no_grad():
        omega = learned(torch.tensor(u)).numpy()
    (line,) = ax1.plot(u, -omega, label="learned (VDM, init)")
    ax2.semilogy(u, np.exp(-omega), color=line.get_color(), label="SNR, learned")
    ax1.set(xlabel="t / T", ylabel="log SNR(t) = -omega(t)", title="log-SNR (eqs. (109), (111))")
    ax2.set(xlabel="t / T", title="SNR and the x_0-loss weight")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=6)

    weights, means, variances = (
        np.array([0.4, 0.6]),
        np.array([[-2.0], [1.5]]),
        np.array([0.1, 0.3]),
    )
    ab = 0.5
    x_t = np.linspace(-4, 4, 400)[:, None]
    kw = {"weights": weights, "means": means, "variances": variances, "alpha_bar_t": ab}
    x0 = ri.gaussian_mixture_posterior_mean(x_t=x_t, **kw)[:, 0]
    score = ri.gaussian_mixture_score(x_t=x_t, **kw)[:, 0]
    eps = ri.eps_from_score(score_hat=score, alpha_bar_t=ab)
    ax3.plot(x_t[:, 0], x0, label="x_0_hat = E[x_0 | x_t]")
    ax3.plot(x_t[:, 0], eps, label="eps_hat = -sqrt(1 - alpha_bar) score")
    ax3.plot(x_t[:, 0], score, label="score = grad log p(x_t)")
    ax3.set(xlabel="x_t", title=f"optimal predictions, mixture data, alpha_bar = {ab}")
    ax3.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
