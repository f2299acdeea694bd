"""Hierarchical VAEs (background, eqs. (23)-(29)) in PyTorch: the Markovian HVAE ELBO.

The estimator samples the Markov encoder of eq. (24) by reparameterization and averages
the log-ratio of eq. (29), with the generative joint of eq. (23).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from udm import register
from udm.torch_impl._tensors import tensor_arg

_LOG_2PI = math.log(2 * math.pi)
GaussianFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _log_normal(x, mean, log_var):
    return -0.5 * (_LOG_2PI + log_var + (x - mean) ** 2 * torch.exp(-log_var))


@register(23, 24, 28, 29)
def markov_hvae_elbo(
    *,
    x_0: torch.Tensor,
    encoders: Sequence[GaussianFn],
    decoders: Sequence[GaussianFn],
    n_samples: int = 1,
    generator: torch.Generator | None = None,
    eps: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    r"""Monte Carlo estimate of the Markovian HVAE ELBO, eqs. (28), (29), per example.

    Encoder (eq. (24)): encoders[t - 1](z_{t-1}) = (mean, log_var) of q(z_t | z_{t-1}),
    z_0 = x. Generative model (eq. (23)): p(z_T) = N(0, I) and decoders[t - 1](z_t) =
    (mean, log_var) of p(z_{t-1} | z_t), so decoders[0] is p(x | z_1). Returns
    (1/L) sum_l [log p(x, z_{1:T}^l) - log q(z_{1:T}^l | x)] with L = n_samples: unbiased for
    the ELBO. Shapes: x_0 [B, d]; each z_t [B, k_t] as the callables return. `eps` (optional)
    gives the standard normal noise per level, each [L, B, k_t], instead of sampling.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be an int >= 1, got {n_samples!r}")
    if len(encoders) != len(decoders) or not encoders:
        raise ValueError(
            f"need T >= 1 encoders and T decoders, got {len(encoders)} and {len(decoders)}"
        )
    if eps is not None and len(eps) != len(encoders):
        raise ValueError(f"eps must hold one noise tensor per level ({len(encoders)})")
    x_0 = tensor_arg("x_0", x_0)
    z_prev = x_0.expand(n_samples, *x_0.shape)
    log_ratio = torch.zeros((n_samples, x_0.shape[0]), dtype=x_0.dtype, device=x_0.device)
    zs = [z_prev]
    for t, encoder in enumerate(encoders):
        mean, log_var = encoder(z_prev)
        if eps is None:
            noise = torch.randn(
                mean.shape, dtype=mean.dtype, device=mean.device, generator=generator
            )
        else:
            noise = tensor_arg(f"eps[{t}]", eps[t], like=mean)
            if noise.shape != mean.shape:
                raise ValueError(
                    f"eps[{t}] has shape {tuple(noise.shape)}, expected {tuple(mean.shape)}"
                )
        z = mean + torch.exp(0.5 * log_var) * noise
        log_ratio = log_ratio - (-0.5 * (_LOG_2PI + log_var + noise**2)).sum(-1)  # - log q
        zs.append(z)
        z_prev = z
    z_T = zs[-1]
    log_ratio = log_ratio - 0.5 * (_LOG_2PI + z_T**2).sum(-1)  # log p(z_T), p = N(0, I)
    for t, decoder in enumerate(decoders, start=1):
        mean, log_var = decoder(zs[t])
        log_ratio = log_ratio + _log_normal(zs[t - 1], mean, log_var).sum(-1)
    return log_ratio.mean(0)
