"""Variational Diffusion Models: closed forms generated from derivations/vdm.py.

Do not edit: run `udm generate`. Each function is the SymPy result printed as NumPy.
"""

import numpy

from udm.reference import _stable
from udm.reference._args import as_float64, check_broadcast
from udm import register

__all__ = ['elbo_reconstruction_term', 'elbo_prior_term', 'elbo_denoising_term', 'elbo_prior_term_consistency', 'elbo_consistency_term', 'q_sample', 'q_mean', 'q_var', 'mu_q', 'var_q', 'kl_normal', 'denoising_kl', 'x_0_loss_weight', 'linear_beta_t', 'scaled_linear_beta_t', 'cosine_beta_t', 'log_alpha_t', 'q_var_from_log_alpha_bar', 'var_q_from_log_alpha_bars', 'log_var_q_from_log_alpha_bars', 'log_snr_from_log_alpha_bar', 'x_0_loss_weight_from_log_alpha_bars', 'eps_loss_weight_from_log_alpha_bars', 'score_loss_weight_from_log_alpha_bars']


@register(45, 58)
def elbo_reconstruction_term(*, x_0, alpha_t, a_t, c_t, var_theta):
    r"""Reconstruction term E_{q(x_1|x_0)}[log N(x_0; a_t x_1 + c_t, var_theta)] at t = 1 (alpha_t = alpha_1), eqs. (45), (58).

    .. math:: \mathbb{E}_{q(x_1|x_0)}[\log p_\theta(x_0|x_1)] = - \frac{\log{\left(2 \pi \sigma_\theta^2 \right)}}{2} - \frac{a_{t}^{2} \left(1 - \alpha_t\right) + \left(- c_{t} + x_0 \left(- a_{t} \sqrt{\alpha_t} + 1\right)\right)^{2}}{2 \sigma_\theta^2}

    Domains: x_0 real, alpha_t in (0, 1], a_t real, c_t real, var_theta > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.elbo.elbo_reconstruction_term``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    alpha_t = as_float64("alpha_t", alpha_t, "unit")
    a_t = as_float64("a_t", a_t, "real")
    c_t = as_float64("c_t", c_t, "real")
    var_theta = as_float64("var_theta", var_theta, "positive")
    check_broadcast(x_0=x_0, alpha_t=alpha_t, a_t=a_t, c_t=c_t, var_theta=var_theta)
    return -1/2*numpy.log(2*numpy.pi*var_theta) - 1/2*(a_t**2*(1 - alpha_t) + (-c_t + x_0*(-a_t*numpy.sqrt(alpha_t) + 1))**2)/var_theta


@register(58)
def elbo_prior_term(*, x_0, alpha_bar_t):
    r"""Prior matching term KL(q(x_T|x_0) || N(0, 1)) at alpha_bar_t = alpha_bar_T, eq. (58).

    .. math:: D_{\mathrm{KL}}(q(x_T|x_0) \| p(x_T)) = \frac{\bar\alpha_t x_0^{2}}{2} + \frac{\operatorname{expm1mx}\left(\log\left(1 - \bar\alpha_t\right)\right)}{2}

    Domains: x_0 real, alpha_bar_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.elbo.elbo_prior_term``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    check_broadcast(x_0=x_0, alpha_bar_t=alpha_bar_t)
    return (1/2)*alpha_bar_t*x_0**2 + (1/2)*_stable.expm1mx(numpy.log1p(-alpha_bar_t))


