"""The best bound a model class can reach, for data whose density is known (a Gaussian mixture).

A model's negative ELBO is minimized, t by t, by the exact posterior moments of the data:

* the mean: every term is a (weighted) squared error in x_0_hat, minimized by E[x_0 | x_t];
* the variance, where the class lets it vary ('learned': iDDPM's interpolation with an
  unclamped v is any positive variance per coordinate): the KL to q(x_{t-1} | x_t, x_0)
  averaged over x_0 | x_t is minimized by sigma_q^2 + coef_x_0^2 Var(x_0 | x_t), the true
  Var(x_{t-1} | x_t); the t = 1 decoder's by Var(x_0 | x_1). 'small' and 'large' fix it.

So the class optimum is the model's own bound with the network replaced by the posterior
(`posterior_moments`, Gaussian conditioning per component): `DiffusionModel.optimal_predict`,
`ContinuousDiffusionModel` with `posterior=`. For one Gaussian (the `gaussian` data) every
expectation over x_t given x_0 is closed form (`closed_form_optimum`), written here apart
from the bound's code so the two check each other (tests/test_optimum.py).
"""

from __future__ import annotations

import math

import numpy as np
import torch

import udm.torch_impl._mixture as M


def mixture_tensors(mixture, like: torch.Tensor):
    """(weights [K], means [K, D], variances [K, D]) as tensors of like's dtype and device."""
    return tuple(
        torch.as_tensor(np.asarray(a), dtype=like.dtype, device=like.device) for a in mixture
    )


def posterior_moments(x_t: torch.Tensor, log_alpha_bar: torch.Tensor, mixture):
    """(E[x_0 | x_t], Var(x_0 | x_t)) per coordinate, [N, D] each, for data from the diagonal
    Gaussian mixture sum_k w_k N(m_k, diag(v_k)) and x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps:
    the mixture oracle `udm.torch_impl._mixture.vp_posterior_moments` (Gaussian conditioning per
    component, weighted by the responsibilities). x_t [N, D]; log_alpha_bar [N] (any shape
    with N elements); 1 - ab as -expm1(log ab)."""
    weights, means, variances = mixture_tensors(mixture, x_t)
    x = x_t.reshape(x_t.shape[0], -1)
    lab = log_alpha_bar.reshape(-1).to(x.dtype)
    mean, var = M.vp_posterior_moments(
        x, weights, means, variances, torch.exp(lab), -torch.expm1(lab)
    )
    return mean.reshape(x_t.shape), var.reshape(x_t.shape)


def closed_form_optimum(schedule, variance: str, x_0: torch.Tensor, mixture) -> torch.Tensor:
    """The class optimum of the discrete model's negative ELBO per sample [B] in nats,
    E over x_{1:T} given x_0, for data from ONE diagonal Gaussian N(m, diag(v)) (closed form).

    With k_t = sqrt(ab) v / (ab v + 1 - ab) the posterior mean is m + k_t (x_t - sqrt(ab) m),
    so x_0 - E[x_0 | x_t] = (x_0 - m)(1 - k_t sqrt(ab)) - k_t sqrt(1 - ab) eps and
    e_t = E[(x_0 - E[x_0 | x_t])^2 | x_0] = (x_0 - m)^2 (1 - k_t sqrt(ab))^2 + k_t^2 (1 - ab);
    Var(x_0 | x_t) = V_t = v (1 - ab) / (ab v + 1 - ab). Per t >= 2 and coordinate, with the
    class's variance s^2: (1/2)[r - 1 - log r + c_t^2 e_t / s^2], r = sigma_q^2 / s^2 (eq. (86));
    t = 1: (1/2) log(2 pi s_1^2) + e_1 / (2 s_1^2); plus the prior KL. s^2 = sigma_q^2 (small;
    s_1^2 = var_q(2)), beta_t (large; beta_1), sigma_q^2 + c_t^2 V_t (learned; V_1 at t = 1).
    """
    weights, means, variances = mixture_tensors(mixture, x_0.double())
    if len(weights) != 1:
        raise ValueError("closed_form_optimum needs data from one Gaussian (K = 1)")
    f64 = schedule.coefficients(torch.float64, "cpu")
    ab = f64["alpha_bar_t"][None, :, None]  # [1, T, 1]
    om = -torch.expm1(torch.log(f64["alpha_bar_t"]))[None, :, None]
    beta = f64["beta_t"][None, :, None]
    var_q = f64["var_q"][None, :, None]
    coef = f64["mu_q_coef_x_0"][None, :, None]
    m, v = means[0], variances[0]  # [D]
    x = x_0.double().cpu().reshape(x_0.shape[0], 1, -1)  # [B, 1, D]
    k = ab.sqrt() * v / (ab * v + om)
    e = (x - m) ** 2 * (1 - k * ab.sqrt()) ** 2 + k**2 * om  # [B, T, D]
    V = v * om / (ab * v + om)
    if variance == "small":
        s2 = var_q.clone()
        s2[:, 0] = var_q[:, 1] if schedule.T > 1 else beta[:, 0]  # the clipped decoder
    elif variance == "large":
        s2 = beta.expand_as(var_q)
    elif variance == "learned":
        s2 = var_q + coef**2 * V
        s2[:, 0] = V[:, 0]
    else:
        raise ValueError(f"unknown variance {variance!r}")
    s2 = s2.expand(x.shape[0], -1, x.shape[-1])
    r = var_q[:, 1:] / s2[:, 1:]
    kl = 0.5 * (r - 1 - torch.log(r) + coef[:, 1:] ** 2 * e[:, 1:] / s2[:, 1:])
    decoder = 0.5 * torch.log(2 * math.pi * s2[:, 0]) + e[:, 0] / (2 * s2[:, 0])
    ab_T = f64["alpha_bar_t"][-1]
    prior = 0.5 * (ab_T * x[:, 0] ** 2 - ab_T - torch.log1p(-ab_T))
    return kl.sum((1, 2)) + decoder.sum(-1) + prior.sum(-1)


