"""Variational diffusion models (section 2.1, eqs. (30)-(100)): float64 reference.

The closed forms are generated from `udm.derivations.vdm` into `udm.reference._generated.vdm`
and re-exported here, so `udm.reference.vdm.q_sample` is the derivation's result verbatim. The
noise schedules are too: the named schedules' beta_t (`linear_beta_t`, `scaled_linear_beta_t`,
`cosine_beta_t`) and every coefficient of the `Schedule` table (log space: `log_alpha_t`,
`q_var_from_log_alpha_bar`, `var_q_from_log_alpha_bars`, `log_var_q_from_log_alpha_bars`,
`log_snr_from_log_alpha_bar`). Written here: the scan log alpha_bar_t = cumsum log alpha_t,
the schedules' conventions (linspace's exact end, the cosine clip), the ELBO assembled over a
schedule, and the discretized decoder.
"""

import dataclasses
import math

import numpy as np
from scipy import special

from udm import checks, register
from udm.reference._args import as_float64
from udm.reference._generated.vdm import (  # noqa: F401  (re-exported: the generated closed forms)
    cosine_beta_t,
    denoising_kl,
    elbo_consistency_term,
    elbo_denoising_term,
    elbo_prior_term,
    elbo_prior_term_consistency,
    elbo_reconstruction_term,
    eps_loss_weight_from_log_alpha_bars,
    kl_normal,
    linear_beta_t,
    log_alpha_t,
    log_snr_from_log_alpha_bar,
    log_var_q_from_log_alpha_bars,
    mu_q,
    q_mean,
    q_sample,
    q_var,
    q_var_from_log_alpha_bar,
    scaled_linear_beta_t,
    score_loss_weight_from_log_alpha_bars,
    var_q,
    var_q_from_log_alpha_bars,
    x_0_loss_weight,
    x_0_loss_weight_from_log_alpha_bars,
)


@register(94)
def mu_theta(*, x_t, x_0_hat, alpha_t, alpha_bar_t, alpha_bar_prev):
    """Mean of p_theta(x_{t-1} | x_t) through the prediction x_0_hat, eq. (94): mu_q (eq. (84),
    generated) with x_0 replaced by x_0_hat. Domains and shapes as `mu_q`."""
    alphas = {"alpha_t": alpha_t, "alpha_bar_t": alpha_bar_t, "alpha_bar_prev": alpha_bar_prev}
    return mu_q(x_t=x_t, x_0=as_float64("x_0_hat", x_0_hat, "real"), **alphas)


# The ELBO of eqs. (34)-(58): the per-t terms are generated (udm.reference._generated.vdm); the
# functions below assemble them over a whole schedule alpha_1..alpha_T (hand-written: the
# sum over t has no fixed-size closed form) for the linear-Gaussian reverse model
# p_theta(x_{t-1} | x_t) = N(a_t x_t + c_t, var_theta_t), p(x_T) = N(0, 1).


def _schedule(alpha_t) -> np.ndarray:
    alpha_t = as_float64("alpha_t", alpha_t, "open_unit")
    if alpha_t.ndim != 1 or alpha_t.size < 1:
        raise ValueError(
            f"alpha_t must be a 1-D array alpha_1..alpha_T with T >= 1, got shape {alpha_t.shape}"
        )
    return alpha_t


def _reverse_model(T: int, a_t, c_t, var_theta):
    a_t = as_float64("a_t", a_t, "real")
    c_t = as_float64("c_t", c_t, "real")
    var_theta = as_float64("var_theta", var_theta, "positive")
    for name, arr in (("a_t", a_t), ("c_t", c_t), ("var_theta", var_theta)):
        if arr.shape != (T,):
            raise ValueError(
                f"{name} must have shape ({T},) like alpha_t (t = 1..T), got {arr.shape}"
            )
    return a_t, c_t, var_theta


def _elbo_inputs(x_0, alpha_t, a_t, c_t, var_theta):
    alpha_t = _schedule(alpha_t)
    a_t, c_t, var_theta = _reverse_model(alpha_t.size, a_t, c_t, var_theta)
    x_0 = as_float64("x_0", x_0, "real")[..., None]  # t runs along a new last axis
    alpha_bar = np.cumprod(alpha_t)
    alpha_bar_prev = np.concatenate([[1.0], alpha_bar[:-1]])  # paper indexing: alpha_bar_0 = 1
    return x_0, alpha_t, alpha_bar, alpha_bar_prev, a_t, c_t, var_theta