@register(58)
def elbo_denoising_term(*, x_0, alpha_t, alpha_bar_prev, a_t, c_t, var_theta):
    r"""Denoising matching term E_{q(x_t|x_0)}[KL(q(x_{t-1}|x_t, x_0) || N(a_t x_t + c_t, var_theta))] at one t >= 2, eq. (58).

    .. math:: \mathbb{E}_{q(x_t|x_0)}[D_{\mathrm{KL}}(q(x_{t-1}|x_t, x_0) \| p_\theta(x_{t-1}|x_t))] = \frac{\log{\left(\sigma_\theta^2 \right)}}{2} - \frac{\log{\left(1 - \bar\alpha_{t-1} \right)}}{2} - \frac{\log{\left(1 - \alpha_t \right)}}{2} + \frac{\log{\left(- \bar\alpha_{t-1} \alpha_t + 1 \right)}}{2} - \frac{1}{2} + \frac{\frac{\left(1 - \bar\alpha_{t-1}\right) \left(1 - \alpha_t\right)}{- \bar\alpha_{t-1} \alpha_t + 1} + \left(- a_{t} + \frac{\sqrt{\alpha_t} \left(1 - \bar\alpha_{t-1}\right)}{- \bar\alpha_{t-1} \alpha_t + 1}\right)^{2} \left(- \bar\alpha_{t-1} \alpha_t + 1\right) + \left(\sqrt{\bar\alpha_{t-1}} \sqrt{\alpha_t} x_0 \left(- a_{t} + \frac{\sqrt{\alpha_t} \left(1 - \bar\alpha_{t-1}\right)}{- \bar\alpha_{t-1} \alpha_t + 1}\right) + \frac{\sqrt{\bar\alpha_{t-1}} x_0 \left(1 - \alpha_t\right)}{- \bar\alpha_{t-1} \alpha_t + 1} - c_{t}\right)^{2}}{2 \sigma_\theta^2}

    Domains: x_0 real, alpha_t in (0, 1), alpha_bar_prev in (0, 1), a_t real, c_t real, var_theta > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.elbo.elbo_denoising_term``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    alpha_t = as_float64("alpha_t", alpha_t, "open_unit")
    alpha_bar_prev = as_float64("alpha_bar_prev", alpha_bar_prev, "open_unit")
    a_t = as_float64("a_t", a_t, "real")
    c_t = as_float64("c_t", c_t, "real")
    var_theta = as_float64("var_theta", var_theta, "positive")
    check_broadcast(x_0=x_0, alpha_t=alpha_t, alpha_bar_prev=alpha_bar_prev, a_t=a_t, c_t=c_t, var_theta=var_theta)
    return (1/2)*numpy.log(var_theta) - 1/2*numpy.log(1 - alpha_bar_prev) - 1/2*numpy.log(1 - alpha_t) + (1/2)*numpy.log(-alpha_bar_prev*alpha_t + 1) - 1/2 + (1/2)*((1 - alpha_bar_prev)*(1 - alpha_t)/(-alpha_bar_prev*alpha_t + 1) + (-a_t + numpy.sqrt(alpha_t)*(1 - alpha_bar_prev)/(-alpha_bar_prev*alpha_t + 1))**2*(-alpha_bar_prev*alpha_t + 1) + (numpy.sqrt(alpha_bar_prev)*numpy.sqrt(alpha_t)*x_0*(-a_t + numpy.sqrt(alpha_t)*(1 - alpha_bar_prev)/(-alpha_bar_prev*alpha_t + 1)) + numpy.sqrt(alpha_bar_prev)*x_0*(1 - alpha_t)/(-alpha_bar_prev*alpha_t + 1) - c_t)**2)/var_theta


@register(45)
def elbo_prior_term_consistency(*, x_0, alpha_t, alpha_bar_prev):
    r"""Prior matching term of derivation one, E_{q(x_{T-1}|x_0)}[KL(q(x_T|x_{T-1}) || N(0, 1))] at t = T, eq. (45).

    .. math:: \mathbb{E}_{q(x_{T-1}|x_0)}[D_{\mathrm{KL}}(q(x_T|x_{T-1}) \| p(x_T))] = \frac{\alpha_t \left(\bar\alpha_{t-1} x_0^{2} - \bar\alpha_{t-1} + 1\right)}{2} - \frac{\alpha_t}{2} - \frac{\log{\left(1 - \alpha_t \right)}}{2}

    Domains: x_0 real, alpha_t in (0, 1), alpha_bar_prev in (0, 1]. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.elbo.elbo_prior_term_consistency``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    alpha_t = as_float64("alpha_t", alpha_t, "open_unit")
    alpha_bar_prev = as_float64("alpha_bar_prev", alpha_bar_prev, "unit")
    check_broadcast(x_0=x_0, alpha_t=alpha_t, alpha_bar_prev=alpha_bar_prev)
    return (1/2)*alpha_t*(alpha_bar_prev*x_0**2 - alpha_bar_prev + 1) - 1/2*alpha_t - 1/2*numpy.log(1 - alpha_t)


