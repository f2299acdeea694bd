"""Three Equivalent Interpretations: closed forms generated from derivations/interpretations.py.

Do not edit: run `udm generate`. Each function is the SymPy result printed as NumPy.
"""

import numpy

from udm.reference._args import as_float64, check_broadcast
from udm import register

__all__ = ['x_0_from_eps', 'eps_from_x_0', 'mu_theta_from_eps', 'eps_loss_weight', 'eps_loss', 'tweedie_mean', 'x_0_from_score', 'score_from_x_0', 'mu_theta_from_score', 'score_loss_weight', 'score_loss', 'score_from_eps', 'eps_from_score', 'x0_loss', 'x_0_from_v', 'eps_from_v', 'v_from_x_0', 'v_from_eps', 'v_from_score', 'score_from_v']


@register(115)
def x_0_from_eps(*, x_t, eps_hat, alpha_bar_t):
    r"""Clean-sample prediction from a noise prediction, eq. (115).

    .. math:: \hat x_\theta(x_t, t) = \frac{- \hat\epsilon_\theta(x_t, t) \sqrt{1 - \bar\alpha_t} + x_t}{\sqrt{\bar\alpha_t}}

    Domains: x_t real, eps_hat real, alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.x_0_from_noise``.
    """
    x_t = as_float64("x_t", x_t, "real")
    eps_hat = as_float64("eps_hat", eps_hat, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(x_t=x_t, eps_hat=eps_hat, alpha_bar_t=alpha_bar_t)
    return (-eps_hat*numpy.sqrt(1 - alpha_bar_t) + x_t)/numpy.sqrt(alpha_bar_t)


@register(115)
def eps_from_x_0(*, x_t, x_0_hat, alpha_bar_t):
    r"""Noise prediction from a clean-sample prediction (eq. (115) solved for eps), eq. (115).

    .. math:: \hat\epsilon_\theta(x_t, t) = \frac{- \sqrt{\bar\alpha_t} \hat x_\theta(x_t, t) + x_t}{\sqrt{1 - \bar\alpha_t}}

    Domains: x_t real, x_0_hat real, alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.eps_from_forward_sample``.
    """
    x_t = as_float64("x_t", x_t, "real")
    x_0_hat = as_float64("x_0_hat", x_0_hat, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(x_t=x_t, x_0_hat=x_0_hat, alpha_bar_t=alpha_bar_t)
    return (-numpy.sqrt(alpha_bar_t)*x_0_hat + x_t)/numpy.sqrt(1 - alpha_bar_t)


@register(124, 125)
def mu_theta_from_eps(*, x_t, eps_hat, alpha_t, alpha_bar_t):
    r"""Mean of p_theta(x_{t-1} | x_t) from a noise prediction, eqs. (124), (125).

    .. math:: \mu_\theta(x_t, t) = - \frac{\hat\epsilon_\theta(x_t, t) \left(1 - \alpha_t\right)}{\sqrt{\alpha_t} \sqrt{1 - \bar\alpha_t}} + \frac{x_t}{\sqrt{\alpha_t}}

    Domains: x_t real, eps_hat real, alpha_t in (0, 1], alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.posterior_mean_from_eps``.
    """
    x_t = as_float64("x_t", x_t, "real")
    eps_hat = as_float64("eps_hat", eps_hat, "real")
    alpha_t = as_float64("alpha_t", alpha_t, "unit")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(x_t=x_t, eps_hat=eps_hat, alpha_t=alpha_t, alpha_bar_t=alpha_bar_t)
    return -eps_hat*(1 - alpha_t)/(numpy.sqrt(alpha_t)*numpy.sqrt(1 - alpha_bar_t)) + x_t/numpy.sqrt(alpha_t)


@register(130)
def eps_loss_weight(*, alpha_t, alpha_bar_prev):
    r"""Weight of ||eps - eps_hat||^2 at step t >= 2, with sigma_q^2(t) inserted, eq. (130).

    .. math:: \frac{1}{2\sigma_q^2(t)}\frac{(1-\alpha_t)^2}{(1-\bar\alpha_t)\alpha_t} = \frac{1 - \alpha_t}{2 \alpha_t \left(1 - \bar\alpha_{t-1}\right)}

    Domains: alpha_t in (0, 1], alpha_bar_prev in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.noise_prediction_loss``.
    """
    alpha_t = as_float64("alpha_t", alpha_t, "unit")
    alpha_bar_prev = as_float64("alpha_bar_prev", alpha_bar_prev, "open_unit")
    check_broadcast(alpha_t=alpha_t, alpha_bar_prev=alpha_bar_prev)
    return (1/2)*(1 - alpha_t)/(alpha_t*(1 - alpha_bar_prev))


@register(130)
def eps_loss(*, eps, eps_hat, alpha_t, alpha_bar_prev):
    r"""Noise-prediction loss per coordinate (sum over coordinates for ||.||^2), eq. (130).

    .. math:: \mathcal{L}_\epsilon = \frac{\left(1 - \alpha_t\right) \left(\epsilon_0 - \hat\epsilon_\theta(x_t, t)\right)^{2}}{2 \alpha_t \left(1 - \bar\alpha_{t-1}\right)}

    Domains: eps real, eps_hat real, alpha_t in (0, 1], alpha_bar_prev in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.noise_prediction_loss``.
    """
    eps = as_float64("eps", eps, "real")
    eps_hat = as_float64("eps_hat", eps_hat, "real")
    alpha_t = as_float64("alpha_t", alpha_t, "unit")
    alpha_bar_prev = as_float64("alpha_bar_prev", alpha_bar_prev, "open_unit")
    check_broadcast(eps=eps, eps_hat=eps_hat, alpha_t=alpha_t, alpha_bar_prev=alpha_bar_prev)
    return (1/2)*(1 - alpha_t)*(eps - eps_hat)**2/(alpha_t*(1 - alpha_bar_prev))


@register(131, 132)
def tweedie_mean(*, x_t, score, alpha_bar_t):
    r"""Posterior mean of sqrt(alpha_bar_t) x_0 given x_t (Tweedie), eqs. (131), (132).

    .. math:: \mathbb{E}[\mu_{x_t} \mid x_t] = \nabla\log p(x_t) \left(1 - \bar\alpha_t\right) + x_t

    Domains: x_t real, score real, alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.x_0_from_score_derivation``.
    """
    x_t = as_float64("x_t", x_t, "real")
    score = as_float64("score", score, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(x_t=x_t, score=score, alpha_bar_t=alpha_bar_t)
    return score*(1 - alpha_bar_t) + x_t


@register(133)
def x_0_from_score(*, x_t, score_hat, alpha_bar_t):
    r"""Clean-sample prediction from a score prediction, eq. (133).

    .. math:: \hat x_\theta(x_t, t) = \frac{s_\theta(x_t, t) \left(1 - \bar\alpha_t\right) + x_t}{\sqrt{\bar\alpha_t}}

    Domains: x_t real, score_hat real, alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.x_0_through_score``.
    """
    x_t = as_float64("x_t", x_t, "real")
    score_hat = as_float64("score_hat", score_hat, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(x_t=x_t, score_hat=score_hat, alpha_bar_t=alpha_bar_t)
    return (score_hat*(1 - alpha_bar_t) + x_t)/numpy.sqrt(alpha_bar_t)


@register(133)
def score_from_x_0(*, x_t, x_0_hat, alpha_bar_t):
    r"""Score prediction from a clean-sample prediction (eq. (133) solved), eq. (133).

    .. math:: s_\theta(x_t, t) = \frac{\sqrt{\bar\alpha_t} \hat x_\theta(x_t, t) - x_t}{1 - \bar\alpha_t}

    Domains: x_t real, x_0_hat real, alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.conditional_score``.
    """
    x_t = as_float64("x_t", x_t, "real")
    x_0_hat = as_float64("x_0_hat", x_0_hat, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(x_t=x_t, x_0_hat=x_0_hat, alpha_bar_t=alpha_bar_t)
    return (numpy.sqrt(alpha_bar_t)*x_0_hat - x_t)/(1 - alpha_bar_t)


@register(142, 143)
def mu_theta_from_score(*, x_t, score_hat, alpha_t):
    r"""Mean of p_theta(x_{t-1} | x_t) from a score prediction, eqs. (142), (143).

    .. math:: \mu_\theta(x_t, t) = \frac{s_\theta(x_t, t) \left(1 - \alpha_t\right)}{\sqrt{\alpha_t}} + \frac{x_t}{\sqrt{\alpha_t}}

    Domains: x_t real, score_hat real, alpha_t in (0, 1]. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.posterior_mean_from_score``.
    """
    x_t = as_float64("x_t", x_t, "real")
    score_hat = as_float64("score_hat", score_hat, "real")
    alpha_t = as_float64("alpha_t", alpha_t, "unit")
    check_broadcast(x_t=x_t, score_hat=score_hat, alpha_t=alpha_t)
    return score_hat*(1 - alpha_t)/numpy.sqrt(alpha_t) + x_t/numpy.sqrt(alpha_t)


@register(148)
def score_loss_weight(*, alpha_t, alpha_bar_prev):
    r"""Weight of ||score_hat - score||^2 at step t >= 2, with sigma_q^2(t) inserted, eq. (148).

    .. math:: \frac{1}{2\sigma_q^2(t)}\frac{(1-\alpha_t)^2}{\alpha_t} = \frac{\left(1 - \alpha_t\right) \left(1 - \alpha_t \bar\alpha_{t-1}\right)}{2 \alpha_t \left(1 - \bar\alpha_{t-1}\right)}

    Domains: alpha_t in (0, 1], alpha_bar_prev in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.score_prediction_loss``.
    """
    alpha_t = as_float64("alpha_t", alpha_t, "unit")
    alpha_bar_prev = as_float64("alpha_bar_prev", alpha_bar_prev, "open_unit")
    check_broadcast(alpha_t=alpha_t, alpha_bar_prev=alpha_bar_prev)
    return (1/2)*(1 - alpha_t)*((1 - alpha_t) + alpha_t*(1 - alpha_bar_prev))/(alpha_t*(1 - alpha_bar_prev))


@register(148)
def score_loss(*, score, score_hat, alpha_t, alpha_bar_prev):
    r"""Score-prediction loss per coordinate (sum over coordinates for ||.||^2), eq. (148).

    .. math:: \mathcal{L}_s = \frac{\left(1 - \alpha_t\right) \left(- \nabla\log p(x_t) + s_\theta(x_t, t)\right)^{2} \left(1 - \alpha_t \bar\alpha_{t-1}\right)}{2 \alpha_t \left(1 - \bar\alpha_{t-1}\right)}

    Domains: score real, score_hat real, alpha_t in (0, 1], alpha_bar_prev in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.score_prediction_loss``.
    """
    score = as_float64("score", score, "real")
    score_hat = as_float64("score_hat", score_hat, "real")
    alpha_t = as_float64("alpha_t", alpha_t, "unit")
    alpha_bar_prev = as_float64("alpha_bar_prev", alpha_bar_prev, "open_unit")
    check_broadcast(score=score, score_hat=score_hat, alpha_t=alpha_t, alpha_bar_prev=alpha_bar_prev)
    return (1/2)*(1 - alpha_t)*(-score + score_hat)**2*((1 - alpha_t) + alpha_t*(1 - alpha_bar_prev))/(alpha_t*(1 - alpha_bar_prev))


@register(151)
def score_from_eps(*, eps_hat, alpha_bar_t):
    r"""Score prediction from a noise prediction, eq. (151).

    .. math:: s_\theta(x_t, t) = - \frac{\hat\epsilon_\theta(x_t, t)}{\sqrt{1 - \bar\alpha_t}}

    Domains: eps_hat real, alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.score_is_scaled_noise``.
    """
    eps_hat = as_float64("eps_hat", eps_hat, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(eps_hat=eps_hat, alpha_bar_t=alpha_bar_t)
    return -eps_hat/numpy.sqrt(1 - alpha_bar_t)


@register(151)
def eps_from_score(*, score_hat, alpha_bar_t):
    r"""Noise prediction from a score prediction, eq. (151).

    .. math:: \hat\epsilon_\theta(x_t, t) = - s_\theta(x_t, t) \sqrt{1 - \bar\alpha_t}

    Domains: score_hat real, alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.eps_from_conditional_score``.
    """
    score_hat = as_float64("score_hat", score_hat, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(score_hat=score_hat, alpha_bar_t=alpha_bar_t)
    return -score_hat*numpy.sqrt(1 - alpha_bar_t)


@register(110)
def x0_loss(*, x_0, x_0_hat, alpha_t, alpha_bar_prev):
    r"""x_0-prediction loss per coordinate (the weight of eq. (110)), eq. (110).

    .. math:: \mathcal{L}_{x_0} = \frac{\bar\alpha_{t-1} \left(1 - \alpha_t\right) \left(x_0 - \hat x_\theta(x_t, t)\right)^{2}}{\left(2 - 2 \bar\alpha_{t-1}\right) \left(1 - \alpha_t \bar\alpha_{t-1}\right)}

    Domains: x_0 real, x_0_hat real, alpha_t in (0, 1], alpha_bar_prev in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.three_losses_agree``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    x_0_hat = as_float64("x_0_hat", x_0_hat, "real")
    alpha_t = as_float64("alpha_t", alpha_t, "unit")
    alpha_bar_prev = as_float64("alpha_bar_prev", alpha_bar_prev, "open_unit")
    check_broadcast(x_0=x_0, x_0_hat=x_0_hat, alpha_t=alpha_t, alpha_bar_prev=alpha_bar_prev)
    return alpha_bar_prev*(1 - alpha_t)*(x_0 - x_0_hat)**2/((2 - 2*alpha_bar_prev)*((1 - alpha_t) + alpha_t*(1 - alpha_bar_prev)))


@register(115, 'v.x0')
def x_0_from_v(*, x_t, v_hat, alpha_bar_t):
    r"""Clean-sample prediction from a v prediction, eq. (115); v.x0.

    .. math:: \hat x_\theta(x_t, t) = \sqrt{\bar\alpha_t} x_t - \hat v_\theta(x_t, t) \sqrt{1 - \bar\alpha_t}

    Domains: x_t real, v_hat real, alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.v_prediction``.
    """
    x_t = as_float64("x_t", x_t, "real")
    v_hat = as_float64("v_hat", v_hat, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(x_t=x_t, v_hat=v_hat, alpha_bar_t=alpha_bar_t)
    return numpy.sqrt(alpha_bar_t)*x_t - v_hat*numpy.sqrt(1 - alpha_bar_t)


@register(115, 'v.eps')
def eps_from_v(*, x_t, v_hat, alpha_bar_t):
    r"""Noise prediction from a v prediction, eq. (115); v.eps.

    .. math:: \hat\epsilon_\theta(x_t, t) = \sqrt{\bar\alpha_t} \hat v_\theta(x_t, t) + x_t \sqrt{1 - \bar\alpha_t}

    Domains: x_t real, v_hat real, alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.v_prediction``.
    """
    x_t = as_float64("x_t", x_t, "real")
    v_hat = as_float64("v_hat", v_hat, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(x_t=x_t, v_hat=v_hat, alpha_bar_t=alpha_bar_t)
    return numpy.sqrt(alpha_bar_t)*v_hat + x_t*numpy.sqrt(1 - alpha_bar_t)


@register(115)
def v_from_x_0(*, x_t, x_0_hat, alpha_bar_t):
    r"""v prediction from a clean-sample prediction, eq. (115).

    .. math:: \hat v_\theta(x_t, t) = \frac{\sqrt{\bar\alpha_t} x_t - \hat x_\theta(x_t, t)}{\sqrt{1 - \bar\alpha_t}}

    Domains: x_t real, x_0_hat real, alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.v_prediction``.
    """
    x_t = as_float64("x_t", x_t, "real")
    x_0_hat = as_float64("x_0_hat", x_0_hat, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(x_t=x_t, x_0_hat=x_0_hat, alpha_bar_t=alpha_bar_t)
    return (numpy.sqrt(alpha_bar_t)*x_t - x_0_hat)/numpy.sqrt(1 - alpha_bar_t)


@register(115)
def v_from_eps(*, x_t, eps_hat, alpha_bar_t):
    r"""v prediction from a noise prediction, eq. (115).

    .. math:: \hat v_\theta(x_t, t) = \frac{\hat\epsilon_\theta(x_t, t) - x_t \sqrt{1 - \bar\alpha_t}}{\sqrt{\bar\alpha_t}}

    Domains: x_t real, eps_hat real, alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.v_prediction``.
    """
    x_t = as_float64("x_t", x_t, "real")
    eps_hat = as_float64("eps_hat", eps_hat, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(x_t=x_t, eps_hat=eps_hat, alpha_bar_t=alpha_bar_t)
    return (eps_hat - x_t*numpy.sqrt(1 - alpha_bar_t))/numpy.sqrt(alpha_bar_t)


@register(115, 151)
def v_from_score(*, x_t, score_hat, alpha_bar_t):
    r"""v prediction from a score prediction, eqs. (115), (151).

    .. math:: \hat v_\theta(x_t, t) = - \frac{\sqrt{1 - \bar\alpha_t} \left(s_\theta(x_t, t) + x_t\right)}{\sqrt{\bar\alpha_t}}

    Domains: x_t real, score_hat real, alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.v_prediction``.
    """
    x_t = as_float64("x_t", x_t, "real")
    score_hat = as_float64("score_hat", score_hat, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(x_t=x_t, score_hat=score_hat, alpha_bar_t=alpha_bar_t)
    return -numpy.sqrt(1 - alpha_bar_t)*(score_hat + x_t)/numpy.sqrt(alpha_bar_t)


@register(115, 151)
def score_from_v(*, x_t, v_hat, alpha_bar_t):
    r"""Score prediction from a v prediction, eqs. (115), (151).

    .. math:: s_\theta(x_t, t) = - \frac{\sqrt{\bar\alpha_t} \hat v_\theta(x_t, t)}{\sqrt{1 - \bar\alpha_t}} - x_t

    Domains: x_t real, v_hat real, alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.interpretations.v_prediction``.
    """
    x_t = as_float64("x_t", x_t, "real")
    v_hat = as_float64("v_hat", v_hat, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(x_t=x_t, v_hat=v_hat, alpha_bar_t=alpha_bar_t)
    return -numpy.sqrt(alpha_bar_t)*v_hat/numpy.sqrt(1 - alpha_bar_t) - x_t
