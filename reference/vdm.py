"""Variational diffusion models (section 2.1, eqs. (30)-(100)): float64 reference.

The closed forms are generated from `derivations.vdm` into `reference._generated.vdm`
and re-exported here, so `reference.vdm.q_sample` is the derivation's result verbatim.
"""

# q(x_t | x_0), eqs. (69)-(70), and the Gaussian KL, eq. (86)
from reference._generated.vdm import kl_normal, q_mean, q_sample, q_var  # noqa: F401

# --- (region: VDM ELBO, eqs. (30)-(58)) ---
# Added by the vdm-elbo helper: the per-t terms are generated (reference._generated.vdm); the
# functions below assemble them over a whole schedule alpha_1..alpha_T (hand-written: the
# sum over t has no fixed-size closed form) for the linear-Gaussian reverse model
# p_theta(x_{t-1} | x_t) = N(a_t x_t + c_t, var_theta_t), p(x_T) = N(0, 1).
# isort: off
import numpy as _np

from reference._args import as_float64 as _as_float64
from reference._generated.vdm import (
    elbo_consistency_term,
    elbo_denoising_term,
    elbo_prior_term,
    elbo_prior_term_consistency,
    elbo_reconstruction_term,
)
from udm import register

# isort: on


def _schedule(alpha_t) -> _np.ndarray:
    alpha_t = _as_float64("alpha_t", alpha_t, "open_unit")
    if alpha_t.ndim != 1 or alpha_t.size < 1:
        raise ValueError(
            f"alpha_t must be a 1-D array alpha_1..alpha_T with T >= 1, got shape {alpha_t.shape}"
        )
    return alpha_t


def _reverse_model(T: int, a_t, c_t, var_theta):
    a_t = _as_float64("a_t", a_t, "real")
    c_t = _as_float64("c_t", c_t, "real")
    var_theta = _as_float64("var_theta", var_theta, "positive")
    for name, arr in (("a_t", a_t), ("c_t", c_t), ("var_theta", var_theta)):
        if arr.shape != (T,):
            raise ValueError(
                f"{name} must have shape ({T},) like alpha_t (t = 1..T), got {arr.shape}"
            )
    return a_t, c_t, var_theta


def _elbo_inputs(x_0, alpha_t, a_t, c_t, var_theta):
    alpha_t = _schedule(alpha_t)
    a_t, c_t, var_theta = _reverse_model(alpha_t.size, a_t, c_t, var_theta)
    x_0 = _as_float64("x_0", x_0, "real")[..., None]  # t runs along a new last axis
    alpha_bar = _np.cumprod(alpha_t)
    alpha_bar_prev = _np.concatenate([[1.0], alpha_bar[:-1]])  # paper indexing: alpha_bar_0 = 1
    return x_0, alpha_t, alpha_bar, alpha_bar_prev, a_t, c_t, var_theta


@register(45)
def vdm_elbo_terms_consistency(*, x_0, alpha_t, a_t, c_t, var_theta):
    """The terms of ELBO derivation one, eq. (45): (reconstruction, prior matching, consistency).

    ELBO = reconstruction - prior_matching - consistency.sum(-1). `alpha_t`, `a_t`, `c_t`,
    `var_theta` have shape (T,) (t = 1..T); `x_0` any shape S. Returns arrays of shapes S, S and
    S + (T - 1,) (consistency term t = 1..T-1, taken under the chain's joint law as in eq. (44);
    see `derivations.vdm.elbo_consistency_term` for how this differs from eq. (45)'s KL).
    """
    x_0, al, _, abp, a, c, v = _elbo_inputs(x_0, alpha_t, a_t, c_t, var_theta)
    recon = elbo_reconstruction_term(
        x_0=x_0[..., 0], alpha_t=al[0], a_t=a[0], c_t=c[0], var_theta=v[0]
    )
    prior = elbo_prior_term_consistency(x_0=x_0[..., 0], alpha_t=al[-1], alpha_bar_prev=abp[-1])
    consistency = elbo_consistency_term(
        x_0=x_0,
        alpha_t=al[:-1],
        alpha_next=al[1:],
        alpha_bar_prev=abp[:-1],
        a_next=a[1:],
        c_next=c[1:],
        var_theta_next=v[1:],
    )
    return recon, prior, consistency


@register(58)
def vdm_elbo_terms_denoising(*, x_0, alpha_t, a_t, c_t, var_theta):
    """The terms of ELBO derivation two, eq. (58): (reconstruction, prior matching, denoising).

    ELBO = reconstruction - prior_matching - denoising.sum(-1). `alpha_t`, `a_t`, `c_t`,
    `var_theta` have shape (T,) (t = 1..T); `x_0` any shape S. Returns arrays of shapes S, S and
    S + (T - 1,) (denoising matching term for t = 2..T).
    """
    x_0, al, ab, abp, a, c, v = _elbo_inputs(x_0, alpha_t, a_t, c_t, var_theta)
    recon = elbo_reconstruction_term(
        x_0=x_0[..., 0], alpha_t=al[0], a_t=a[0], c_t=c[0], var_theta=v[0]
    )
    prior = elbo_prior_term(x_0=x_0[..., 0], alpha_bar_t=ab[-1])
    denoising = elbo_denoising_term(
        x_0=x_0, alpha_t=al[1:], alpha_bar_prev=abp[1:], a_t=a[1:], c_t=c[1:], var_theta=v[1:]
    )
    return recon, prior, denoising