@register(45)
def elbo_consistency_term(*, x_0, alpha_t, alpha_next, alpha_bar_prev, a_next, c_next, var_theta_next):
    r"""Consistency term at one t in 1..T-1: E_q[log q(x_t|x_{t-1}) - log N(x_t; a_next x_{t+1} + c_next, var_theta_next)] under the chain's joint law, eq. (45).

    .. math:: \mathbb{E}_{q(x_{t-1},x_t,x_{t+1}|x_0)}\left[\log \frac{q(x_t|x_{t-1})}{p_\theta(x_t|x_{t+1})}\right] = \frac{\log{\left(var_{\theta next} \right)}}{2} - \frac{\log{\left(1 - \alpha_t \right)}}{2} - \frac{1}{2} + \frac{a_{next}^{2} \left(1 - \alpha_{next}\right) + \left(- a_{next} \sqrt{\alpha_{next}} + 1\right)^{2} \left(- \bar\alpha_{t-1} \alpha_t + 1\right) + \left(\sqrt{\bar\alpha_{t-1}} \sqrt{\alpha_t} x_0 \left(- a_{next} \sqrt{\alpha_{next}} + 1\right) - c_{next}\right)^{2}}{2 var_{\theta next}}

    Domains: x_0 real, alpha_t in (0, 1), alpha_next in (0, 1], alpha_bar_prev in (0, 1], a_next real, c_next real, var_theta_next > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.elbo.elbo_consistency_term``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    alpha_t = as_float64("alpha_t", alpha_t, "open_unit")
    alpha_next = as_float64("alpha_next", alpha_next, "unit")
    alpha_bar_prev = as_float64("alpha_bar_prev", alpha_bar_prev, "unit")
    a_next = as_float64("a_next", a_next, "real")
    c_next = as_float64("c_next", c_next, "real")
    var_theta_next = as_float64("var_theta_next", var_theta_next, "positive")
    check_broadcast(x_0=x_0, alpha_t=alpha_t, alpha_next=alpha_next, alpha_bar_prev=alpha_bar_prev, a_next=a_next, c_next=c_next, var_theta_next=var_theta_next)
    return (1/2)*numpy.log(var_theta_next) - 1/2*numpy.log(1 - alpha_t) - 1/2 + (1/2)*(a_next**2*(1 - alpha_next) + (-a_next*numpy.sqrt(alpha_next) + 1)**2*(-alpha_bar_prev*alpha_t + 1) + (numpy.sqrt(alpha_bar_prev)*numpy.sqrt(alpha_t)*x_0*(-a_next*numpy.sqrt(alpha_next) + 1) - c_next)**2)/var_theta_next


@register(69)
def q_sample(*, x_0, alpha_bar_t, eps):
    r"""Reparameterized sample of q(x_t | x_0) from standard normal noise eps, eq. (69).

    .. math:: x_t = \sqrt{\bar\alpha_t} x_0 + \epsilon_0 \sqrt{1 - \bar\alpha_t}

    Domains: x_0 real, alpha_bar_t in (0, 1], eps real. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.forward.forward_marginal``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "unit")
    eps = as_float64("eps", eps, "real")
    check_broadcast(x_0=x_0, alpha_bar_t=alpha_bar_t, eps=eps)
    return numpy.sqrt(alpha_bar_t)*x_0 + eps*numpy.sqrt(1 - alpha_bar_t)


