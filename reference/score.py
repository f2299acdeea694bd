"""Score-based generative models (section 3, eqs. (152)-(161)): float64 reference.

Closed forms are generated from `udm.derivations.score` (re-exported below); the samplers,
losses and the Gaussian-mixture oracle are hand-written NumPy, registered and cited.

Gaussian mixtures are given as `weights` [K] (positive, summing to 1), `means` [K, D] and
`variances` [K] or [K, D] (diagonal covariances); data `x` is [..., D].
Noise scales follow NOTATION: sigma_1 < ... < sigma_L (`sigmas` strictly increasing);
samplers anneal from the largest to the smallest.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from udm import checks, register
from udm.reference import _mixture
from udm.reference._args import as_float64
from udm.reference._generated.score import (  # noqa: F401
    dsm_esm_gap,
    langevin_stationary_var,
    perturbed_var,
    vp_alpha_bar,
    vp_beta,
    vp_component_mean,
    vp_component_var,
    weighted_dsm_term,
)

# --- argument checks (private) --------------------------------------------------------------


def _count(name: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be an int >= 1, got {n!r}")
    return int(n)


def _sigmas(sigmas) -> np.ndarray:
    sigmas = as_float64("sigmas", sigmas, "positive")
    if sigmas.ndim != 1 or sigmas.size < 1:
        raise ValueError("sigmas must be a non-empty 1-D array sigma_1 < ... < sigma_L")
    if np.any(np.diff(sigmas) <= 0):
        raise ValueError("sigmas must be strictly increasing (sigma_1 < ... < sigma_L)")
    return sigmas


def _rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


# --- the Gaussian-mixture oracle, eqs. (159), (160) ------------------------------------------


@register(159)
def gaussian_mixture_log_prob(*, x, weights, means, variances) -> np.ndarray:
    """log p(x) of the Gaussian mixture sum_k c_k N(means_k, diag(variances_k)), eq. (159).

    x [..., D] -> [...]; by logsumexp over components (`udm.reference._mixture`).
    """
    weights, means, variances = _mixture.check(weights, means, variances)
    return _mixture.log_prob(as_float64("x", x), weights, means, variances)


@register(159)
def gaussian_mixture_score(*, x, weights, means, variances) -> np.ndarray:
    """Exact score grad log p(x) of a Gaussian mixture, eq. (159).

    sum_k r_k(x) (-(x - means_k) / variances_k), r = the posterior responsibilities
    (softmax of the component log-densities). x [..., D] -> [..., D].
    """
    weights, means, variances = _mixture.check(weights, means, variances)
    return _mixture.score(as_float64("x", x), weights, means, variances)


@register(159, 160)
def vp_perturbed_mixture(*, weights, means, variances, alpha_bar_t):
    """The mixture of eq. (159) under the VP forward process at alpha_bar_t, eq. (160).

    Each component N(mu, v) becomes N(sqrt(alpha_bar_t) mu, alpha_bar_t v + 1 - alpha_bar_t)
    (generated `vp_component_mean` / `vp_component_var`); weights are unchanged.
    alpha_bar_t is a scalar in (0, 1]. Returns (weights, means, variances [K, D]).
    """
    weights, means, variances = _mixture.check(weights, means, variances)
    return (
        weights,
        vp_component_mean(mean=means, alpha_bar_t=alpha_bar_t),
        vp_component_var(var=variances, alpha_bar_t=alpha_bar_t),
    )


@register(160)
def noise_perturbed_mixture(*, weights, means, variances, sigma):
    """The mixture of eq. (159) perturbed by N(0, sigma^2 I) (eq. (160)): variances + sigma^2."""
    weights, means, variances = _mixture.check(weights, means, variances)
    return weights, means, perturbed_var(var=variances, sigma=sigma)


# --- Langevin dynamics, eq. (158), and annealing over noise scales, eq. (161) ----------------


@register(158)
def langevin_step(*, x, score, step_size, eps) -> np.ndarray:
    """One Langevin update, eq. (158): x + c score + sqrt(2 c) eps (c = step_size > 0)."""
    x = as_float64("x", x)
    score = as_float64("score", score)
    step_size = as_float64("step_size", step_size, "positive")
    eps = as_float64("eps", eps)
    checks.same_shape(x=x, score=score, eps=eps)
    return x + step_size * score + np.sqrt(2 * step_size) * eps


@register(158)
def langevin_sample(
    *, score_fn: Callable, x, step_size: float, n_steps: int, rng: np.random.Generator
) -> np.ndarray:
    """Run n_steps of Langevin dynamics (eq. (158)) from x [B, D] with score_fn(x) -> [B, D]."""
    x = as_float64("x", x).copy()
    step_size = float(as_float64("step_size", step_size, "positive"))
    n_steps, rng = _count("n_steps", n_steps), _rng(rng)
    for _ in range(n_steps):
        x = langevin_step(
            x=x, score=score_fn(x), step_size=step_size, eps=rng.standard_normal(x.shape)
        )
    return x


@register(158, 161)
def annealed_langevin_step_sizes(*, sigmas, step_size) -> np.ndarray:
    """Step sizes of annealed Langevin dynamics (eqs. (158), (161)), Song & Ermon's rule.

    alpha_i = step_size * sigma_i^2 / sigma_min^2: step_size is the step at the smallest
    scale (Song & Ermon index sigma_1 > ... > sigma_L and write sigma_L^2; here, as in
    NOTATION, sigma_1 < ... < sigma_L, so the smallest is sigma_1). Same order as sigmas.
    """
    sigmas = _sigmas(sigmas)
    step_size = as_float64("step_size", step_size, "positive")
    return step_size * (sigmas / sigmas[0]) ** 2


@register(158, 161)
def annealed_langevin_sample(
    *,
    score_fn: Callable,
    x,
    sigmas,
    step_size: float,
    n_steps_each: int,
    rng: np.random.Generator,
    denoise: bool = False,
) -> np.ndarray:
    """Annealed Langevin dynamics (eq. (158) at each noise level of eq. (161)).

    score_fn(x, sigma) -> [B, D] approximates grad log p_sigma; levels are visited from
    sigma_L (largest) down to sigma_1, n_steps_each Langevin steps each, with the step sizes
    of `annealed_langevin_step_sizes`. denoise=True adds a final Tweedie step
    x + sigma_1^2 score_fn(x, sigma_1) (removes the smallest noise).
    """
    x = as_float64("x", x).copy()
    sigmas = _sigmas(sigmas)
    steps = annealed_langevin_step_sizes(sigmas=sigmas, step_size=step_size)
    n_steps_each, rng = _count("n_steps_each", n_steps_each), _rng(rng)
    for sigma_i, alpha_i in zip(sigmas[::-1], steps[::-1], strict=True):
        for _ in range(n_steps_each):
            noise = rng.standard_normal(x.shape)
            x = langevin_step(x=x, score=score_fn(x, sigma_i), step_size=alpha_i, eps=noise)
    if denoise:
        x = x + sigmas[0] ** 2 * score_fn(x, sigmas[0])
    return x


# --- score-matching objectives, eqs. (157), (161) ----------------------------------------------


def _sum_data_dims(v: np.ndarray) -> np.ndarray:
    return v.reshape(v.shape[0], -1).sum(axis=1) if v.ndim > 1 else v


@register(157)
def explicit_score_matching_loss(*, score_hat, score) -> np.ndarray:
    """||s_theta(x) - grad log p(x)||^2 per sample, eq. (157) (x [B, ...] -> [B]).

    Its mean over x ~ p is the Fisher divergence; usable where the true score is known.
    """
    score_hat, score = as_float64("score_hat", score_hat), as_float64("score", score)
    checks.same_shape(score_hat=score_hat, score=score)
    return _sum_data_dims((score_hat - score) ** 2)


@register(157, 161)
def denoising_score_matching_loss(*, score_hat, eps, sigma) -> np.ndarray:
    """Denoising score matching per sample, eqs. (157), (161): ||s(x~) + eps / sigma||^2.

    x~ = x + sigma eps; the target -eps / sigma is grad log N(x~; x, sigma^2 I). Its mean
    differs from the explicit objective for p_sigma by a constant (`dsm_esm_gap`).
    sigma broadcasts against eps [B, ...] (pass [B, 1, ...] per-sample scales).
    """
    score_hat, eps = as_float64("score_hat", score_hat), as_float64("eps", eps)
    sigma = as_float64("sigma", sigma, "positive")
    checks.same_shape(score_hat=score_hat, eps=eps)
    return _sum_data_dims((score_hat + eps / sigma) ** 2)


@register(161)
def multi_noise_score_matching_loss(*, score_hat, eps, sigma) -> np.ndarray:
    """lambda(sigma)-weighted denoising objective of eq. (161), lambda = sigma^2, per sample.

    ||sigma s(x~, sigma) + eps||^2 (generated `weighted_dsm_term`, summed over data dims).
    """
    score_hat, eps = as_float64("score_hat", score_hat), as_float64("eps", eps)
    checks.same_shape(score_hat=score_hat, eps=eps)
    return _sum_data_dims(weighted_dsm_term(score_hat=score_hat, eps=eps, sigma=sigma))


# --- the SDE view of the VP process (prose after eq. (161)) ------------------------------------

BETA_MIN, BETA_MAX = checks.VP_BETA_MIN, checks.VP_BETA_MAX  # Song et al. (2021)


def _vp_drifts(score_fn, x, t, beta_min, beta_max, flow: float):
    beta = vp_beta(t=t, beta_min=beta_min, beta_max=beta_max)
    return -0.5 * beta * x - flow * beta * score_fn(x, t)


def _time_grid(n_steps, t_end):
    t_end = float(as_float64("t_end", t_end, "open_unit"))
    return np.linspace(1.0, t_end, _count("n_steps", n_steps) + 1)


@register(161)
def reverse_sde_sample(
    *,
    score_fn: Callable,
    x,
    n_steps: int,
    rng: np.random.Generator,
    t_end: float = 1e-3,
    beta_min: float = BETA_MIN,
    beta_max: float = BETA_MAX,
) -> np.ndarray:
    """Euler-Maruyama for the reverse-time VP SDE (the SDE view of eq. (161)), t: 1 -> t_end.

    dx = [-beta(t) x / 2 - beta(t) grad log p_t(x)] dt + sqrt(beta(t)) dw-bar, with
    score_fn(x, t) ~ grad log p_t(x); x [B, D] drawn from the prior N(0, I).
    """
    x = as_float64("x", x).copy()
    rng, grid = _rng(rng), _time_grid(n_steps, t_end)
    for t, t_next in itertools.pairwise(grid):
        dt = t - t_next  # > 0: integrating backward in time
        beta = vp_beta(t=t, beta_min=beta_min, beta_max=beta_max)
        drift = _vp_drifts(score_fn, x, t, beta_min, beta_max, flow=1.0)
        x = x - drift * dt + np.sqrt(beta * dt) * rng.standard_normal(x.shape)
    return x


# The classical fourth-order Runge-Kutta method as its Butcher tableau (nodes c, matrix A,
# weights b): the textbook definition, stage by stage. udm.torch_impl.score writes the same method
# out by hand (batched, tuples of states); tests/test_score_properties.py ties the two.
_RK4_C = (0.0, 0.5, 0.5, 1.0)
_RK4_A = ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0))
_RK4_B = (1 / 6, 1 / 3, 1 / 3, 1 / 6)


def _rk4_step(f, t, x, h):
    k = []
    for c, a_row in zip(_RK4_C, _RK4_A, strict=True):
        k.append(f(t + c * h, x + h * sum(a * k_j for a, k_j in zip(a_row, k, strict=False))))
    return x + h * sum(b * k_j for b, k_j in zip(_RK4_B, k, strict=True))


@register(161)
def probability_flow_sample(
    *,
    score_fn: Callable,
    x,
    n_steps: int,
    t_end: float = 1e-3,
    beta_min: float = BETA_MIN,
    beta_max: float = BETA_MAX,
) -> np.ndarray:
    """Probability-flow ODE of the VP SDE (the SDE view of eq. (161)) by fixed-step RK4.

    dx/dt = -beta(t) x / 2 - beta(t) grad log p_t(x) / 2, integrated from t = 1 to t_end;
    deterministic: it transports the prior to the data marginals.
    """
    x = as_float64("x", x).copy()

    def f(t, y):
        return _vp_drifts(score_fn, y, t, beta_min, beta_max, flow=0.5)

    for t, t_next in itertools.pairwise(_time_grid(n_steps, t_end)):
        x = _rk4_step(f, t, x, t_next - t)  # t_next < t: backward in time
    return x
