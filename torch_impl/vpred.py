"""v-prediction (Salimans and Ho 2022) in PyTorch: the target and its loss weights.

The conversions x_0_hat, eps_hat from v_hat are `udm.torch_impl.interpretations.x_0_from_v` and
`eps_from_v` (keys v.x0, v.eps). Noise levels by alpha_bar_t or, better, log_snr.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from udm import register
from udm.torch_impl._tensors import check_broadcast, tensor_arg


def _level(alpha_bar_t, log_snr, like):
    """(log alpha_bar, log(1 - alpha_bar)) from exactly one of alpha_bar_t, log_snr."""
    if (alpha_bar_t is None) == (log_snr is None):
        raise TypeError("give exactly one of alpha_bar_t, log_snr")
    if log_snr is not None:
        lam = tensor_arg("log_snr", log_snr, like=like)
        return F.logsigmoid(lam), F.logsigmoid(-lam)
    ab = tensor_arg("alpha_bar_t", alpha_bar_t, "open_unit", like=like)
    return torch.log(ab), torch.log1p(-ab)


@register("v.pred")
def v_target(*, x_0, eps, alpha_bar_t=None, log_snr=None) -> torch.Tensor:
    """The v-prediction target v.pred: v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0."""
    x_0 = tensor_arg("x_0", x_0)
    eps = tensor_arg("eps", eps, like=x_0)
    log_ab, log_om = _level(alpha_bar_t, log_snr, x_0)
    check_broadcast(x_0=x_0, eps=eps, level=log_ab)
    return torch.exp(0.5 * log_ab) * eps - torch.exp(0.5 * log_om) * x_0


@register("v.loss")
def v_loss_weight_x0(*, alpha_bar_t=None, log_snr=None) -> torch.Tensor:
    """v.loss: ||v - v_hat||^2 = w ||x_0 - x_0_hat||^2 with w = 1 / (1 - alpha_bar_t) =
    1 + SNR(t) (Salimans and Ho's 'SNR+1' weighting)."""
    _, log_om = _level(alpha_bar_t, log_snr, None)
    return torch.exp(-log_om)


@register("v.loss")
def v_loss_weight_eps(*, alpha_bar_t=None, log_snr=None) -> torch.Tensor:
    """v.loss: ||v - v_hat||^2 = w ||eps - eps_hat||^2 with w = 1 / alpha_bar_t = 1 + 1 / SNR(t)."""
    log_ab, _ = _level(alpha_bar_t, log_snr, None)
    return torch.exp(-log_ab)
