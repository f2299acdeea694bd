"""Score-based generative models (section 3, eqs. (152)-(161)) in PyTorch.

Batched, device-agnostic: device and dtype follow the inputs; randomness comes from a
`torch.Generator` on the data's device. Gaussian mixtures are `weights` [K], `means`
[K, D] and `variances` [K] or [K, D]; data `x` is [B, D]. Noise scales follow NOTATION:
sigma_1 < ... < sigma_L (`sigmas` strictly increasing); samplers anneal from the largest.
tests/test_score.py ties every function to `udm.reference.score` and to independent oracles.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from udm import checks, register
from udm.torch_impl import _mixture
from udm.torch_impl._tensors import tensor_arg

BETA_MIN, BETA_MAX = checks.VP_BETA_MIN, checks.VP_BETA_MAX  # Song et al. (2021)

# --- argument checks (private) ----------------------------------------------------------------


def _count(name: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be an int >= 1, got {n!r}")
    return n


def _step(step_size) -> float:
    if isinstance(step_size, torch.Tensor):
        step_size = float(step_size)  # entry point only: a scalar hyperparameter
    checks.positive("step_size", step_size)
    return float(step_size)


def _sigmas(sigmas, like: torch.Tensor) -> torch.Tensor:
    sigmas = torch.as_tensor(sigmas, dtype=like.dtype, device=like.device)
    checks.positive("sigmas", sigmas)
    if sigmas.ndim != 1 or sigmas.numel() < 1:
        raise ValueError("sigmas must be a non-empty 1-D sequence sigma_1 < ... < sigma_L")
    if bool((sigmas[1:] <= sigmas[:-1]).any()):
        raise ValueError("sigmas must be strictly increasing (sigma_1 < ... < sigma_L)")
    return sigmas


def _generator(generator, x: torch.Tensor) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != x.device.type:
        raise ValueError(f"generator is on {generator.device}, data on {x.device}")
    return generator


def _randn(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


# --- the energy-based model, eqs. (152)-(156) ---------------------------------------------------


@register(152, 153, 154, 155, 156)
def score_from_energy(
    *, energy_fn: Callable, x: torch.Tensor, create_graph: bool = False
) -> torch.Tensor:
    """Score of p(x) = exp(-f(x)) / Z, eqs. (152)-(156): -grad f(x), by autograd.

    energy_fn maps x [B, ...] to per-sample energies [B]; Z is never needed (eq. (155)).
    """
    x = tensor_arg("x", x)
    with torch.enable_grad():
        x_ = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy_fn(x_).sum(), x_, create_graph=create_graph)
    return -grad


# --- the Gaussian-mixture oracle, eqs. (159), (160) ---------------------------------------------


@register(159)
def gaussian_mixture_log_prob(*, x, weights, means, variances) -> torch.Tensor:
    """log p(x) of the Gaussian mixture sum_k c_k N(means_k, diag(variances_k)), eq. (159).

    x [..., D] -> [...]. means/variances may carry leading batch dims [..., K, D]
    (a per-sample perturbed mixture, see `vp_perturbed_mixture`).
    """
    x = tensor_arg("x", x)
    return _mixture.log_prob(x, *_mixture.check_batched(weights, means, variances))


@register(159)
def gaussian_mixture_score(*, x, weights, means, variances) -> torch.Tensor:
    """Exact score of a Gaussian mixture, eq. (159): sum_k r_k(x) (-(x - means_k)/variances_k).

    r = softmax of the component log-densities (responsibilities). x [..., D] -> [..., D].
    """
    x = tensor_arg("x", x)
    return _mixture.score(x, *_mixture.check_batched(weights, means, variances))


@register(159, 160)
def vp_perturbed_mixture(*, weights, means, variances, alpha_bar_t):
    """The mixture of eq. (159) under the VP forward process, eq. (160).

    Components N(mu, v) -> N(sqrt(alpha_bar_t) mu, alpha_bar_t v + 1 - alpha_bar_t).
    alpha_bar_t: scalar, or [B] for per-sample times (then means/variances are [B, K, D]).
    """
    weights, means, variances = _mixture.check(weights, means, variances)
    alpha_bar_t = tensor_arg("alpha_bar_t", alpha_bar_t, "unit", like=means)
    return weights, *_mixture.vp_perturbed(means, variances, alpha_bar_t, 1 - alpha_bar_t)


@register(160)
def noise_perturbed_mixture(*, weights, means, variances, sigma):
    """The mixture of eq. (159) perturbed by N(0, sigma^2 I), eq. (160): variances + sigma^2.

    sigma: scalar or [B] (then variances are [B, K, D]).
    """
    weights, means, variances = _mixture.check(weights, means, variances)
    sigma = tensor_arg("sigma", sigma, "positive", like=means)
    s = sigma.reshape(*sigma.shape, 1, 1)
    return weights, means.expand(*s.shape[:-2], *means.shape), variances + s**2


# --- the SDE view of the VP process (prose after eq. (161)) --------------------------------------


@register(161)
def vp_beta(*, t, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX) -> torch.Tensor:
    """beta(t) = beta_min + t (beta_max - beta_min) of the VP SDE (the SDE view of eq. (161))."""
    return _beta(tensor_arg("t", t, "closed_unit"), beta_min, beta_max)


def _beta(t, beta_min, beta_max):
    """beta(t) of the VP SDE, unchecked (the samplers call it at every step)."""
    return beta_min + t * (beta_max - beta_min)


@register(161)
def vp_alpha_bar(*, t, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX) -> torch.Tensor:
    """alpha_bar(t) = exp(-int_0^t beta) of the VP SDE (continuous view of eq. (161)), t in
    [0, 1]."""
    t = tensor_arg("t", t, "closed_unit")
    return torch.exp(-(beta_min * t + 0.5 * (beta_max - beta_min) * t**2))


@register(159, 160, 161)
def vp_mixture_score(
    *, x, t, weights, means, variances, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX
) -> torch.Tensor:
    """Exact score grad log p_t(x) of a Gaussian mixture under the VP SDE, eqs. (159)-(161).

    The perturbed mixture is again a mixture (eq. (160)); t scalar or [B] matching x [B, D].
    The oracle for the reverse-SDE / probability-flow samplers.
    """
    x = tensor_arg("x", x)
    t = tensor_arg("t", t, like=x)
    w, m, v = vp_perturbed_mixture(
        weights=weights,
        means=means,
        variances=variances,
        alpha_bar_t=vp_alpha_bar(t=t, beta_min=beta_min, beta_max=beta_max),
    )
    return gaussian_mixture_score(x=x, weights=w, means=m, variances=v)


# --- Langevin dynamics, eq. (158), annealed over the noise scales of eq. (161) ------------------


@register(158)
def langevin_step(*, x, score, step_size, eps) -> torch.Tensor:
    """One Langevin update, eq. (158): x + c score + sqrt(2 c) eps (c = step_size > 0)."""
    x, score, eps = tensor_arg("x", x), tensor_arg("score", score), tensor_arg("eps", eps)
    checks.same_shape(x=x, score=score, eps=eps)
    return _langevin(x, score, _step(step_size), eps)


def _langevin(x, score, c, eps):
    """x + c score + sqrt(2 c) eps, unchecked (the samplers call it at every step); c a float
    or a 0-d tensor."""
    return x + c * score + (2 * c) ** 0.5 * eps


@register(158)
def langevin_sample(
    *, score_fn: Callable, x, step_size, n_steps: int, generator: torch.Generator
) -> torch.Tensor:
    """n_steps of Langevin dynamics, eq. (158), from x [B, D]; score_fn(x) -> [B, D]."""
    x = tensor_arg("x", x)
    c, n_steps = _step(step_size), _count("n_steps", n_steps)
    generator = _generator(generator, x)
    for _ in range(n_steps):
        x = _langevin(x, score_fn(x), c, _randn(x, generator))
    return x


@register(158, 161)
def annealed_langevin_step_sizes(*, sigmas, step_size, like: torch.Tensor | None = None):
    """Song & Ermon's step sizes step_size * sigma_i^2 / sigma_min^2, eqs. (158), (161).

    Same order as sigmas (sigma_1 < ... < sigma_L, so sigma_min = sigma_1).
    """
    like = like if like is not None else torch.empty((), dtype=torch.get_default_dtype())
    sigmas = _sigmas(sigmas, like)
    return _step(step_size) * (sigmas / sigmas[0]) ** 2


@register(158, 161)
def annealed_langevin_sample(
    *,
    score_fn: Callable,
    x,
    sigmas,
    step_size,
    n_steps_each: int,
    generator: torch.Generator,
    denoise: bool = False,
    return_trajectory: bool = False,
):
    """Annealed Langevin dynamics (eq. (158) at each noise level of eq. (161)).

    score_fn(x, sigma) -> [B, D]; levels from sigma_L down to sigma_1, n_steps_each steps
    each with Song & Ermon's step sizes; denoise=True adds x + sigma_1^2 score_fn(x, sigma_1).
    return_trajectory=True also returns the states after every step, [n_steps, B, D].
    """
    x = tensor_arg("x", x)
    sigmas = _sigmas(sigmas, x)
    steps = annealed_langevin_step_sizes(sigmas=sigmas, step_size=step_size, like=x)
    n_steps_each = _count("n_steps_each", n_steps_each)
    generator = _generator(generator, x)
    trajectory = []
    for i in reversed(range(sigmas.numel())):
        sigma_i, alpha_i = sigmas[i], steps[i]
        for _ in range(n_steps_each):
            x = _langevin(x, score_fn(x, sigma_i), alpha_i, _randn(x, generator))
            if return_trajectory:
                trajectory.append(x)
    if denoise:
        x = x + sigmas[0] ** 2 * score_fn(x, sigmas[0])
    return (x, torch.stack(trajectory)) if return_trajectory else x


# --- score-matching objectives, eqs. (157), (161) -----------------------------------------------


def _sum_data_dims(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).sum(1) if v.ndim > 1 else v


@register(157)
def explicit_score_matching_loss(*, score_hat, score) -> torch.Tensor:
    """||s_theta(x) - grad log p(x)||^2 per sample, eq. (157) ([B, ...] -> [B])."""
    score_hat, score = tensor_arg("score_hat", score_hat), tensor_arg("score", score)
    checks.same_shape(score_hat=score_hat, score=score)
    return _sum_data_dims((score_hat - score) ** 2)


@register(157, 161)
def denoising_score_matching_loss(*, score_hat, eps, sigma) -> torch.Tensor:
    """Denoising score matching per sample, eqs. (157), (161): ||s(x~) + eps / sigma||^2.

    x~ = x + sigma eps; sigma broadcasts against eps [B, ...] (use `append_dims` for [B]).
    """
    score_hat, eps = tensor_arg("score_hat", score_hat), tensor_arg("eps", eps)
    sigma = tensor_arg("sigma", sigma, "positive", like=eps)
    checks.same_shape(score_hat=score_hat, eps=eps)
    return _sum_data_dims((score_hat + eps / sigma) ** 2)


@register(161)
def multi_noise_score_matching_loss(*, score_hat, eps, sigma) -> torch.Tensor:
    """sigma^2-weighted denoising objective of eq. (161) per sample: ||sigma s + eps||^2."""
    score_hat, eps = tensor_arg("score_hat", score_hat), tensor_arg("eps", eps)
    sigma = tensor_arg("sigma", sigma, "positive", like=eps)
    checks.same_shape(score_hat=score_hat, eps=eps)
    return _sum_data_dims((sigma * score_hat + eps) ** 2)


@register(157)
def sliced_score_matching_loss(
    *, score_fn: Callable, x, n_projections: int = 1, generator: torch.Generator
) -> torch.Tensor:
    """Sliced score matching (Song et al. 2019), a tractable form of eq. (157), per sample.

    E_v[v^T grad_x (v^T s(x)) + (v^T s(x))^2 / 2], v ~ N(0, I): equals
    E_x ||s - grad log p||^2 / 2 minus a constant free of the model (integration by parts)
    without the true score. x [B, D] -> [B], averaged over n_projections draws of v.
    """
    x = tensor_arg("x", x)
    generator = _generator(generator, x)
    total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    with torch.enable_grad():
        x_ = x.detach().requires_grad_(True)
        s = score_fn(x_)
        for _ in range(_count("n_projections", n_projections)):
            v = _randn(x_, generator)
            sv = (s * v).flatten(1).sum(1)
            (grad,) = torch.autograd.grad(sv.sum(), x_, create_graph=True, retain_graph=True)
            total = total + (grad * v).flatten(1).sum(1) + 0.5 * sv**2
    return total / n_projections


# --- reverse SDE and probability-flow ODE samplers (prose after eq. (161)) -----------------------


def _time_grid(n_steps: int, t_end: float, like: torch.Tensor) -> torch.Tensor:
    checks.in_unit_interval("t_end", t_end, closed_right=False)
    n = _count("n_steps", n_steps)
    return torch.linspace(1.0, t_end, n + 1, dtype=like.dtype, device=like.device)


def _flow(score_fn, x, t, beta_min, beta_max, scale):
    beta = _beta(t, beta_min, beta_max)
    return -0.5 * beta * x - scale * beta * score_fn(x, t)


@register(161)
def reverse_sde_sample(
    *,
    score_fn: Callable,
    x,
    n_steps: int,
    generator: torch.Generator,
    t_end: float = 1e-3,
    beta_min: float = BETA_MIN,
    beta_max: float = BETA_MAX,
) -> torch.Tensor:
    """Euler-Maruyama for the reverse-time VP SDE (SDE view of eq. (161)), t: 1 -> t_end.

    dx = [-beta x / 2 - beta grad log p_t(x)] dt + sqrt(beta) dw-bar; score_fn(x, t) with
    t a 0-d tensor; x [B, D] from the prior N(0, I).
    """
    x = tensor_arg("x", x)
    generator = _generator(generator, x)
    grid = _time_grid(n_steps, t_end, x)
    for k in range(n_steps):
        t, dt = grid[k], grid[k] - grid[k + 1]
        beta = _beta(t, beta_min, beta_max)
        drift = _flow(score_fn, x, t, beta_min, beta_max, 1.0)
        x = x - drift * dt + (beta * dt).sqrt() * _randn(x, generator)
    return x


def _rk4(f, y, grid):
    for k in range(grid.numel() - 1):
        t, h = grid[k], grid[k + 1] - grid[k]
        k1 = f(t, y)
        k2 = f(t + h / 2, tuple(a + h / 2 * b for a, b in zip(y, k1, strict=True)))
        k3 = f(t + h / 2, tuple(a + h / 2 * b for a, b in zip(y, k2, strict=True)))
        k4 = f(t + h, tuple(a + h * b for a, b in zip(y, k3, strict=True)))
        y = tuple(
            a + h / 6 * (b1 + 2 * b2 + 2 * b3 + b4)
            for a, b1, b2, b3, b4 in zip(y, k1, k2, k3, k4, strict=True)
        )
    return y


@register(161)
def probability_flow_sample(
    *,
    score_fn: Callable,
    x,
    n_steps: int,
    t_end: float = 1e-3,
    beta_min: float = BETA_MIN,
    beta_max: float = BETA_MAX,
) -> torch.Tensor:
    """Probability-flow ODE of the VP SDE (SDE view of eq. (161)) by fixed-step RK4, 1 -> t_end.

    dx/dt = -beta(t) x / 2 - beta(t) grad log p_t(x) / 2; deterministic.
    """
    x = tensor_arg("x", x)
    grid = _time_grid(n_steps, t_end, x)

    def f(t, y):
        return (_flow(score_fn, y[0], t, beta_min, beta_max, 0.5),)

    return _rk4(f, (x,), grid)[0]


def _divergence(fn, x):
    """Exact divergence of fn at x [B, D] by D backward passes (low dimension)."""
    with torch.enable_grad():
        x_ = x.detach().requires_grad_(True)
        out = fn(x_)
        div = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for i in range(x.shape[1]):
            (g,) = torch.autograd.grad(out[:, i].sum(), x_, retain_graph=True)
            div = div + g[:, i]
    return out.detach(), div


@register(161)
def probability_flow_log_likelihood(
    *,
    score_fn: Callable,
    x,
    n_steps: int,
    t_end: float = 1e-3,
    prior_log_prob: Callable | None = None,
    beta_min: float = BETA_MIN,
    beta_max: float = BETA_MAX,
) -> torch.Tensor:
    """log p_{t_end}(x) by the probability-flow ODE (SDE view of eq. (161)), per sample.

    Instantaneous change of variables: d log p(x_t) / dt = -div f(x_t, t); integrate x and
    the divergence from t_end to 1 (RK4, exact divergence by autograd: x is [B, D], low D):
    log p_{t_end}(x) = log p_1(x_1) + int_{t_end}^1 div f dt. prior_log_prob(x_1) defaults
    to the standard normal.
    """
    x = tensor_arg("x", x)
    grid = _time_grid(n_steps, t_end, x).flip(0)

    def f(t, y):
        drift, div = _divergence(lambda z: _flow(score_fn, z, t, beta_min, beta_max, 0.5), y[0])
        return drift, div

    x_1, integral = _rk4(f, (x, torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)), grid)
    if prior_log_prob is None:
        prior = -0.5 * (x_1**2).sum(1) - 0.5 * x.shape[1] * math.log(2 * math.pi)
    else:
        prior = prior_log_prob(x_1)
    return prior + integral