@register(70)
def q_mean(*, x_0, alpha_bar_t):
    r"""Mean of q(x_t | x_0), eq. (70).

    .. math:: \mathbb{E}[x_t \mid x_0] = \sqrt{\bar\alpha_t} x_0

    Domains: x_0 real, alpha_bar_t in (0, 1]. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.forward.forward_marginal_law``.
    """
    x_0 = as_float64("x_0", x_0, "real")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "unit")
    check_broadcast(x_0=x_0, alpha_bar_t=alpha_bar_t)
    return numpy.sqrt(alpha_bar_t)*x_0


@register(70)
def q_var(*, alpha_bar_t):
    r"""Variance of q(x_t | x_0) (per coordinate), eq. (70).

    .. math:: \mathrm{Var}[x_t \mid x_0] = 1 - \bar\alpha_t

    Domains: alpha_bar_t in (0, 1]. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.forward.forward_marginal_law``.
    """
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "unit")
    check_broadcast(alpha_bar_t=alpha_bar_t)
    return 1 - alpha_bar_t


@register(84, 93)
def mu_q(*, x_t, x_0, alpha_t, alpha_bar_t, alpha_bar_prev):
    r"""Mean of the forward posterior q(x_{t-1} | x_t, x_0), eqs. (84), (93).

    .. math:: \mu_q(x_t, x_0) = \frac{\sqrt{\bar\alpha_{t-1}} x_0 \left(1 - \alpha_t\right) + \sqrt{\alpha_t} x_t \left(1 - \bar\alpha_{t-1}\right)}{1 - \bar\alpha_t}

    Domains: x_t real, x_0 real, alpha_t in (0, 1], alpha_bar_t in (0, 1), alpha_bar_prev in (0, 1]. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.posterior.posterior_moments``.
    """
    x_t = as_float64("x_t", x_t, "real")
    x_0 = as_float64("x_0", x_0, "real")
    alpha_t = as_float64("alpha_t", alpha_t, "unit")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    alpha_bar_prev = as_float64("alpha_bar_prev", alpha_bar_prev, "unit")
    check_broadcast(x_t=x_t, x_0=x_0, alpha_t=alpha_t, alpha_bar_t=alpha_bar_t, alpha_bar_prev=alpha_bar_prev)
    return (numpy.sqrt(alpha_bar_prev)*x_0*(1 - alpha_t) + numpy.sqrt(alpha_t)*x_t*(1 - alpha_bar_prev))/(1 - alpha_bar_t)


@register(85)
def var_q(*, alpha_t, alpha_bar_t, alpha_bar_prev):
    r"""Variance of the forward posterior q(x_{t-1} | x_t, x_0) (per coordinate), eq. (85).

    .. math:: \sigma_q^2(t) = \frac{\left(1 - \bar\alpha_{t-1}\right) \left(1 - \alpha_t\right)}{1 - \bar\alpha_t}

    Domains: alpha_t in (0, 1], alpha_bar_t in (0, 1), alpha_bar_prev in (0, 1]. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.posterior.posterior_moments``.
    """
    alpha_t = as_float64("alpha_t", alpha_t, "unit")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    alpha_bar_prev = as_float64("alpha_bar_prev", alpha_bar_prev, "unit")
    check_broadcast(alpha_t=alpha_t, alpha_bar_t=alpha_bar_t, alpha_bar_prev=alpha_bar_prev)
    return (1 - alpha_bar_prev)*(1 - alpha_t)/(1 - alpha_bar_t)


