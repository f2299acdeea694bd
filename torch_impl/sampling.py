"""Samplers in PyTorch: timestep grids, respacing, the ancestral and DDIM steps, DDIM
inversion and the probability-flow ODE.

Every step function moves x between two noise levels given as log alpha_bar (float64 is
best; the model keeps its grid in float64): `log_alpha_bar_t` the noisier level, and
`log_alpha_bar_s` the level moved to (0 for alpha_bar = 1, the data). A sampler loops over a
grid of levels, asks its network for x_0_hat / eps_hat at each, and calls one step; nothing
here reads a value back from the device once argument checks are off
(`udm.checks.validate_args(False)`), so a step never waits for the GPU.

Grids are 0-based indices into a schedule of T steps (DDPM-style `timesteps`, noisiest
first, as diffusers lists them); the paper's t is index + 1.

* `timestep_grid(T, k, spacing)`: diffusers' `linspace`, `leading` and `trailing` spacings
  (Lin et al. 2023, Table 2, key zt_snr.spacing), computed with the same float64 operations, so
  the grid is identical to diffusers' for every k (`linspace` is round(i (T - 1) / (k - 1))
  with half-to-even rounding).
* `space_timesteps(T, section_counts)`: improved-diffusion's kept steps (iddpm.respace),
  including its float accumulation; `respace` recomputes the betas of the kept steps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from udm import checks, register
from udm.torch_impl._tensors import check_broadcast, tensor_arg
from udm.torch_impl.vdm import posterior_coefficients

SPACINGS = ("linspace", "leading", "trailing")


def _check_count(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


@register("zt_snr.spacing")
def timestep_grid(T: int, k: int, spacing: str = "linspace", steps_offset: int = 0) -> torch.Tensor:
    """k of the 0-based timesteps 0..T-1, noisiest first, spaced as diffusers does
    (zt_snr.spacing: Lin et al. 2023, Table 2).

    'linspace': round(i (T - 1) / (k - 1)), i = 0..k-1, in float64 as `np.linspace` computes
    it (i times the step), rounded half to even; the grid of improved-diffusion's DDIM
    evaluation and diffusers' `timestep_spacing="linspace"`. 'leading': i * (T // k) +
    steps_offset. 'trailing': round(T - i T / k) - 1, which starts at the last step T - 1
    (diffusers' np.arange(T, 0, -T / k) returns k + 1 values, the last -1, for some k, e.g.
    k = 61 at T = 1000; here always k). Returns an int64 tensor of k indices (fewer distinct
    ones only if k > T, which is refused).
    """
    T, k = _check_count("T", T), _check_count("k", k)
    if k > T:
        raise ValueError(f"k = {k} steps cannot be taken from T = {T}")
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {', '.join(SPACINGS)}, got {spacing!r}")
    i = torch.arange(k, dtype=torch.float64)
    if spacing == "linspace":
        if k == 1:
            grid = i
        else:
            grid = i * ((T - 1) / (k - 1))  # np.linspace: arange(k) * step, last set to stop
            grid[-1] = T - 1
    elif spacing == "leading":
        grid = i * (T // k) + _check_count("steps_offset", steps_offset, low=0)
    else:
        delta = (T + (-T / k)) - T  # np.arange's step as it stores it: (start + step) - start
        grid = (T + i * delta).round() - 1
        return grid.to(torch.int64)
    return torch.round(grid).flip(0).to(torch.int64)


@register("iddpm.respace")
def space_timesteps(T: int, section_counts) -> list[int]:
    """The 0-based steps improved-diffusion keeps (iddpm.respace), sorted increasing.

    `section_counts`: a list of counts (or a string "10,15,20") for equal sections of 0..T-1,
    each strided by (size - 1) / (count - 1) accumulated in float and rounded with Python's
    round (half to even); or "ddimN": the integer stride i with len(range(0, T, i)) == N.
    The accumulation can put a .5 tie on the other side: at T = 1000 the one-section grid
    differs from `timestep_grid(T, k)` for 278 of k = 1..1000 (k = 21: 499 against 500).
    """
    T = _check_count("T", T)
    if isinstance(section_counts, str):
        if section_counts.startswith("ddim"):
            desired = int(section_counts[len("ddim") :])
            for stride in range(1, T):
                if len(range(0, T, stride)) == desired:
                    return list(range(0, T, stride))
            raise ValueError(f"cannot create exactly {desired} steps with an integer stride")
        section_counts = [int(x) for x in section_counts.split(",")]
    size_per, extra = divmod(T, len(section_counts))
    start, kept = 0, []
    for i, count in enumerate(section_counts):
        size = size_per + (1 if i < extra else 0)
        if size < count:
            raise ValueError(f"cannot divide a section of {size} steps into {count}")
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        position = 0.0
        for _ in range(count):
            kept.append(start + round(position))
            position += stride
        start += size
    return sorted(set(kept))


@register("iddpm.respace")
def respace(*, alpha_bar, timesteps) -> dict[str, torch.Tensor]:
    """Respaced chain on the kept steps (iddpm.respace): beta_i = 1 - alpha_bar_{S_i} /
    alpha_bar_{S_{i-1}}, alpha_bar_{S_0} = 1.

    `alpha_bar`: [T] (index 0 is t = 1); `timesteps`: kept 0-based indices (any order).
    Returns alpha_bar (kept, increasing t), beta (the new betas, formed as -expm1 of a log
    ratio: no cancellation) and timestep_map (the kept indices, the network's time input).
    """
    alpha_bar = tensor_arg("alpha_bar", alpha_bar, "unit")
    index = torch.as_tensor(sorted({int(i) for i in timesteps}), dtype=torch.int64)
    if len(index) == 0 or index[0] < 0 or index[-1] >= len(alpha_bar):
        raise ValueError(f"timesteps must be indices in 0..{len(alpha_bar) - 1}")
    log_ab = torch.log(alpha_bar[index.to(alpha_bar.device)])
    log_prev = torch.cat([log_ab.new_zeros(1), log_ab[:-1]])
    return {
        "alpha_bar": alpha_bar[index.to(alpha_bar.device)],
        "beta": -torch.expm1(log_ab - log_prev),
        "timestep_map": index,
    }


def _levels(log_alpha_bar_t, log_alpha_bar_s, like):
    lab_t = tensor_arg("log_alpha_bar_t", log_alpha_bar_t, like=like)
    lab_s = tensor_arg("log_alpha_bar_s", log_alpha_bar_s, like=like)
    check_broadcast(log_alpha_bar_t=lab_t, log_alpha_bar_s=lab_s)
    if checks.validate_args_enabled() and bool(((lab_t >= lab_s) | (lab_s > 0)).any()):
        raise ValueError("need log_alpha_bar_t < log_alpha_bar_s <= 0 (s less noisy than t)")
    return lab_t, lab_s


def _eta(eta, like):
    eta = tensor_arg("eta", eta, like=like)
    if checks.validate_args_enabled() and bool(((eta < 0) | (eta > 1)).any()):
        raise ValueError("eta must lie in [0, 1]")
    return eta


@register("ddim.16", "ddim.eta1")
def ddim_variance(*, eta, log_alpha_bar_t, log_alpha_bar_s) -> torch.Tensor:
    r"""DDIM's sigma_t(eta)^2 between levels t and s < t (ddim.16):
    :math:`\eta^2 \frac{1 - \bar\alpha_s}{1 - \bar\alpha_t}(1 - \bar\alpha_t / \bar\alpha_s)`.

    eta = 1 on the full grid is the DDPM posterior variance sigma_q^2(t) (ddim.eta1). Each
    1 - a is -expm1(log a). Domains: eta in [0, 1], log_alpha_bar_t < log_alpha_bar_s <= 0.
    """
    lab_t, lab_s = _levels(log_alpha_bar_t, log_alpha_bar_s, None)
    eta = _eta(eta, lab_t)
    om_t, om_s = -torch.expm1(lab_t), -torch.expm1(lab_s) + 0.0
    return eta**2 * om_s / om_t * -torch.expm1(lab_t - lab_s)


@register("ddim.7", "ddim.12", "ddim.16")
def ddim_step(
    *, x_0_hat, eps_hat, log_alpha_bar_t, log_alpha_bar_s, eta=0.0, noise=None
) -> torch.Tensor:
    r"""One DDIM step from level t to s < t (ddim.12), sigma_t = sigma_t(eta) (ddim.16):

    .. math:: x_s = \sqrt{\bar\alpha_s}\hat x_0 + \sqrt{1 - \bar\alpha_s - \sigma_t^2}\hat\epsilon
              + \sigma_t \epsilon.

    With the true x_0 in place of x_0_hat it draws from DDIM's posterior q_sigma(x_s | x_t,
    x_0) (ddim.7). eta = 0: deterministic (noise unused); eta = 1 on a stride-1 grid: the ancestral step of
    eqs. (84), (85) (with eps_hat the noise that x_0_hat implies). On a strided grid any eta
    in [0, 1] is allowed. At alpha_bar_s = 1 it returns x_0_hat. `noise` (x's shape) is
    needed when eta > 0. 1 - alpha_bar_s - sigma^2 = (1 - alpha_bar_s)(1 - eta^2 (1 -
    alpha_bar_t / alpha_bar_s) / (1 - alpha_bar_t)): a product of nonnegative factors.
    Levels broadcast against x (`append_dims` for [B] vectors).
    """
    x_0_hat = tensor_arg("x_0_hat", x_0_hat)
    eps_hat = tensor_arg("eps_hat", eps_hat, like=x_0_hat)
    lab_t, lab_s = _levels(log_alpha_bar_t, log_alpha_bar_s, x_0_hat)
    eta = _eta(eta, lab_t)
    check_broadcast(x_0_hat=x_0_hat, eps_hat=eps_hat, log_alpha_bar_t=lab_t)
    om_t, om_s = -torch.expm1(lab_t), -torch.expm1(lab_s) + 0.0
    # (1 - alpha_bar_t / alpha_bar_s) / (1 - alpha_bar_t)
    ratio = -torch.expm1(lab_t - lab_s) / om_t
    var = eta**2 * om_s * ratio
    direction = torch.sqrt(om_s * (1 - eta**2 * ratio)).to(x_0_hat.dtype)
    x_s = torch.exp(0.5 * lab_s).to(x_0_hat.dtype) * x_0_hat + direction * eps_hat
    if noise is None:
        if checks.validate_args_enabled() and bool((eta != 0).any()):
            raise ValueError("eta > 0 needs noise (standard normal, x's shape)")
        return x_s
    noise = tensor_arg("noise", noise, like=x_0_hat)
    return x_s + torch.sqrt(var).to(x_0_hat.dtype) * noise


@register("ddim.13")
def ddim_invert_step(*, x_0_hat, eps_hat, log_alpha_bar_s, log_alpha_bar_t) -> torch.Tensor:
    r"""DDIM inversion (ddim.13 run upwards): from x_s to the noisier level t > s,

    .. math:: x_t = \sqrt{\bar\alpha_t}\hat x_0 + \sqrt{1 - \bar\alpha_t}\hat\epsilon,

    with the predictions made at (x_s, s). It is ddim.13's Euler step in x / sqrt(alpha_bar)
    against sqrt((1 - alpha_bar) / alpha_bar), taken towards more noise; `ddim_step` with the
    same predictions maps x_t back to x_s exactly (it is exact when the predictions do not
    change between the levels, approximate for a network, improving as the grid refines).
    """
    x_0_hat = tensor_arg("x_0_hat", x_0_hat)
    eps_hat = tensor_arg("eps_hat", eps_hat, like=x_0_hat)
    lab_t, _ = _levels(log_alpha_bar_t, log_alpha_bar_s, x_0_hat)  # checks t is noisier
    check_broadcast(x_0_hat=x_0_hat, eps_hat=eps_hat, log_alpha_bar_t=lab_t)
    sqrt_om_t = torch.sqrt(-torch.expm1(lab_t)).to(x_0_hat.dtype)
    return torch.exp(0.5 * lab_t).to(x_0_hat.dtype) * x_0_hat + sqrt_om_t * eps_hat


@register(84, 85, "iddpm.respace")
def ancestral_step(
    *, x_t, x_0_hat, log_alpha_bar_t, log_alpha_bar_s, noise=None, variance="small"
) -> torch.Tensor:
    """x_s ~ p(x_s | x_t) = N(mu_q(x_t, x_0_hat), var) between levels t > s, eqs. (84), (85).

    On a respaced grid the step's alpha is alpha_bar_t / alpha_bar_s (iddpm.respace).
    variance: 'small' is sigma_q^2 (eq. (85)), 'large' is the step's beta = 1 - alpha_bar_t /
    alpha_bar_s (DDPM's other choice). At alpha_bar_s = 1 the mean is x_0_hat and no noise
    is added.
    """
    x_t = tensor_arg("x_t", x_t)
    x_0_hat = tensor_arg("x_0_hat", x_0_hat, like=x_t)
    lab_t, lab_s = _levels(log_alpha_bar_t, log_alpha_bar_s, x_t)
    if variance not in ("small", "large"):
        raise ValueError(f"variance must be 'small' or 'large', got {variance!r}")
    post = posterior_coefficients(log_alpha_bar_t=lab_t, log_alpha_bar_prev=lab_s)
    mean = post["coef_x_t"].to(x_t.dtype) * x_t + post["coef_x_0"].to(x_t.dtype) * x_0_hat
    if noise is None:
        return mean
    var = post["var_q"] if variance == "small" else -torch.expm1(lab_t - lab_s)
    var = torch.where(lab_s == 0, torch.zeros_like(var), var)  # the last step: the mean
    return mean + torch.sqrt(var).to(x_t.dtype) * tensor_arg("noise", noise, like=x_t)


@register("sde.13")
def pf_ode_drift(*, x_t, eps_hat, log_snr) -> torch.Tensor:
    r"""The probability-flow ODE of the VP SDE (sde.13) in log-SNR time:

    .. math:: \frac{dx}{d\lambda} = \tfrac12\left((1 - \bar\alpha)x - \sqrt{1 - \bar\alpha}\,\hat\epsilon\right),
              \quad 1 - \bar\alpha = \mathrm{sigmoid}(-\lambda).

    From dx = [f - g^2 score / 2] dt with f = -beta x / 2, g^2 = beta, d log alpha_bar / dt =
    -beta and score = -eps / sqrt(1 - alpha_bar) (eq. (151)); lambda = log SNR increases
    towards the data. Its Euler step in x / sqrt(alpha_bar) is the deterministic DDIM step.
    """
    x_t = tensor_arg("x_t", x_t)
    eps_hat = tensor_arg("eps_hat", eps_hat, like=x_t)
    log_snr = tensor_arg("log_snr", log_snr, like=x_t)
    check_broadcast(x_t=x_t, eps_hat=eps_hat, log_snr=log_snr)
    om = torch.sigmoid(-log_snr)
    return 0.5 * (om * x_t - torch.exp(0.5 * F.logsigmoid(-log_snr)) * eps_hat)


@register("sde.13")
def pf_ode_step(
    *, x_t, eps_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], log_snr_t, log_snr_s
) -> torch.Tensor:
    """One Heun (second-order) step of the probability-flow ODE (sde.13) from log SNR
    lambda_t to lambda_s; eps_fn(x, log_snr) is the noise prediction. Negative steps
    (lambda_s < lambda_t) integrate towards the noise: the likelihood direction."""
    x_t = tensor_arg("x_t", x_t)
    lam_t = tensor_arg("log_snr_t", log_snr_t, like=x_t)
    lam_s = tensor_arg("log_snr_s", log_snr_s, like=x_t)
    h = lam_s - lam_t
    d_t = pf_ode_drift(x_t=x_t, eps_hat=eps_fn(x_t, lam_t), log_snr=lam_t)
    x_euler = x_t + h * d_t
    d_s = pf_ode_drift(x_t=x_euler, eps_hat=eps_fn(x_euler, lam_s), log_snr=lam_s)
    return x_t + 0.5 * h * (d_t + d_s)


@register(109)
def log_snr_of(log_alpha_bar: torch.Tensor) -> torch.Tensor:
    """log SNR = log alpha_bar - log(1 - alpha_bar), +inf at alpha_bar = 1, eq. (109)."""
    return log_alpha_bar - torch.log(-torch.expm1(log_alpha_bar))


__all__ = [
    "SPACINGS",
    "ancestral_step",
    "ddim_invert_step",
    "ddim_step",
    "ddim_variance",
    "log_snr_of",
    "pf_ode_drift",
    "pf_ode_step",
    "respace",
    "space_timesteps",
    "timestep_grid",
]
