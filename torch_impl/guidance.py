"""Guidance (section 4, eqs. (162)-(170)) in PyTorch.

Guided scores (classifier guidance, classifier-free guidance), score-function wrappers for
the samplers of `udm.torch_impl.score`, and the analytic Gaussian-mixture classifier (one
Gaussian component per class) used as the oracle in tests/test_guidance.py.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from udm import checks, register
from udm.torch_impl import _mixture
from udm.torch_impl._tensors import check_broadcast, tensor_arg


def _scale(guidance_scale, like=None):
    return tensor_arg("guidance_scale", guidance_scale, "real", like=like)


@register(166)
def classifier_guided_score(*, score, grad_log_classifier, guidance_scale) -> torch.Tensor:
    """Classifier guidance, eq. (166): grad log p(x_t) + gamma grad log p(y | x_t)."""
    score = tensor_arg("score", score)
    grad = tensor_arg("grad_log_classifier", grad_log_classifier, like=score)
    gamma = _scale(guidance_scale, like=score)
    check_broadcast(score=score, grad_log_classifier=grad, guidance_scale=gamma)
    return score + gamma * grad


@register(167)
def implicit_classifier_grad(*, score_cond, score) -> torch.Tensor:
    """Implicit classifier gradient, eq. (167): grad log p(x_t | y) - grad log p(x_t)."""
    score_cond, score = tensor_arg("score_cond", score_cond), tensor_arg("score", score)
    check_broadcast(score_cond=score_cond, score=score)
    return score_cond - score


@register(168, 169, 170)
def cfg_score(*, score, score_cond, guidance_scale) -> torch.Tensor:
    """Classifier-free guidance, eqs. (168)-(170): gamma s(x_t | y) + (1 - gamma) s(x_t).

    Computed as score + gamma (score_cond - score) (eq. (168)), exact at gamma = 0 and
    gamma = 1 in floating point up to one rounding.
    """
    score, score_cond = tensor_arg("score", score), tensor_arg("score_cond", score_cond)
    gamma = _scale(guidance_scale, like=score)
    check_broadcast(score=score, score_cond=score_cond, guidance_scale=gamma)
    return score + gamma * (score_cond - score)


@register(162, 166)
def classifier_guided_score_fn(
    *, score_fn: Callable, classifier_log_prob_fn: Callable, guidance_scale: float
) -> Callable:
    """A score function (x, t) for the conditional sampler of eq. (162), guided by eq. (166).

    classifier_log_prob_fn(x, t) -> log p(y | x_t) [B] (y fixed inside it); its gradient is
    taken by autograd. Pass the result to `reverse_sde_sample` / `probability_flow_sample`.
    """
    checks.finite("guidance_scale", guidance_scale)

    def guided(x, t):
        with torch.enable_grad():
            x_ = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(classifier_log_prob_fn(x_, t).sum(), x_)
        return score_fn(x, t) + guidance_scale * grad

    return guided


@register(162, 170)
def cfg_score_fn(*, score_fn: Callable, cond_score_fn: Callable, guidance_scale: float) -> Callable:
    """A score function (x, t) for the conditional sampler of eq. (162) by eq. (170).

    gamma cond_score_fn(x, t) + (1 - gamma) score_fn(x, t).
    """
    checks.finite("guidance_scale", guidance_scale)

    def guided(x, t):
        s = score_fn(x, t)
        return s + guidance_scale * (cond_score_fn(x, t) - s)

    return guided


# --- the analytic Gaussian-mixture classifier ------------------------------------------------------


def _labels(y, x: torch.Tensor, K: int) -> torch.Tensor:
    y = torch.as_tensor(y, device=x.device)
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise TypeError(f"y must be integer class labels, got {y.dtype}")
    if checks.validate_args_enabled() and bool(((y < 0) | (y >= K)).any()):
        raise ValueError(f"y must lie in 0..{K - 1}")
    return y.expand(x.shape[:-1])


@register(163, 164, 165)
def mixture_class_log_prob(*, x, y, weights, means, variances) -> torch.Tensor:
    """log p(y | x) of a Gaussian mixture's Bayes classifier (class y = component y), eqs. (163)-(165).

    log c_y N(x; means_y, variances_y) - log p(x); means/variances may be [..., K, D]
    (a perturbed mixture). x [..., D] -> [...].
    """
    x = tensor_arg("x", x)
    weights, means, variances = _mixture.check_batched(weights, means, variances)
    log_post = _mixture.log_posterior(x, weights, means, variances)  # [..., K]
    y = _labels(y, x, weights.shape[-1])
    return log_post.gather(-1, y.unsqueeze(-1)).squeeze(-1)


@register(163, 165)
def mixture_conditional_score(*, x, y, weights, means, variances) -> torch.Tensor:
    """grad log p(x | y) = -(x - means_y) / variances_y (class y = component y), eqs. (163), (165)."""
    x = tensor_arg("x", x)
    weights, means, variances = _mixture.check_batched(weights, means, variances)
    y = _labels(y, x, weights.shape[-1])
    components = _mixture.component_scores(x, means, variances)  # [..., K, D]
    components = components.expand(*x.shape[:-1], *components.shape[-2:])
    idx = y[..., None, None].expand(*y.shape, 1, x.shape[-1])
    return components.gather(-2, idx).squeeze(-2)


@register(165, 167)
def mixture_classifier_grad(*, x, y, weights, means, variances) -> torch.Tensor:
    """grad log p(y | x) of the mixture classifier, eqs. (165), (167): conditional minus
    unconditional score."""
    cond = mixture_conditional_score(x=x, y=y, weights=weights, means=means, variances=variances)
    x = tensor_arg("x", x)
    return cond - _mixture.score(x, *_mixture.check_batched(weights, means, variances))


__all__ = [
    "cfg_score",
    "cfg_score_fn",
    "classifier_guided_score",
    "classifier_guided_score_fn",
    "implicit_classifier_grad",
    "mixture_class_log_prob",
    "mixture_classifier_grad",
    "mixture_conditional_score",
]