@register(86)
def kl_normal(*, mean_q, var_q, mean_p, var_p):
    r"""KL(N(mean_q, var_q) || N(mean_p, var_p)) per coordinate (sum over coordinates for a diagonal covariance), eq. (86).

    .. math:: D_{\mathrm{KL}}(\mathcal{N}(\mu_q, \sigma_q^2) \| \mathcal{N}(\mu_p, \sigma_p^2)) = \frac{\operatorname{expm1mx}\left(\log\frac{\sigma_q^2}{\sigma_p^2}\right)}{2} + \frac{\left(- \mu_p + \mu_q\right)^{2}}{2 \sigma_p^2}

    Domains: mean_q real, var_q > 0, mean_p real, var_p > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.objective.gaussian_kl``.
    """
    mean_q = as_float64("mean_q", mean_q, "real")
    var_q = as_float64("var_q", var_q, "positive")
    mean_p = as_float64("mean_p", mean_p, "real")
    var_p = as_float64("var_p", var_p, "positive")
    check_broadcast(mean_q=mean_q, var_q=var_q, mean_p=mean_p, var_p=var_p)
    return (1/2)*_stable.expm1mx(_stable.log_ratio(var_q, var_p)) + (1/2)*(-mean_p + mean_q)**2/var_p


@register(92)
def denoising_kl(*, mu_q, mu_theta, var_q):
    r"""KL(N(mu_q, var_q) || N(mu_theta, var_q)) per coordinate (sum over coordinates), eq. (92).

    .. math:: D_{\mathrm{KL}}(\mathcal{N}(\mu_q, \sigma_q^2) \| \mathcal{N}(\mu_\theta, \sigma_q^2)) = \frac{\left(- \mu_{q} + \mu_{\theta}\right)^{2}}{2 \sigma_q^2}

    Domains: mu_q real, mu_theta real, var_q > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.objective.denoising_kl_matched_variance``.
    """
    mu_q = as_float64("mu_q", mu_q, "real")
    mu_theta = as_float64("mu_theta", mu_theta, "real")
    var_q = as_float64("var_q", var_q, "positive")
    check_broadcast(mu_q=mu_q, mu_theta=mu_theta, var_q=var_q)
    return (1/2)*(-mu_q + mu_theta)**2/var_q


@register(99, 101)
def x_0_loss_weight(*, alpha_t, alpha_bar_t, alpha_bar_prev):
    r"""Weight of ||x_0_hat - x_0||^2 in the denoising KL (t >= 2), eqs. (99), (101).

    .. math:: \frac{1}{2\sigma_q^2(t)}\frac{\bar\alpha_{t-1}(1-\alpha_t)^2}{(1-\bar\alpha_t)^2} = \frac{\bar\alpha_{t-1} \left(1 - \alpha_t\right)}{2 \left(1 - \bar\alpha_{t-1}\right) \left(1 - \bar\alpha_t\right)}

    Domains: alpha_t in (0, 1], alpha_bar_t in (0, 1), alpha_bar_prev in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.objective.x_0_objective``.
    """
    alpha_t = as_float64("alpha_t", alpha_t, "unit")
    alpha_bar_t = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    alpha_bar_prev = as_float64("alpha_bar_prev", alpha_bar_prev, "open_unit")
    check_broadcast(alpha_t=alpha_t, alpha_bar_t=alpha_bar_t, alpha_bar_prev=alpha_bar_prev)
    return (1/2)*alpha_bar_prev*(1 - alpha_t)/((1 - alpha_bar_prev)*(1 - alpha_bar_t))


@register(31)
def linear_beta_t(*, t, T, beta_start, beta_end):
    r"""DDPM's linear schedule: beta_t = 1 - alpha_t at step t of T, eq. (31).

    .. math:: \beta_t = \beta_{start} + \frac{\beta_{end} - \beta_{start}}{T - 1} \left(t - 1\right)

    Domains: t > 0, T > 0, beta_start in (0, 1), beta_end in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.schedules.named_schedules``.
    """
    t = as_float64("t", t, "positive")
    T = as_float64("T", T, "positive")
    beta_start = as_float64("beta_start", beta_start, "open_unit")
    beta_end = as_float64("beta_end", beta_end, "open_unit")
    check_broadcast(t=t, T=T, beta_start=beta_start, beta_end=beta_end)
    return beta_start + ((beta_end - beta_start)/(T - 1))*(t - 1)