@register(37, 58)
def vdm_elbo(*, x_0, alpha_t, a_t, c_t, var_theta):
    """The ELBO E_q[log p(x_{0:T}) - log q(x_{1:T} | x_0)] of eq. (37), summed as in eq. (58).

    Linear-Gaussian reverse model with parameters of shape (T,); `x_0` any shape S; returns S
    (nats, one coordinate per element: sum over data dimensions yourself).
    """
    recon, prior, denoising = vdm_elbo_terms_denoising(
        x_0=x_0, alpha_t=alpha_t, a_t=a_t, c_t=c_t, var_theta=var_theta
    )
    return recon - prior - denoising.sum(-1)


def _reverse_marginal(a_t, c_t, var_theta):
    m, var = 0.0, 1.0  # x_T ~ N(0, 1), eq. (33)
    for a, c, v in zip(a_t[::-1], c_t[::-1], var_theta[::-1], strict=True):
        m, var = a * m + c, a * a * var + v
    return m, var


@register(34)
def vdm_log_likelihood(*, x_0, a_t, c_t, var_theta):
    """Exact log p(x_0) of the reverse chain, eq. (34), for the linear-Gaussian model.

    p(x_0) = N(M_0, V_0), propagated from x_T ~ N(0, 1) by M_{t-1} = a_t M_t + c_t,
    V_{t-1} = a_t^2 V_t + var_theta_t. Parameters of shape (T,); `x_0` any shape; returns its shape.
    """
    a_t = _as_float64("a_t", a_t, "real")
    if a_t.ndim != 1 or a_t.size < 1:
        raise ValueError(f"a_t must be a 1-D array a_1..a_T with T >= 1, got shape {a_t.shape}")
    a_t, c_t, var_theta = _reverse_model(a_t.size, a_t, c_t, var_theta)
    x_0 = _as_float64("x_0", x_0, "real")
    m, var = _reverse_marginal(a_t, c_t, var_theta)
    return -0.5 * _np.log(2 * _np.pi * var) - (x_0 - m) ** 2 / (2 * var)


def _data_law(mean, var):
    mean = _as_float64("mean", mean, "real")
    var = _as_float64("var", var, "positive")
    if mean.ndim or var.ndim:
        raise ValueError("mean and var of the data law N(mean, var) must be scalars")
    return float(mean), float(var)


@register(58)
def vdm_optimal_reverse_model(*, alpha_t, mean, var):
    """The true reverse conditionals q(x_{t-1} | x_t) for data x_0 ~ N(mean, var), eq. (58)'s
    optimum: p_theta(x_{t-1} | x_t) = N(a_t x_t + c_t, var_theta_t) with every denoising term
    at its minimum over the linear-Gaussian family. Returns (a_t, c_t, var_theta), each (T,).
    """
    alpha_t = _schedule(alpha_t)
    mean, var = _data_law(mean, var)
    alpha_bar = _np.cumprod(alpha_t)
    alpha_bar_prev = _np.concatenate([[1.0], alpha_bar[:-1]])
    # marginals of the forward chain on N(mean, var) data: x_t ~ N(m_t, s_t)
    m_prev = _np.sqrt(alpha_bar_prev) * mean
    s_prev = alpha_bar_prev * var + (1 - alpha_bar_prev)
    m_t = _np.sqrt(alpha_t) * m_prev
    s_t = alpha_bar * var + (1 - alpha_bar)
    a_t = _np.sqrt(alpha_t) * s_prev / s_t  # Cov(x_{t-1}, x_t) / Var(x_t)
    c_t = m_prev - a_t * m_t
    var_theta = s_prev * (1 - alpha_t) / s_t  # Var(x_{t-1}) - a_t^2 Var(x_t)
    return a_t, c_t, var_theta


@register(58)
def vdm_elbo_data_average(*, mean, var, alpha_t, a_t, c_t, var_theta):
    """E_{x_0 ~ N(mean, var)} of the ELBO of eq. (58) for the linear-Gaussian reverse model.

    The ELBO is a quadratic in x_0, so the two-point Gauss-Hermite rule at mean +- sqrt(var)
    is exact. Returns a float64 scalar.
    """
    mean, var = _data_law(mean, var)
    nodes = mean + _np.sqrt(var) * _np.array([-1.0, 1.0])
    return vdm_elbo(x_0=nodes, alpha_t=alpha_t, a_t=a_t, c_t=c_t, var_theta=var_theta).mean()


@register(58)
def vdm_elbo_optimal(*, alpha_t, mean, var):
    """Data-averaged ELBO (eq. (58)) at the optimal reverse model, in closed form.

    With p_theta(x_{t-1} | x_t) = q(x_{t-1} | x_t), p(x_{0:T}) = q(x_{0:T}) p(x_T) / q(x_T), so
    E[ELBO] = E[log q(x_0)] - KL(q(x_T) || p(x_T)) = -log(2 pi e var) / 2 -
    KL(N(sqrt(alpha_bar_T) mean, alpha_bar_T var + 1 - alpha_bar_T) || N(0, 1)).
    """
    alpha_t = _schedule(alpha_t)
    mean, var = _data_law(mean, var)
    ab = _np.prod(alpha_t)
    m_T, s_T = _np.sqrt(ab) * mean, ab * var + (1 - ab)
    kl_prior = 0.5 * (-_np.log(s_T) + s_T + m_T**2 - 1)
    return -0.5 * _np.log(2 * _np.pi * _np.e * var) - kl_prior


# --- (region: VDM posterior, schedules, denoising objective, eqs. (71)-(100)) ---