@register(45)
def vdm_elbo_terms_consistency(*, x_0, alpha_t, a_t, c_t, var_theta):
    """The terms of ELBO derivation one, eq. (45): (reconstruction, prior matching, consistency).

    ELBO = reconstruction - prior_matching - consistency.sum(-1). `alpha_t`, `a_t`, `c_t`,
    `var_theta` have shape (T,) (t = 1..T); `x_0` any shape S. Returns arrays of shapes S, S and
    S + (T - 1,) (consistency term t = 1..T-1, taken under the chain's joint law as in eq. (44);
    see `udm.derivations.vdm.elbo.elbo_consistency_term` for how this differs from eq. (45)'s KL).
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
    a_t = as_float64("a_t", a_t, "real")
    if a_t.ndim != 1 or a_t.size < 1:
        raise ValueError(f"a_t must be a 1-D array a_1..a_T with T >= 1, got shape {a_t.shape}")
    a_t, c_t, var_theta = _reverse_model(a_t.size, a_t, c_t, var_theta)
    x_0 = as_float64("x_0", x_0, "real")
    m, var = _reverse_marginal(a_t, c_t, var_theta)
    return -0.5 * np.log(2 * np.pi * var) - (x_0 - m) ** 2 / (2 * var)


def _data_law(mean, var):
    mean = as_float64("mean", mean, "real")
    var = as_float64("var", var, "positive")
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
    alpha_bar = np.cumprod(alpha_t)
    alpha_bar_prev = np.concatenate([[1.0], alpha_bar[:-1]])
    # marginals of the forward chain on N(mean, var) data: x_t ~ N(m_t, s_t)
    m_prev = np.sqrt(alpha_bar_prev) * mean
    s_prev = alpha_bar_prev * var + (1 - alpha_bar_prev)
    m_t = np.sqrt(alpha_t) * m_prev
    s_t = alpha_bar * var + (1 - alpha_bar)
    a_t = np.sqrt(alpha_t) * s_prev / s_t  # Cov(x_{t-1}, x_t) / Var(x_t)
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
    nodes = mean + np.sqrt(var) * np.array([-1.0, 1.0])
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
    ab = np.prod(alpha_t)
    m_T, s_T = np.sqrt(ab) * mean, ab * var + (1 - ab)
    kl_prior = 0.5 * (-np.log(s_T) + s_T + m_T**2 - 1)
    return -0.5 * np.log(2 * np.pi * np.e * var) - kl_prior


SCHEDULES = checks.SCHEDULES


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """log(1 - exp(x)) for x <= 0, accurate at both ends (Maechler 2012)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(x > -math.log(2), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


@register(31, 70, 85, 109)
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Schedule:
    """A noise schedule alpha_1..alpha_T in float64 with the paper's indexing, eqs. (31), (70),
    (85), (109).

    Built from beta_t = 1 - alpha_t (eq. (31)), each in (0, 1). Every attribute is a float64
    array of length T whose element t - 1 belongs to time step t (t = 1..T); use `at(t)` to
    index by the paper's t. The one step written here is the scan log alpha_bar_t =
    cumsum(log alpha_t) (the product of eq. (69)), alpha_bar_0 = 1; every coefficient is then a
    closed form generated from `udm.derivations.vdm.schedules.schedule_in_log_space`: 1 - alpha_bar_t
    (eq. (70)), sigma_q^2(t) and its log (eq. (85); sigma_q^2(1) = 0) and log SNR(t)
    (eq. (109)), in forms that lose no digits near alpha_bar = 1 or 0.

    `log_var_q[0]` (t = 1) is clipped to log sigma_q^2(2), as DDPM's
    `posterior_log_variance_clipped` does: sigma_q^2(1) = 0 has no finite log, and t = 1 only
    needs a decoder scale (T = 1: log beta_1). `var_q` itself is exact (0 at t = 1).
    """

    beta_t: np.ndarray

    def __post_init__(self):
        beta = as_float64("beta_t", self.beta_t, "open_unit")
        if beta.ndim != 1 or beta.size == 0:
            raise ValueError(f"beta_t must be a non-empty 1-D array, got shape {beta.shape}")
        log_alpha = log_alpha_t(beta_t=beta)
        log_ab = np.cumsum(log_alpha)
        log_ab_prev = np.concatenate([[0.0], log_ab[:-1]])
        logs = {"beta_t": beta, "log_alpha_bar_t": log_ab, "log_alpha_bar_prev": log_ab_prev}
        with np.errstate(divide="ignore"):  # log sigma_q^2(1) = log 0
            log_var_q = log_var_q_from_log_alpha_bars(**logs)
        # t = 1: sigma_q^2 = 0; clip as DDPM does (see the class docstring)
        log_var_q[0] = log_var_q[1] if beta.size > 1 else np.log(beta[0])
        log_snr = log_snr_from_log_alpha_bar(log_alpha_bar_t=log_ab)
        fields = {
            "beta_t": beta,
            "alpha_t": 1.0 - beta,
            "log_alpha_t": log_alpha,
            "log_alpha_bar_t": log_ab,
            "alpha_bar_t": np.exp(log_ab),
            "alpha_bar_prev": np.exp(log_ab_prev),
            "one_minus_alpha_bar_t": q_var_from_log_alpha_bar(log_alpha_bar_t=log_ab),
            # + 0.0 turns the -0.0 of t = 1 into 0.0
            "var_q": var_q_from_log_alpha_bars(**logs) + 0.0,
            "log_var_q": log_var_q,
            "log_snr": log_snr,
            "snr": np.exp(log_snr),
        }
        for name, value in fields.items():
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def T(self) -> int:
        return int(self.beta_t.size)

    @property
    def t(self) -> np.ndarray:
        """The time steps 1..T (paper indexing)."""
        return np.arange(1, self.T + 1)

    def at(self, t) -> dict[str, np.ndarray]:
        """The coefficients at time step(s) t (integers, 1 <= t <= T) as a dict of arrays."""
        t = np.asarray(t)
        checks.timestep("t", t if t.ndim else int(t), self.T)
        return {name: getattr(self, name)[t - 1] for name in _COEFFICIENTS}

    def __repr__(self) -> str:
        return f"Schedule(T={self.T}, beta_1={self.beta_t[0]:.6g}, beta_T={self.beta_t[-1]:.6g})"


_COEFFICIENTS = checks.SCHEDULE_COEFFICIENTS


def _check_T(T) -> int:
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be an int >= 1, got {T!r}")
    return int(T)


def _check_betas(beta_start, beta_end) -> None:
    for name, value in (("beta_start", beta_start), ("beta_end", beta_end)):
        checks.in_unit_interval(name, value, closed_right=False)


def _steps(T: int) -> np.ndarray:
    """t = 1..T as float64, the argument of the generated per-step closed forms."""
    return np.arange(1, T + 1, dtype=np.float64)


@register(31)
def linear_schedule(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> Schedule:
    """DDPM's schedule, linear in beta_t = 1 - alpha_t (eq. (31)) from beta_start to beta_end.

    beta_t from the generated closed form `linear_beta_t` (the same roundings as NumPy's
    linspace, whose last step is beta_end exactly). Ho et al. (2020) use T = 1000,
    1e-4..0.02 (improved DDPM rescales the ends by 1000 / T; pass the rescaled values).
    """
    T = _check_T(T)
    _check_betas(beta_start, beta_end)
    # T = 1: the one step is beta_start (t = 1 is the start on any grid of T >= 2)
    beta = linear_beta_t(t=_steps(T), T=max(T, 2), beta_start=beta_start, beta_end=beta_end)
    if T > 1:
        beta[-1] = beta_end  # linspace's convention: the end is exact
    return Schedule(beta)


@register(31)
def scaled_linear_schedule(
    T: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012
) -> Schedule:
    """Stable Diffusion's schedule (eq. (31) with sqrt(beta_t) linear in t).

    beta_t from the generated closed form `scaled_linear_beta_t` (diffusers' `scaled_linear`:
    linspace(sqrt(beta_start), sqrt(beta_end), T)^2).
    """
    T = _check_T(T)
    _check_betas(beta_start, beta_end)
    ends = {"beta_start": beta_start, "beta_end": beta_end}
    return Schedule(scaled_linear_beta_t(t=_steps(T), T=max(T, 2), **ends))


@register(31, 70)
def cosine_schedule(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> Schedule:
    """Improved DDPM's cosine schedule (Nichol & Dhariwal 2021) for alpha_t of eq. (31).

    f(u) = cos((u + s) / (1 + s) * pi / 2)^2 is the target alpha_bar (eq. (70)) at u = t / T;
    beta_t = min(1 - f(t / T) / f((t - 1) / T), max_beta) (the generated closed form
    `cosine_beta_t`, then the clipping that keeps the last steps, where f -> 0, from having
    beta_t = 1).
    """
    T = _check_T(T)
    checks.positive("s", s)
    checks.in_unit_interval("max_beta", max_beta, closed_right=False)
    return Schedule(np.minimum(cosine_beta_t(t=_steps(T), T=T, s=s), max_beta))


@register(31)
def schedule_from_alphas(alpha_t) -> Schedule:
    """A schedule from user-given alpha_1..alpha_T (eq. (31)), each in (0, 1).

    alpha_t = 1 is refused: it would make sigma_q^2(t) = 0 for t >= 2 (a degenerate KL) or
    alpha_bar_1 = 1 (no noise at all).
    """
    alpha = as_float64("alpha_t", alpha_t, "open_unit")
    return Schedule(1.0 - alpha)


@register(31, 70)
def schedule_from_alpha_bars(alpha_bar_t) -> Schedule:
    """A schedule from user-given alpha_bar_1..alpha_bar_T (eq. (70)), strictly decreasing in (0, 1).

    beta_t = 1 - alpha_bar_t / alpha_bar_{t-1} (eq. (31)) computed as
    (alpha_bar_{t-1} - alpha_bar_t) / alpha_bar_{t-1} (alpha_bar_0 = 1): the difference is
    exact where the two are within a factor 2 (Sterbenz), so beta_t is within 2 ulps of the
    value the inputs define, even when they nearly agree.
    """
    ab = as_float64("alpha_bar_t", alpha_bar_t, "open_unit")
    if ab.ndim != 1 or ab.size == 0:
        raise ValueError(f"alpha_bar_t must be a non-empty 1-D array, got shape {ab.shape}")
    if np.any(np.diff(ab) >= 0):
        bad = int(np.argmax(np.diff(ab) >= 0)) + 2
        raise ValueError(f"alpha_bar_t must be strictly decreasing in t; it is not at t = {bad}")
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    return Schedule((ab_prev - ab) / ab_prev)


@register(31)
def make_schedule(name: str, T: int = 1000, beta_start=None, beta_end=None) -> Schedule:
    """A named schedule: 'linear', 'scaled-linear' or 'cosine' (alpha_t of eq. (31)).

    beta_start / beta_end override the linear schedules' defaults (None: the default; any
    given value, 0.0 included, is range-checked); cosine refuses them.
    """
    ends = checks.schedule_choice(name, beta_start, beta_end)
    return _BUILDERS[name](T, **ends)


_BUILDERS = {
    "linear": linear_schedule,
    "scaled-linear": scaled_linear_schedule,
    "cosine": cosine_schedule,
}

# --- ELBO terms (eq. (58)) for the torch layer's oracle: per coordinate, float64 ---------


@register(58, 86)
def prior_kl_term(*, x_0, alpha_bar_t):
    """Prior matching term of eq. (58), KL(q(x_T | x_0) || N(0, I)) per coordinate, by eq. (86).

    Pass alpha_bar_t = alpha_bar_T (in (0, 1)). Sum over coordinates for the term of one
    sample. The generated `elbo_prior_term`: (alpha_bar x_0^2 + expm1mx(log1p(-alpha_bar))) / 2,
    full relative accuracy even at alpha_bar_T ~ 1e-9 (where kl_normal with var_q = 1 -
    alpha_bar_T would lose the digits of 1 - alpha_bar_T's rounding).
    """
    return elbo_prior_term(x_0=x_0, alpha_bar_t=alpha_bar_t)


@register(58)
def discretized_gaussian_log_likelihood(*, x_0, mean, log_var, levels: int = 256):
    """log p(x_0 | x_1) of DDPM's discretized Gaussian decoder, per coordinate (eq. (58)).

    x_0 holds data with `levels` grey levels scaled to [-1, 1] (8-bit: x = k / 127.5 - 1,
    k = 0..255); the bin of x is [x - h, x + h] with h = 1 / (levels - 1), the edge bins
    extend to -inf and +inf. Float64, via scipy's log_ndtr on whichever tail keeps the
    difference of CDFs accurate.
    """
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ValueError(f"levels must be an int >= 2, got {levels!r}")
    half_bin = 1.0 / (levels - 1)
    x_0 = as_float64("x_0", x_0)
    mean = as_float64("mean", mean)
    log_var = as_float64("log_var", log_var)
    if np.any(np.abs(x_0) > 1):
        raise ValueError("x_0 must lie in [-1, 1] (8-bit data scaled to [-1, 1])")
    inv_std = np.exp(-0.5 * log_var)
    hi = np.where(x_0 > 1 - half_bin / 2, np.inf, (x_0 - mean + half_bin) * inv_std)
    lo = np.where(x_0 < -1 + half_bin / 2, -np.inf, (x_0 - mean - half_bin) * inv_std)
    # log(Phi(hi) - Phi(lo)); in the upper tail use Phi(-lo) - Phi(-hi) instead
    upper = lo > 0
    a = np.where(upper, -hi, lo)
    b = np.where(upper, -lo, hi)
    log_b = special.log_ndtr(b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return log_b + _log1mexp(special.log_ndtr(a) - log_b)