@register(31)
def scaled_linear_beta_t(*, t, T, beta_start, beta_end):
    r"""Stable Diffusion's scaled-linear: beta_t = 1 - alpha_t at step t of T, eq. (31).

    .. math:: \beta_t = \left(\sqrt{\beta_{start}} + \frac{\sqrt{\beta_{end}} - \sqrt{\beta_{start}}}{T - 1} \left(t - 1\right)\right)^{2}

    Domains: t > 0, T > 0, beta_start in (0, 1), beta_end in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.schedules.named_schedules``.
    """
    t = as_float64("t", t, "positive")
    T = as_float64("T", T, "positive")
    beta_start = as_float64("beta_start", beta_start, "open_unit")
    beta_end = as_float64("beta_end", beta_end, "open_unit")
    check_broadcast(t=t, T=T, beta_start=beta_start, beta_end=beta_end)
    return (numpy.sqrt(beta_start) + ((numpy.sqrt(beta_end) - numpy.sqrt(beta_start))/(T - 1))*(t - 1))**2


@register(31, 70)
def cosine_beta_t(*, t, T, s):
    r"""Improved DDPM's cosine schedule (before clipping): beta_t = 1 - alpha_t at step t of T, eqs. (31), (70).

    .. math:: \beta_t = - \frac{\cos^{2}{\left(\frac{\pi}{2} \frac{s + \frac{t}{T}}{s + 1} \right)}}{\cos^{2}{\left(\frac{\pi}{2} \frac{s + \frac{t - 1}{T}}{s + 1} \right)}} + 1

    Domains: t > 0, T > 0, s > 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.schedules.named_schedules``.
    """
    t = as_float64("t", t, "positive")
    T = as_float64("T", T, "positive")
    s = as_float64("s", s, "positive")
    check_broadcast(t=t, T=T, s=s)
    return -numpy.cos(((1/2)*numpy.pi)*((s + t/T)/(s + 1)))**2/numpy.cos(((1/2)*numpy.pi)*((s + (t - 1)/T)/(s + 1)))**2 + 1


@register(31)
def log_alpha_t(*, beta_t):
    r"""log alpha_t = log(1 - beta_t) (eq. (31)), eq. (31).

    .. math:: \log\alpha_t = \operatorname{log1p}{\left(- \beta_t \right)}

    Domains: beta_t in (0, 1). Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.schedules.schedule_in_log_space``.
    """
    beta_t = as_float64("beta_t", beta_t, "open_unit")
    check_broadcast(beta_t=beta_t)
    return numpy.log1p(-beta_t)


@register(70)
def q_var_from_log_alpha_bar(*, log_alpha_bar_t):
    r"""Variance 1 - alpha_bar_t of q(x_t | x_0) from log alpha_bar_t, eq. (70).

    .. math:: 1 - \bar\alpha_t = - \operatorname{expm}_{1}{\left(\log\bar\alpha_t \right)}

    Domains: log_alpha_bar_t < 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.schedules.schedule_in_log_space``.
    """
    log_alpha_bar_t = as_float64("log_alpha_bar_t", log_alpha_bar_t, "negative")
    check_broadcast(log_alpha_bar_t=log_alpha_bar_t)
    return -numpy.expm1(log_alpha_bar_t)


@register(85)
def var_q_from_log_alpha_bars(*, beta_t, log_alpha_bar_t, log_alpha_bar_prev):
    r"""Variance of q(x_{t-1} | x_t, x_0) from beta_t and the log alpha_bars, eq. (85).

    .. math:: \sigma_q^2(t) = \frac{\beta_t \operatorname{expm}_{1}{\left(\log\bar\alpha_{t-1} \right)}}{\operatorname{expm}_{1}{\left(\log\bar\alpha_t \right)}}

    Domains: beta_t in (0, 1), log_alpha_bar_t < 0, log_alpha_bar_prev <= 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.schedules.schedule_in_log_space``.
    """
    beta_t = as_float64("beta_t", beta_t, "open_unit")
    log_alpha_bar_t = as_float64("log_alpha_bar_t", log_alpha_bar_t, "negative")
    log_alpha_bar_prev = as_float64("log_alpha_bar_prev", log_alpha_bar_prev, "nonpositive")
    check_broadcast(beta_t=beta_t, log_alpha_bar_t=log_alpha_bar_t, log_alpha_bar_prev=log_alpha_bar_prev)
    return beta_t*numpy.expm1(log_alpha_bar_prev)/numpy.expm1(log_alpha_bar_t)


