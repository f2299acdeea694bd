"""Improved DDPM (Nichol and Dhariwal 2021) in PyTorch: the interpolated reverse variance."""

from __future__ import annotations

import torch

from udm import register
from udm.torch_impl._tensors import check_broadcast, tensor_arg


@register("iddpm.15", "iddpm.between")
def interpolated_log_variance(*, v_interp, log_beta_t, log_var_q) -> torch.Tensor:
    """log Sigma_theta = v log beta_t + (1 - v) log sigma_q^2(t) (iddpm.15).

    For v in [0, 1] the variance lies between sigma_q^2(t) and beta_t (iddpm.between).
    improved-diffusion maps a network output u in [-1, 1] to v = (u + 1) / 2 and uses
    log sigma_q^2 clipped at t = 1 (where sigma_q^2 = 0) to its value at t = 2.
    """
    v_interp = tensor_arg("v_interp", v_interp)
    log_beta_t = tensor_arg("log_beta_t", log_beta_t, like=v_interp)
    log_var_q = tensor_arg("log_var_q", log_var_q, like=v_interp)
    check_broadcast(v_interp=v_interp, log_beta_t=log_beta_t, log_var_q=log_var_q)
    return v_interp * log_beta_t + (1 - v_interp) * log_var_q


@register("iddpm.15")
def interpolated_variance(*, v_interp, beta_t, var_q) -> torch.Tensor:
    """Sigma_theta = exp(v log beta_t + (1 - v) log sigma_q^2(t)) (iddpm.15)."""
    beta_t = tensor_arg("beta_t", beta_t, "positive")
    var_q = tensor_arg("var_q", var_q, "positive", like=beta_t)
    return torch.exp(
        interpolated_log_variance(
            v_interp=v_interp, log_beta_t=torch.log(beta_t), log_var_q=torch.log(var_q)
        )
    )
