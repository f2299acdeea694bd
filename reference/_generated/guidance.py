"""Guidance: closed forms generated from derivations/guidance.py.

Do not edit: run `udm generate`. Each function is the SymPy result printed as NumPy.
"""

import numpy

from udm.reference._args import as_float64, check_broadcast
from udm import register

__all__ = ['classifier_guided_score', 'implicit_classifier_grad', 'cfg_score']


@register(166)
def classifier_guided_score(*, score, grad_log_classifier, guidance_scale):
    r"""Classifier-guided score, eq. (166).

    .. math:: \nabla\log p_\gamma(x_t \mid y) = grad_{log classifier} \gamma + \nabla\log p(x_t)

    Domains: score real, grad_log_classifier real, guidance_scale real. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.guidance.classifier_guidance``.
    """
    score = as_float64("score", score, "real")
    grad_log_classifier = as_float64("grad_log_classifier", grad_log_classifier, "real")
    guidance_scale = as_float64("guidance_scale", guidance_scale, "real")
    check_broadcast(score=score, grad_log_classifier=grad_log_classifier, guidance_scale=guidance_scale)
    return grad_log_classifier*guidance_scale + score


@register(167)
def implicit_classifier_grad(*, score_cond, score):
    r"""Implicit classifier gradient from conditional and unconditional scores, eq. (167).

    .. math:: \nabla\log p(y \mid x_t) = - \nabla\log p(x_t) + score_{cond}

    Domains: score_cond real, score real. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.guidance.implicit_classifier``.
    """
    score_cond = as_float64("score_cond", score_cond, "real")
    score = as_float64("score", score, "real")
    check_broadcast(score_cond=score_cond, score=score)
    return -score + score_cond


@register(170)
def cfg_score(*, score, score_cond, guidance_scale):
    r"""Classifier-free guided score, eq. (170).

    .. math:: \tilde\nabla\log p(x_t \mid y) = \gamma score_{cond} + \nabla\log p(x_t) \left(1 - \gamma\right)

    Domains: score real, score_cond real, guidance_scale real. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.guidance.classifier_free_guidance``.
    """
    score = as_float64("score", score, "real")
    score_cond = as_float64("score_cond", score_cond, "real")
    guidance_scale = as_float64("guidance_scale", guidance_scale, "real")
    check_broadcast(score=score, score_cond=score_cond, guidance_scale=guidance_scale)
    return guidance_scale*score_cond + score*(1 - guidance_scale)
