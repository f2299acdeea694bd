"""Three equivalent interpretations (section 2.3, eqs. (115)-(151)) in PyTorch.

Conversions `A_from_B` between the four predictions a network can make -- the clean sample
x_0_hat, the noise eps_hat, the score score_hat and v_hat (v = sqrt(alpha_bar) eps -
sqrt(1 - alpha_bar) x_0, Salimans & Ho 2022) -- the means of p_theta, the three losses, and
the exact Gaussian-mixture oracle for Tweedie's formula.

Every conversion takes the noise level either as `alpha_bar_t` or as `log_snr`
(= log SNR(t) = -omega, exactly one of them). With log_snr the scales are
sqrt(alpha_bar) = exp(logsigmoid(log_snr) / 2) and sqrt(1 - alpha_bar) =
exp(logsigmoid(-log_snr) / 2): full relative accuracy at both ends, even where alpha_bar_t
rounds to 1 (float32 alpha_bar_t > 1 - 6e-8) or underflows. Coefficients broadcast against
x_t elementwise (use `append_dims` for a per-sample [B] vector against [B, ...] data).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from udm import register
from udm.torch_impl import _mixture
from udm.torch_impl._tensors import check_broadcast, tensor_arg


def _scales(alpha_bar_t, log_snr, like: torch.Tensor, *, need_noise: bool):
    """(sqrt(alpha_bar), sqrt(1 - alpha_bar), 1 - alpha_bar) from exactly one of the two."""
    if (alpha_bar_t is None) == (log_snr is None):
        raise TypeError("give exactly one of alpha_bar_t= and log_snr=")
    if log_snr is not None:
        lam = tensor_arg("log_snr", log_snr, like=like)
        one_minus = torch.sigmoid(-lam)
        return torch.exp(0.5 * F.logsigmoid(lam)), torch.exp(0.5 * F.logsigmoid(-lam)), one_minus
    ab = tensor_arg("alpha_bar_t", alpha_bar_t, "open_unit" if need_noise else "unit", like=like)
    one_minus = 1 - ab  # exact for alpha_bar_t >= 1/2 (Sterbenz)
    return ab.sqrt(), one_minus.sqrt(), one_minus


def _noise_to_signal(sa, s1m, log_snr):
    """sqrt(1 - alpha_bar) / sqrt(alpha_bar): exp(-log_snr / 2) in one rounding when given."""
    if log_snr is not None:
        return torch.exp(-0.5 * tensor_arg("log_snr", log_snr, like=sa))
    return s1m / sa


def _args(x_t, pred_name, pred):
    x_t = tensor_arg("x_t", x_t)
    pred = tensor_arg(pred_name, pred, like=x_t)
    return x_t, pred


# --- x_0 <-> eps, eq. (115) ---------------------------------------------------------------------


@register(115)
def x_0_from_eps(*, x_t, eps_hat, alpha_bar_t=None, log_snr=None) -> torch.Tensor:
    r"""x_0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_bar_t), eq. (115).

    Ill-conditioned as alpha_bar_t -> 0 by nature (x_0 is a small signal under unit noise):
    the absolute error is ~ulp(abs(x_t)) / sqrt(alpha_bar_t).
    """
    x_t, eps_hat = _args(x_t, "eps_hat", eps_hat)
    sa, s1m, _ = _scales(alpha_bar_t, log_snr, x_t, need_noise=False)
    check_broadcast(x_t=x_t, eps_hat=eps_hat, alpha_bar_t=sa)
    return (x_t - s1m * eps_hat) / sa


@register(115)
def eps_from_x_0(*, x_t, x_0_hat, alpha_bar_t=None, log_snr=None) -> torch.Tensor:
    r"""eps_hat = (x_t - sqrt(alpha_bar_t) x_0_hat) / sqrt(1 - alpha_bar_t), eq. (115) solved for eps.

    Domain: alpha_bar_t < 1 (at alpha_bar_t = 1 the noise is not identifiable).
    """
    x_t, x_0_hat = _args(x_t, "x_0_hat", x_0_hat)
    sa, s1m, _ = _scales(alpha_bar_t, log_snr, x_t, need_noise=True)
    check_broadcast(x_t=x_t, x_0_hat=x_0_hat, alpha_bar_t=sa)
    return (x_t - sa * x_0_hat) / s1m


# --- x_0 <-> score, eq. (133); eps <-> score, eq. (151) ----------------------------------------


@register(133)
def x_0_from_score(*, x_t, score_hat, alpha_bar_t=None, log_snr=None) -> torch.Tensor:
    r"""x_0_hat = (x_t + (1 - alpha_bar_t) score_hat) / sqrt(alpha_bar_t), eq. (133) (Tweedie)."""
    x_t, score_hat = _args(x_t, "score_hat", score_hat)
    sa, _, one_minus = _scales(alpha_bar_t, log_snr, x_t, need_noise=False)
    check_broadcast(x_t=x_t, score_hat=score_hat, alpha_bar_t=sa)
    return (x_t + one_minus * score_hat) / sa


@register(133)
def score_from_x_0(*, x_t, x_0_hat, alpha_bar_t=None, log_snr=None) -> torch.Tensor:
    r"""score_hat = (sqrt(alpha_bar_t) x_0_hat - x_t) / (1 - alpha_bar_t), eq. (133) solved."""
    x_t, x_0_hat = _args(x_t, "x_0_hat", x_0_hat)
    sa, _, one_minus = _scales(alpha_bar_t, log_snr, x_t, need_noise=True)
    check_broadcast(x_t=x_t, x_0_hat=x_0_hat, alpha_bar_t=sa)
    return (sa * x_0_hat - x_t) / one_minus


@register(151)
def score_from_eps(*, eps_hat, alpha_bar_t=None, log_snr=None) -> torch.Tensor:
    r"""score_hat = -eps_hat / sqrt(1 - alpha_bar_t), eq. (151). Relative error <= 2 ulps."""
    eps_hat = tensor_arg("eps_hat", eps_hat)
    _, s1m, _ = _scales(alpha_bar_t, log_snr, eps_hat, need_noise=True)
    check_broadcast(eps_hat=eps_hat, alpha_bar_t=s1m)
    return -eps_hat / s1m


@register(151)
def eps_from_score(*, score_hat, alpha_bar_t=None, log_snr=None) -> torch.Tensor:
    r"""eps_hat = -sqrt(1 - alpha_bar_t) score_hat, eq. (151). Relative error <= 2 ulps."""
    score_hat = tensor_arg("score_hat", score_hat)
    _, s1m, _ = _scales(alpha_bar_t, log_snr, score_hat, need_noise=False)
    check_broadcast(score_hat=score_hat, alpha_bar_t=s1m)
    return -s1m * score_hat


# --- v-prediction (Salimans & Ho 2022), from eqs. (115), (151) ------------------------------------


@register(115, "v.x0")
def x_0_from_v(*, x_t, v_hat, alpha_bar_t=None, log_snr=None) -> torch.Tensor:
    r"""x_0_hat = sqrt(alpha_bar_t) x_t - sqrt(1 - alpha_bar_t) v_hat, from eq. (115); v.x0.

    A rotation: well conditioned at both ends of the schedule (no division).
    """
    x_t, v_hat = _args(x_t, "v_hat", v_hat)
    sa, s1m, _ = _scales(alpha_bar_t, log_snr, x_t, need_noise=False)
    check_broadcast(x_t=x_t, v_hat=v_hat, alpha_bar_t=sa)
    return sa * x_t - s1m * v_hat


@register(115, "v.eps")
def eps_from_v(*, x_t, v_hat, alpha_bar_t=None, log_snr=None) -> torch.Tensor:
    r"""eps_hat = sqrt(1 - alpha_bar_t) x_t + sqrt(alpha_bar_t) v_hat, from eq. (115) (a
    rotation); v.eps."""
    x_t, v_hat = _args(x_t, "v_hat", v_hat)
    sa, s1m, _ = _scales(alpha_bar_t, log_snr, x_t, need_noise=False)
    check_broadcast(x_t=x_t, v_hat=v_hat, alpha_bar_t=sa)
    return s1m * x_t + sa * v_hat


@register(115)
def v_from_x_0(*, x_t, x_0_hat, alpha_bar_t=None, log_snr=None) -> torch.Tensor:
    r"""v_hat = (sqrt(alpha_bar_t) x_t - x_0_hat) / sqrt(1 - alpha_bar_t), from eq. (115)."""
    x_t, x_0_hat = _args(x_t, "x_0_hat", x_0_hat)
    sa, s1m, _ = _scales(alpha_bar_t, log_snr, x_t, need_noise=True)
    check_broadcast(x_t=x_t, x_0_hat=x_0_hat, alpha_bar_t=sa)
    return (sa * x_t - x_0_hat) / s1m


@register(115)
def v_from_eps(*, x_t, eps_hat, alpha_bar_t=None, log_snr=None) -> torch.Tensor:
    r"""v_hat = (eps_hat - sqrt(1 - alpha_bar_t) x_t) / sqrt(alpha_bar_t), from eq. (115)."""
    x_t, eps_hat = _args(x_t, "eps_hat", eps_hat)
    sa, s1m, _ = _scales(alpha_bar_t, log_snr, x_t, need_noise=False)
    check_broadcast(x_t=x_t, eps_hat=eps_hat, alpha_bar_t=sa)
    return (eps_hat - s1m * x_t) / sa


@register(115, 151)
def v_from_score(*, x_t, score_hat, alpha_bar_t=None, log_snr=None) -> torch.Tensor:
    r"""v_hat = -sqrt(1 - alpha_bar_t) (x_t + score_hat) / sqrt(alpha_bar_t), eqs. (115), (151)."""
    x_t, score_hat = _args(x_t, "score_hat", score_hat)
    sa, s1m, _ = _scales(alpha_bar_t, log_snr, x_t, need_noise=False)
    check_broadcast(x_t=x_t, score_hat=score_hat, alpha_bar_t=sa)
    return -_noise_to_signal(sa, s1m, log_snr) * (x_t + score_hat)


@register(115, 151)
def score_from_v(*, x_t, v_hat, alpha_bar_t=None, log_snr=None) -> torch.Tensor:
    r"""score_hat = -(x_t + sqrt(alpha_bar_t) v_hat / sqrt(1 - alpha_bar_t)), eqs. (115), (151)."""
    x_t, v_hat = _args(x_t, "v_hat", v_hat)
    sa, s1m, _ = _scales(alpha_bar_t, log_snr, x_t, need_noise=True)
    check_broadcast(x_t=x_t, v_hat=v_hat, alpha_bar_t=sa)
    return -(x_t + v_hat / _noise_to_signal(sa, s1m, log_snr))


# --- the model means, eqs. (125), (143) ---------------------------------------------------------


@register(124, 125)
def mu_theta_from_eps(*, x_t, eps_hat, alpha_t, alpha_bar_t) -> torch.Tensor:
    r"""mu_theta = x_t / sqrt(alpha_t) - (1 - alpha_t) / (sqrt(1 - alpha_bar_t) sqrt(alpha_t)) eps_hat, eqs. (124), (125).

    Domains: alpha_t in (0, 1], alpha_bar_t in (0, 1).
    """
    x_t, eps_hat = _args(x_t, "eps_hat", eps_hat)
    alpha_t = tensor_arg("alpha_t", alpha_t, "unit", like=x_t)
    alpha_bar_t = tensor_arg("alpha_bar_t", alpha_bar_t, "open_unit", like=x_t)
    check_broadcast(x_t=x_t, eps_hat=eps_hat, alpha_t=alpha_t, alpha_bar_t=alpha_bar_t)
    return (x_t - (1 - alpha_t) / (1 - alpha_bar_t).sqrt() * eps_hat) / alpha_t.sqrt()


@register(142, 143)
def mu_theta_from_score(*, x_t, score_hat, alpha_t) -> torch.Tensor:
    r"""mu_theta = x_t / sqrt(alpha_t) + (1 - alpha_t) / sqrt(alpha_t) score_hat, eqs. (142), (143)."""
    x_t, score_hat = _args(x_t, "score_hat", score_hat)
    alpha_t = tensor_arg("alpha_t", alpha_t, "unit", like=x_t)
    check_broadcast(x_t=x_t, score_hat=score_hat, alpha_t=alpha_t)
    return (x_t + (1 - alpha_t) * score_hat) / alpha_t.sqrt()


# --- the three losses, eqs. (110), (130), (148) ----------------------------------------------------


def _weights(alpha_t, alpha_bar_prev, like):
    alpha_t = tensor_arg("alpha_t", alpha_t, "unit", like=like)
    alpha_bar_prev = tensor_arg("alpha_bar_prev", alpha_bar_prev, "open_unit", like=like)
    beta, beta_bar_prev = 1 - alpha_t, 1 - alpha_bar_prev
    one_minus_alpha_bar = (
        beta + alpha_t * beta_bar_prev
    )  # 1 - alpha_t alpha_bar_prev, no cancellation
    w_eps = 0.5 * beta / (alpha_t * beta_bar_prev)
    return alpha_t, alpha_bar_prev, w_eps, one_minus_alpha_bar


@register(130)
def eps_loss_weight(*, alpha_t, alpha_bar_prev) -> torch.Tensor:
    r"""Weight of ||eps - eps_hat||^2, eq. (130): (1 - alpha_t) / (2 alpha_t (1 - alpha_bar_prev)).

    The paper's :math:`\frac{1}{2\sigma_q^2(t)}\frac{(1-\alpha_t)^2}{(1-\bar\alpha_t)\alpha_t}`
    with sigma_q^2(t) inserted; equals the x_0 weight of eq. (110) divided by SNR(t).
    """
    return _weights(alpha_t, alpha_bar_prev, None)[2]


@register(148)
def score_loss_weight(*, alpha_t, alpha_bar_prev) -> torch.Tensor:
    r"""Weight of ||score_hat - score||^2, eq. (148): the eps weight times 1 - alpha_bar_t."""
    _, _, w_eps, one_minus = _weights(alpha_t, alpha_bar_prev, None)
    return w_eps * one_minus


@register(110)
def x0_loss(*, x_0, x_0_hat, alpha_t, alpha_bar_prev) -> torch.Tensor:
    r"""x_0-prediction loss per coordinate, eq. (110): w_x (x_0 - x_0_hat)^2, w_x = (SNR(t-1) - SNR(t)) / 2.

    Sum over data coordinates for the paper's squared norm. Shapes broadcast elementwise.
    """
    x_0 = tensor_arg("x_0", x_0)
    x_0_hat = tensor_arg("x_0_hat", x_0_hat, like=x_0)
    alpha_t, alpha_bar_prev, w_eps, one_minus = _weights(alpha_t, alpha_bar_prev, x_0)
    check_broadcast(x_0=x_0, x_0_hat=x_0_hat, alpha_t=alpha_t, alpha_bar_prev=alpha_bar_prev)
    w_x = w_eps * alpha_t * alpha_bar_prev / one_minus  # w_eps SNR(t)
    return w_x * (x_0 - x_0_hat) ** 2


@register(130)
def eps_loss(*, eps, eps_hat, alpha_t, alpha_bar_prev) -> torch.Tensor:
    r"""Noise-prediction loss per coordinate, eq. (130): w_eps (eps - eps_hat)^2."""
    eps = tensor_arg("eps", eps)
    eps_hat = tensor_arg("eps_hat", eps_hat, like=eps)
    alpha_t, alpha_bar_prev, w_eps, _ = _weights(alpha_t, alpha_bar_prev, eps)
    check_broadcast(eps=eps, eps_hat=eps_hat, alpha_t=alpha_t, alpha_bar_prev=alpha_bar_prev)
    return w_eps * (eps - eps_hat) ** 2


@register(148)
def score_loss(*, score, score_hat, alpha_t, alpha_bar_prev) -> torch.Tensor:
    r"""Score-prediction loss per coordinate, eq. (148): w_s (score_hat - score)^2."""
    score = tensor_arg("score", score)
    score_hat = tensor_arg("score_hat", score_hat, like=score)
    alpha_t, alpha_bar_prev, w_eps, one_minus = _weights(alpha_t, alpha_bar_prev, score)
    check_broadcast(
        score=score, score_hat=score_hat, alpha_t=alpha_t, alpha_bar_prev=alpha_bar_prev
    )
    return w_eps * one_minus * (score_hat - score) ** 2


@register(131, 132)
def tweedie_mean(*, x_t, score, alpha_bar_t=None, log_snr=None) -> torch.Tensor:
    r"""Tweedie: E[sqrt(alpha_bar_t) x_0 | x_t] = x_t + (1 - alpha_bar_t) grad log p(x_t), eqs. (131), (132)."""
    x_t, score = _args(x_t, "score", score)
    _, _, one_minus = _scales(alpha_bar_t, log_snr, x_t, need_noise=False)
    check_broadcast(x_t=x_t, score=score, alpha_bar_t=one_minus)
    return x_t + one_minus * score


# --- exact oracle: Gaussian-mixture data --------------------------------------------------------


def _mixture_args(x_t, weights, means, variances, alpha_bar_t, log_snr):
    """Checked tensors x_t, weights [K], means [K, D], variances [K, D] and the noise level
    as (alpha_bar_t, 1 - alpha_bar_t), both accurate when given as log_snr."""
    x_t = tensor_arg("x_t", x_t)
    weights = tensor_arg("weights", weights, "positive", like=x_t)
    means = tensor_arg("means", means, like=x_t)
    variances = tensor_arg("variances", variances, "positive", like=x_t)
    if weights.ndim != 1 or means.ndim != 2 or variances.shape != weights.shape:
        raise ValueError("weights [K], means [K, D] and variances [K] must agree in K")
    if means.shape[0] != weights.shape[0] or x_t.shape[-1:] != means.shape[1:]:
        raise ValueError(
            f"x_t [..., D] and means [K, D] disagree: {tuple(x_t.shape)}, {tuple(means.shape)}"
        )
    weights, means, variances = _mixture.check(weights, means, variances)
    sa, _, one_minus = _scales(alpha_bar_t, log_snr, x_t, need_noise=False)
    return x_t, weights, means, variances, sa * sa, one_minus


@register(131)
def gaussian_mixture_log_prob(
    *, x_t, weights, means, variances, alpha_bar_t=None, log_snr=None
) -> torch.Tensor:
    r"""log p(x_t) for x_0 ~ sum_k w_k N(m_k, v_k I): a mixture again, eq. (131)'s p(x_t).

    p(x_t) = sum_k w_k N(sqrt(alpha_bar_t) m_k, (alpha_bar_t v_k + 1 - alpha_bar_t) I), with
    logsumexp (`udm.torch_impl._mixture`). Shapes: x_t [..., D]; weights [K]; means [K, D];
    variances [K]; the noise level broadcasts against x_t[..., 0]. Returns [...].
    Differentiable (autograd score).
    """
    x_t, w, m, v, ab, om = _mixture_args(x_t, weights, means, variances, alpha_bar_t, log_snr)
    return _mixture.log_prob(x_t, w, *_mixture.vp_perturbed(m, v, ab, om))


@register(131)
def gaussian_mixture_score(
    *, x_t, weights, means, variances, alpha_bar_t=None, log_snr=None
) -> torch.Tensor:
    r"""Exact score of p(x_t) for Gaussian-mixture data, eq. (131).

    -sum_k r_k(x_t) (x_t - sqrt(alpha_bar_t) m_k) / c_k, r = softmax(log w_k + log N_k).
    Returns [..., D].
    """
    x_t, w, m, v, ab, om = _mixture_args(x_t, weights, means, variances, alpha_bar_t, log_snr)
    return _mixture.score(x_t, w, *_mixture.vp_perturbed(m, v, ab, om))


@register(131, 132)
def gaussian_mixture_posterior_mean(
    *, x_t, weights, means, variances, alpha_bar_t=None, log_snr=None
) -> torch.Tensor:
    r"""Exact E[x_0 | x_t] for Gaussian-mixture data (the optimal denoiser), eqs. (131), (132).

    sum_k r_k(x_t) [m_k + sqrt(alpha_bar_t) v_k / c_k (x_t - sqrt(alpha_bar_t) m_k)].
    Returns [..., D].
    """
    x_t, w, m, v, ab, om = _mixture_args(x_t, weights, means, variances, alpha_bar_t, log_snr)
    return _mixture.vp_posterior_mean(x_t, w, m, v, ab, om)
