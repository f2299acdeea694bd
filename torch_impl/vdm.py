"""Variational diffusion models (section 2.1, eqs. (30)-(100)) in PyTorch.

Hand-written numerically stable forms of the closed forms derived in `derivations.vdm`;
tests/test_vdm.py ties each one to the generated float64 reference over the whole domain.
"""

from __future__ import annotations

import torch

from torch_impl._tensors import check_broadcast, tensor_arg
from udm import register

# --- (region: VDM ELBO, eqs. (30)-(58)) ---


# --- q(x_t | x_0), eqs. (59)-(70) ---


@register(70)
def q_mean(*, x_0: torch.Tensor, alpha_bar_t) -> torch.Tensor:
    r"""Mean of q(x_t | x_0), eq. (70): :math:`\sqrt{\bar\alpha_t}\, x_0`.

    Shapes: x_0 [B, ...]; alpha_bar_t broadcasts against x_0 (use `append_dims` for [B]).
    Domain: 0 < alpha_bar_t <= 1.
    """
    x_0 = tensor_arg("x_0", x_0)
    alpha_bar_t = tensor_arg("alpha_bar_t", alpha_bar_t, "unit", like=x_0)
    check_broadcast(x_0=x_0, alpha_bar_t=alpha_bar_t)
    return alpha_bar_t.sqrt() * x_0


@register(70)
def q_var(*, alpha_bar_t: torch.Tensor) -> torch.Tensor:
    r"""Variance of q(x_t | x_0) per coordinate, eq. (70): :math:`1 - \bar\alpha_t`.

    Domain: 0 < alpha_bar_t <= 1. Exact in floating point for alpha_bar_t >= 1/2
    (Sterbenz), within 1 ulp of the rounded input otherwise.
    """
    alpha_bar_t = tensor_arg("alpha_bar_t", alpha_bar_t, "unit")
    return 1 - alpha_bar_t


@register(69)
def q_sample(*, x_0: torch.Tensor, alpha_bar_t, eps: torch.Tensor) -> torch.Tensor:
    r"""Sample x_t ~ q(x_t | x_0) by reparameterization, eq. (69).

    :math:`x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon`, eps ~ N(0, I)
    of x_0's shape. alpha_bar_t broadcasts against x_0 (use `append_dims` for a [B] vector).
    """
    x_0 = tensor_arg("x_0", x_0)
    eps = tensor_arg("eps", eps)
    alpha_bar_t = tensor_arg("alpha_bar_t", alpha_bar_t, "unit", like=x_0)
    check_broadcast(x_0=x_0, alpha_bar_t=alpha_bar_t, eps=eps)
    return alpha_bar_t.sqrt() * x_0 + (1 - alpha_bar_t).sqrt() * eps


# --- (region: VDM posterior and schedules, eqs. (71)-(85)) ---


# --- KL between Gaussians, eq. (86) ---


@register(86)
def kl_normal(*, mean_q, var_q, mean_p, var_p) -> torch.Tensor:
    r"""KL(N(mean_q, var_q) || N(mean_p, var_p)) per coordinate, eq. (86).

    :math:`\tfrac12\left[\log\frac{\sigma_p^2}{\sigma_q^2} - 1 + \frac{\sigma_q^2 + (\mu_q -
    \mu_p)^2}{\sigma_p^2}\right]`; sum over coordinates for a diagonal covariance. Written
    as r - 1 - log r with r = var_q / var_p, computed as expm1(l) - l, l = log r, which keeps
    the variance term >= 0 and accurate when the variances nearly agree.
    """
    mean_q = tensor_arg("mean_q", mean_q)
    mean_p = tensor_arg("mean_p", mean_p, like=mean_q)
    var_q = tensor_arg("var_q", var_q, "positive", like=mean_q)
    var_p = tensor_arg("var_p", var_p, "positive", like=mean_q)
    check_broadcast(mean_q=mean_q, var_q=var_q, mean_p=mean_p, var_p=var_p)
    log_ratio = torch.log(var_q) - torch.log(var_p)
    return 0.5 * (torch.expm1(log_ratio) - log_ratio + (mean_q - mean_p) ** 2 / var_p)


# --- (region: VDM denoising objective and full ELBO, eqs. (87)-(100)) ---
