"""Evidence lower bound (background, eqs. (1)-(16)) in PyTorch.

The linear-Gaussian latent model z ~ N(0, 1), x | z ~ N(w z + b, var_x) with
q(z | x) = N(mean_q, var_q), elementwise (every argument broadcasts): exact log-evidence,
true posterior, ELBO, KL to the posterior, and a reparameterized Monte Carlo ELBO
estimator. tests/test_elbo.py ties each to the generated float64 reference.
"""

from __future__ import annotations

import math

import torch

from udm import register
from udm.torch_impl import _stable
from udm.torch_impl._tensors import check_broadcast, tensor_arg

_LOG_2PI = math.log(2 * math.pi)


def _model(x_0, w, b, var_x):
    x_0 = tensor_arg("x_0", x_0)
    w = tensor_arg("w", w, like=x_0)
    b = tensor_arg("b", b, like=x_0)
    var_x = tensor_arg("var_x", var_x, "positive", like=x_0)
    return x_0, w, b, var_x


def _q(mean_q, var_q, like):
    mean_q = tensor_arg("mean_q", mean_q, like=like)
    var_q = tensor_arg("var_q", var_q, "positive", like=like)
    return mean_q, var_q


@register(1)
def log_evidence(*, x_0, w, b, var_x) -> torch.Tensor:
    r"""Exact log p(x) of the linear-Gaussian latent model, eq. (1): log N(x; b, w^2 + var_x)."""
    x_0, w, b, var_x = _model(x_0, w, b, var_x)
    check_broadcast(x_0=x_0, w=w, b=b, var_x=var_x)
    s = w**2 + var_x
    return -0.5 * (_LOG_2PI + torch.log(s) + (x_0 - b) ** 2 / s)


@register(2)
def posterior_mean(*, x_0, w, b, var_x) -> torch.Tensor:
    r"""Mean of the true posterior p(z | x), eq. (2): w (x - b) / (w^2 + var_x)."""
    x_0, w, b, var_x = _model(x_0, w, b, var_x)
    check_broadcast(x_0=x_0, w=w, b=b, var_x=var_x)
    return w * (x_0 - b) / (w**2 + var_x)


@register(2)
def posterior_var(*, w, var_x) -> torch.Tensor:
    r"""Variance of the true posterior p(z | x), eq. (2): var_x / (w^2 + var_x)."""
    w = tensor_arg("w", w)
    var_x = tensor_arg("var_x", var_x, "positive", like=w)
    check_broadcast(w=w, var_x=var_x)
    return var_x / (w**2 + var_x)


def _elbo_terms(x_0, w, b, var_x, mean_q, var_q):
    recon = -0.5 * (_LOG_2PI + torch.log(var_x)) - ((x_0 - w * mean_q - b) ** 2 + w**2 * var_q) / (
        2 * var_x
    )
    log_v = torch.log(var_q)
    prior_kl = 0.5 * (mean_q**2 + torch.expm1(log_v) - log_v)  # (m^2 + v - 1 - log v) / 2
    return recon, prior_kl


@register(3)
def elbo(*, x_0, w, b, var_x, mean_q, var_q) -> torch.Tensor:
    r"""ELBO E_q[log p(x, z) / q(z | x)] of the linear-Gaussian latent model, eq. (3).

    Reconstruction E_q[log p(x | z)] minus KL(q || N(0, 1)); every argument broadcasts.
    """
    x_0, w, b, var_x = _model(x_0, w, b, var_x)
    mean_q, var_q = _q(mean_q, var_q, x_0)
    check_broadcast(x_0=x_0, w=w, b=b, var_x=var_x, mean_q=mean_q, var_q=var_q)
    recon, prior_kl = _elbo_terms(x_0, w, b, var_x, mean_q, var_q)
    return recon - prior_kl


@register(15, 16)
def kl_to_posterior(*, x_0, w, b, var_x, mean_q, var_q) -> torch.Tensor:
    r"""KL(q(z | x) || p(z | x)) = log p(x) - ELBO, eqs. (15), (16), in closed form.

    Computed directly as a Gaussian KL (r - 1 - log r = expm1mx(log r), r = var_q / var_post,
    `udm.torch_impl._stable`), not as the difference log p(x) - ELBO, which would cancel
    catastrophically near the optimum.
    """
    x_0, w, b, var_x = _model(x_0, w, b, var_x)
    mean_q, var_q = _q(mean_q, var_q, x_0)
    check_broadcast(x_0=x_0, w=w, b=b, var_x=var_x, mean_q=mean_q, var_q=var_q)
    s = w**2 + var_x
    mean_post, var_post = w * (x_0 - b) / s, var_x / s
    variances = _stable.expm1mx(_stable.log_ratio(var_q, var_post))
    return 0.5 * (variances + (mean_q - mean_post) ** 2 / var_post)


@register(3, 7, 8)
def elbo_monte_carlo(
    *, x_0, w, b, var_x, mean_q, var_q, n_samples: int = 1, generator=None
) -> torch.Tensor:
    r"""Reparameterized Monte Carlo estimate of the ELBO, eqs. (3), (8).

    (1/n) sum_l [log p(x, z_l) - log q(z_l | x)], z_l = mean_q + sqrt(var_q) eps_l: an
    unbiased estimate of eq. (3) with variance proportional to 1 / n_samples (eq. (7)'s
    expectation under q). Shapes broadcast; `generator` seeds the noise.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be an int >= 1, got {n_samples!r}")
    x_0, w, b, var_x = _model(x_0, w, b, var_x)
    mean_q, var_q = _q(mean_q, var_q, x_0)
    shape = check_broadcast(x_0=x_0, w=w, b=b, var_x=var_x, mean_q=mean_q, var_q=var_q)
    eps = torch.randn((n_samples, *shape), dtype=x_0.dtype, device=x_0.device, generator=generator)
    z = mean_q + var_q.sqrt() * eps
    log_joint = -0.5 * (2 * _LOG_2PI + torch.log(var_x) + (x_0 - w * z - b) ** 2 / var_x + z**2)
    log_q = -0.5 * (_LOG_2PI + torch.log(var_q) + eps**2)
    return (log_joint - log_q).mean(0)