@register(85)
def log_var_q_from_log_alpha_bars(*, beta_t, log_alpha_bar_t, log_alpha_bar_prev):
    r"""log of the variance of q(x_{t-1} | x_t, x_0) (-inf at t = 1, where log_alpha_bar_prev = 0), eq. (85).

    .. math:: \log\sigma_q^2(t) = \begin{cases} \log{\left(- \operatorname{expm}_{1}{\left(\log\bar\alpha_{t-1} \right)} \right)} & \text{for}\: \log\bar\alpha_{t-1} > - \log{\left(2 \right)} \\\operatorname{log1p}{\left(- e^{\log\bar\alpha_{t-1}} \right)} & \text{otherwise} \end{cases} - \begin{cases} \log{\left(- \operatorname{expm}_{1}{\left(\log\bar\alpha_t \right)} \right)} & \text{for}\: \log\bar\alpha_t > - \log{\left(2 \right)} \\\operatorname{log1p}{\left(- e^{\log\bar\alpha_t} \right)} & \text{otherwise} \end{cases} + \log{\left(\beta_t \right)}

    Domains: beta_t in (0, 1), log_alpha_bar_t < 0, log_alpha_bar_prev <= 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.schedules.schedule_in_log_space``.
    """
    beta_t = as_float64("beta_t", beta_t, "open_unit")
    log_alpha_bar_t = as_float64("log_alpha_bar_t", log_alpha_bar_t, "negative")
    log_alpha_bar_prev = as_float64("log_alpha_bar_prev", log_alpha_bar_prev, "nonpositive")
    check_broadcast(beta_t=beta_t, log_alpha_bar_t=log_alpha_bar_t, log_alpha_bar_prev=log_alpha_bar_prev)
    return numpy.select([numpy.greater(log_alpha_bar_prev, -numpy.log(2)),True], [numpy.log(-numpy.expm1(log_alpha_bar_prev)),numpy.log1p(-numpy.exp(log_alpha_bar_prev))], default=numpy.nan) - numpy.select([numpy.greater(log_alpha_bar_t, -numpy.log(2)),True], [numpy.log(-numpy.expm1(log_alpha_bar_t)),numpy.log1p(-numpy.exp(log_alpha_bar_t))], default=numpy.nan) + numpy.log(beta_t)


@register(109)
def log_snr_from_log_alpha_bar(*, log_alpha_bar_t):
    r"""log SNR(t) from log alpha_bar_t, eq. (109).

    .. math:: \log\mathrm{SNR}(t) = \log\bar\alpha_t - \begin{cases} \log{\left(- \operatorname{expm}_{1}{\left(\log\bar\alpha_t \right)} \right)} & \text{for}\: \log\bar\alpha_t > - \log{\left(2 \right)} \\\operatorname{log1p}{\left(- e^{\log\bar\alpha_t} \right)} & \text{otherwise} \end{cases}

    Domains: log_alpha_bar_t < 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.schedules.schedule_in_log_space``.
    """
    log_alpha_bar_t = as_float64("log_alpha_bar_t", log_alpha_bar_t, "negative")
    check_broadcast(log_alpha_bar_t=log_alpha_bar_t)
    return log_alpha_bar_t - numpy.select([numpy.greater(log_alpha_bar_t, -numpy.log(2)),True], [numpy.log(-numpy.expm1(log_alpha_bar_t)),numpy.log1p(-numpy.exp(log_alpha_bar_t))], default=numpy.nan)


