"""Zero terminal SNR (Lin et al. 2023, Algorithm 1, key zt_snr.1) in PyTorch."""

from __future__ import annotations

import torch

from udm import register
from udm.torch_impl._tensors import tensor_arg


@register("zt_snr.1")
def zero_terminal_snr(*, alpha_bar) -> torch.Tensor:
    """Rescale a schedule's alpha_bar ([T], t = 1..T) to zero terminal SNR (zt_snr.1).

    sqrt(alpha_bar_t)' = (sqrt(alpha_bar_t) - sqrt(alpha_bar_T)) sqrt(alpha_bar_1) /
    (sqrt(alpha_bar_1) - sqrt(alpha_bar_T)): alpha_bar_T' = 0 exactly, alpha_bar_1' =
    alpha_bar_1, and the order is kept. Needs alpha_bar decreasing (alpha_bar_1 >
    alpha_bar_T). The last beta becomes 1 (x_T carries no signal): an eps-predicting model
    cannot be sampled from there, a v- or x_0-predicting one can.
    """
    alpha_bar = tensor_arg("alpha_bar", alpha_bar, "unit")
    if alpha_bar.ndim != 1 or len(alpha_bar) < 2:
        raise ValueError("alpha_bar must be a 1-D schedule of at least 2 steps")
    s = alpha_bar.sqrt()
    first, last = s[0].clone(), s[-1].clone()
    if bool(first <= last):
        raise ValueError("alpha_bar must decrease from t = 1 to t = T")
    scaled = (s - last) * (first / (first - last))
    scaled[-1] = 0.0  # exact: s_T - s_T
    return scaled**2