def closed_form_optimum_continuous(
    omega_min: float, omega_max: float, x_0: torch.Tensor, mixture, grid: int = 200_001
) -> torch.Tensor:
    """The class optimum of the continuous-time VDM bound per sample [B] in nats, E over the
    noise given x_0, for data from ONE diagonal Gaussian N(m, diag(v)), schedule endpoints
    omega_min = -log SNR(0), omega_max = -log SNR(1).

    prior KL(q(x_1 | x_0) || N(0, I)) + reconstruction E[-log N(x_0; z_0 / sqrt(ab_0),
    e^omega_min)] = (1/2)(log 2 pi + omega_min + 1) per coordinate + the diffusion loss
    (1/2) int omega'(t) E||eps - eps*(x_t)||^2 dt = (1/2) int_{omega_min}^{omega_max} E(omega)
    d omega (it depends on the schedule only through its ends), where with ab = sigmoid(-omega),
    k = sqrt(ab) v / (ab v + 1 - ab) and g = (1 - sqrt(ab) k) / sqrt(1 - ab):
    eps - eps* = (1 - g sqrt(1 - ab)) eps - g sqrt(ab) (x_0 - m), so E = (1 - g sqrt(1 - ab))^2
    + g^2 ab (x_0 - m)^2. The omega integral: trapezoid rule on `grid` points (float64).
    """
    weights, means, variances = mixture_tensors(mixture, x_0.double())
    if len(weights) != 1:
        raise ValueError("closed_form_optimum_continuous needs data from one Gaussian (K = 1)")
    m, v = means[0].cpu(), variances[0].cpu()
    x = x_0.double().cpu().reshape(x_0.shape[0], -1)  # [B, D]
    omega = torch.linspace(float(omega_min), float(omega_max), grid, dtype=torch.float64)
    ab = torch.sigmoid(-omega)[:, None]  # [G, 1]
    om = torch.sigmoid(omega)[:, None]
    k = ab.sqrt() * v / (ab * v + om)
    g = (1 - ab.sqrt() * k) / om.sqrt()
    a = (1 - g * om.sqrt()) ** 2  # [G, D]
    b = g**2 * ab  # [G, D]
    A = torch.trapezoid(a, omega, dim=0)  # [D]
    Bc = torch.trapezoid(b, omega, dim=0)
    diffusion = 0.5 * (A + Bc * (x - m) ** 2).sum(1)
    ab_1 = torch.sigmoid(torch.tensor(-float(omega_max), dtype=torch.float64))
    prior = 0.5 * (ab_1 * x**2 - ab_1 - torch.log1p(-ab_1)).sum(1)
    recon = 0.5 * (math.log(2 * math.pi) + float(omega_min) + 1) * x.shape[1]
    return prior + recon + diffusion


def paired(a: np.ndarray) -> tuple[float, float]:
    """(mean, standard error) of per-sample values."""
    a = np.asarray(a, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else math.nan