@register(99)
def x_0_loss_weight_from_log_alpha_bars(*, beta_t, log_alpha_bar_t, log_alpha_bar_prev):
    r"""Weight of ||x_0 - x_0_hat||^2 (eq. (99), sigma_q^2 inserted) from beta_t and the log alpha_bars (inf at t = 1, where log_alpha_bar_prev = 0), eq. (99).

    .. math:: w_{x_0}(t) = \frac{\beta_t e^{\log\bar\alpha_{t-1}}}{2 \left(1 - e^{\log\bar\alpha_{t-1}}\right) \left(1 - e^{\log\bar\alpha_t}\right)}

    Domains: beta_t in (0, 1), log_alpha_bar_t < 0, log_alpha_bar_prev <= 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.schedules.schedule_in_log_space``.
    """
    beta_t = as_float64("beta_t", beta_t, "open_unit")
    log_alpha_bar_t = as_float64("log_alpha_bar_t", log_alpha_bar_t, "negative")
    log_alpha_bar_prev = as_float64("log_alpha_bar_prev", log_alpha_bar_prev, "nonpositive")
    check_broadcast(beta_t=beta_t, log_alpha_bar_t=log_alpha_bar_t, log_alpha_bar_prev=log_alpha_bar_prev)
    return (1/2)*beta_t*numpy.exp(log_alpha_bar_prev)/((-numpy.expm1(log_alpha_bar_prev) + 0.0)*(-numpy.expm1(log_alpha_bar_t) + 0.0))


@register(130)
def eps_loss_weight_from_log_alpha_bars(*, beta_t, log_alpha_bar_prev):
    r"""Weight of ||eps - eps_hat||^2 (eq. (130), sigma_q^2 inserted) from beta_t and log alpha_bar_{t-1} (inf at t = 1), eq. (130).

    .. math:: w_{\epsilon}(t) = \frac{\beta_t}{\left(2 - 2 \beta_t\right) \left(1 - e^{\log\bar\alpha_{t-1}}\right)}

    Domains: beta_t in (0, 1), log_alpha_bar_prev <= 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.schedules.schedule_in_log_space``.
    """
    beta_t = as_float64("beta_t", beta_t, "open_unit")
    log_alpha_bar_prev = as_float64("log_alpha_bar_prev", log_alpha_bar_prev, "nonpositive")
    check_broadcast(beta_t=beta_t, log_alpha_bar_prev=log_alpha_bar_prev)
    return beta_t/((2 - 2*beta_t)*(-numpy.expm1(log_alpha_bar_prev) + 0.0))


@register(148)
def score_loss_weight_from_log_alpha_bars(*, beta_t, log_alpha_bar_t, log_alpha_bar_prev):
    r"""Weight of ||s_hat - score||^2 (eq. (148), sigma_q^2 inserted) from beta_t and the log alpha_bars (inf at t = 1), eq. (148).

    .. math:: w_{s}(t) = \frac{\beta_t \left(1 - e^{\log\bar\alpha_t}\right)}{\left(2 - 2 \beta_t\right) \left(1 - e^{\log\bar\alpha_{t-1}}\right)}

    Domains: beta_t in (0, 1), log_alpha_bar_t < 0, log_alpha_bar_prev <= 0. Arguments broadcast; float64 NumPy in and out.
    Generated from ``udm.derivations.vdm.schedules.schedule_in_log_space``.
    """
    beta_t = as_float64("beta_t", beta_t, "open_unit")
    log_alpha_bar_t = as_float64("log_alpha_bar_t", log_alpha_bar_t, "negative")
    log_alpha_bar_prev = as_float64("log_alpha_bar_prev", log_alpha_bar_prev, "nonpositive")
    check_broadcast(beta_t=beta_t, log_alpha_bar_t=log_alpha_bar_t, log_alpha_bar_prev=log_alpha_bar_prev)
    return beta_t*(-numpy.expm1(log_alpha_bar_t) + 0.0)/((2 - 2*beta_t)*(-numpy.expm1(log_alpha_bar_prev) + 0.0))
