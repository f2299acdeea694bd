"""Variational diffusion models (section 2.1, eqs. (30)-(100)) in PyTorch.

Hand-written numerically stable forms of the closed forms derived in `udm.derivations.vdm`;
the tests in tests/vdm/ tie each one to the generated float64 reference over the whole
domain. `Schedule` builds its whole table from these pure functions (the named schedules'
beta_t, the log-space coefficients, the posterior's, and the loss weights of eqs. (99), (130),
(148) from beta_t and the log alpha_bars).
"""

from __future__ import annotations

import math

import torch

from udm import checks, register
from udm.torch_impl import _stable
from udm.torch_impl._tensors import append_dims, check_broadcast, tensor_arg

# --- q(x_t | x_0), eqs. (59)-(70) ---


@register(70)
def q_mean(*, x_0: torch.Tensor, alpha_bar_t) -> torch.Tensor:
    r"""Mean of q(x_t | x_0), eq. (70): :math:`\sqrt{\bar\alpha_t}\, x_0`.

    Shapes: x_0 [B, ...]; alpha_bar_t broadcasts against x_0 (use `append_dims` for [B]).
    Domain: 0 < alpha_bar_t <= 1.
    """
    x_0 = tensor_arg("x_0", x_0)
    alpha_bar_t = tensor_arg("alpha_bar_t", alpha_bar_t, "unit", like=x_0)
    check_broadcast(x_0=x_0, alpha_bar_t=alpha_bar_t)
    return alpha_bar_t.sqrt() * x_0


@register(70)
def q_var(*, alpha_bar_t: torch.Tensor) -> torch.Tensor:
    r"""Variance of q(x_t | x_0) per coordinate, eq. (70): :math:`1 - \bar\alpha_t`.

    Domain: 0 < alpha_bar_t <= 1. Exact in floating point for alpha_bar_t >= 1/2
    (Sterbenz), within 1 ulp of the rounded input otherwise.
    """
    alpha_bar_t = tensor_arg("alpha_bar_t", alpha_bar_t, "unit")
    return 1 - alpha_bar_t


@register(69)
def q_sample(*, x_0: torch.Tensor, alpha_bar_t, eps: torch.Tensor) -> torch.Tensor:
    r"""Sample x_t ~ q(x_t | x_0) by reparameterization, eq. (69).

    :math:`x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon`, eps ~ N(0, I)
    of x_0's shape. alpha_bar_t broadcasts against x_0 (use `append_dims` for a [B] vector).
    """
    x_0 = tensor_arg("x_0", x_0)
    eps = tensor_arg("eps", eps)
    alpha_bar_t = tensor_arg("alpha_bar_t", alpha_bar_t, "unit", like=x_0)
    check_broadcast(x_0=x_0, alpha_bar_t=alpha_bar_t, eps=eps)
    return alpha_bar_t.sqrt() * x_0 + (1 - alpha_bar_t).sqrt() * eps


SCHEDULES = checks.SCHEDULES
# The per-t coefficients a Schedule exposes (arrays of length T, element t - 1 is time t).
COEFFICIENTS = (
    *checks.SCHEDULE_COEFFICIENTS,
    "x_0_loss_weight",
    "mu_q_coef_x_t",
    "mu_q_coef_x_0",
    "sqrt_alpha_bar_t",
    "sqrt_one_minus_alpha_bar_t",
    "eps_loss_weight",
    "score_loss_weight",
)


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x <= 0, accurate at both ends (Maechler 2012)."""
    return torch.where(x > -math.log(2), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


# --- a schedule's coefficients in log space (the torch side of udm.derivations.vdm's
# schedule_in_log_space and named_schedules; tests/vdm/test_schedules.py ties each to the
# generated reference). Schedule below builds its table from these. ----------------------


@register(31)
def log_alpha_t(*, beta_t) -> torch.Tensor:
    r"""log alpha_t = log1p(-beta_t) (eq. (31), alpha_t = 1 - beta_t): exact for small beta_t."""
    return torch.log1p(-tensor_arg("beta_t", beta_t, "open_unit"))


@register(70)
def q_var_from_log_alpha_bar(*, log_alpha_bar_t) -> torch.Tensor:
    r"""1 - alpha_bar_t, the variance of q(x_t | x_0) (eq. (70)), from log alpha_bar_t <= 0.

    -expm1(log alpha_bar_t): full relative accuracy near alpha_bar_t = 1 (0 at alpha_bar_0 = 1).
    """
    return _one_minus(tensor_arg("log_alpha_bar_t", log_alpha_bar_t, "nonpositive"))


def _one_minus(log_level: torch.Tensor) -> torch.Tensor:
    """1 - level from log(level) <= 0 (+ 0.0: 0, not -0.0, at level 1); no checks."""
    return -torch.expm1(log_level) + 0.0


@register(85)
def log_var_q_from_log_alpha_bars(*, beta_t, log_alpha_bar_t, log_alpha_bar_prev):
    r"""log sigma_q^2(t) (eq. (85)) from beta_t = 1 - alpha_t and the log alpha_bars.

    :math:`\log\beta_t + \log(1 - \bar\alpha_{t-1}) - \log(1 - \bar\alpha_t)`, each log of
    1 - alpha_bar from log alpha_bar by log1mexp; -inf at t = 1 (log_alpha_bar_prev = 0).
    """
    beta_t, lab, lab_prev = _log_level_args(beta_t, log_alpha_bar_t, log_alpha_bar_prev)
    return torch.log(beta_t) + _log1mexp(lab_prev) - _log1mexp(lab)


def _log_level_args(beta_t, log_alpha_bar_t, log_alpha_bar_prev):
    """Check (beta_t, log alpha_bar_t, log alpha_bar_{t-1}): beta_t in (0, 1), the logs < 0
    and <= 0 (log alpha_bar_0 = 0 at t = 1), shapes that broadcast."""
    beta_t = tensor_arg("beta_t", beta_t, "open_unit")
    lab = tensor_arg("log_alpha_bar_t", log_alpha_bar_t, "negative", like=beta_t)
    lab_prev = tensor_arg("log_alpha_bar_prev", log_alpha_bar_prev, "nonpositive", like=beta_t)
    check_broadcast(beta_t=beta_t, log_alpha_bar_t=lab, log_alpha_bar_prev=lab_prev)
    return beta_t, lab, lab_prev


# The loss weights of eqs. (99), (130), (148) with sigma_q^2 inserted, from beta_t and the log
# alpha_bars: beta_t is used as given and each 1 - alpha_bar is -expm1(log alpha_bar), so a
# small beta_t keeps its digits (1 - alpha_t formed from a float32 alpha_t would lose them).
# Each is +inf at t = 1 (log alpha_bar_0 = 0), where the decoder term replaces the KL.


@register(99)
def x_0_loss_weight_from_log_alpha_bars(*, beta_t, log_alpha_bar_t, log_alpha_bar_prev):
    r"""Weight of ||x_0 - x_0_hat||^2, eq. (99), from beta_t and the log alpha_bars:
    :math:`\frac{\bar\alpha_{t-1}\beta_t}{2(1-\bar\alpha_{t-1})(1-\bar\alpha_t)}`."""
    beta_t, lab, lab_prev = _log_level_args(beta_t, log_alpha_bar_t, log_alpha_bar_prev)
    return _x_0_weight(torch.exp(lab_prev), beta_t, _one_minus(lab_prev), _one_minus(lab))


@register(130)
def eps_loss_weight_from_log_alpha_bars(*, beta_t, log_alpha_bar_prev):
    r"""Weight of ||eps - eps_hat||^2, eq. (130), from beta_t and log alpha_bar_{t-1}:
    :math:`\frac{\beta_t}{2(1-\beta_t)(1-\bar\alpha_{t-1})}`."""
    beta_t = tensor_arg("beta_t", beta_t, "open_unit")
    lab_prev = tensor_arg("log_alpha_bar_prev", log_alpha_bar_prev, "nonpositive", like=beta_t)
    check_broadcast(beta_t=beta_t, log_alpha_bar_prev=lab_prev)
    return beta_t / (2 * (1 - beta_t) * _one_minus(lab_prev))


@register(148)
def score_loss_weight_from_log_alpha_bars(*, beta_t, log_alpha_bar_t, log_alpha_bar_prev):
    r"""Weight of ||s_theta - score||^2, eq. (148), from beta_t and the log alpha_bars:
    :math:`\frac{\beta_t(1-\bar\alpha_t)}{2(1-\beta_t)(1-\bar\alpha_{t-1})}` (the eq. (130)
    weight times 1 - alpha_bar_t, multiplied before dividing: no overflow on the way)."""
    beta_t, lab, lab_prev = _log_level_args(beta_t, log_alpha_bar_t, log_alpha_bar_prev)
    return beta_t * _one_minus(lab) / (2 * (1 - beta_t) * _one_minus(lab_prev))


@register(109)
def log_snr_from_log_alpha_bar(*, log_alpha_bar_t) -> torch.Tensor:
    r"""log SNR(t) = log alpha_bar_t - log(1 - alpha_bar_t) (eq. (109)) from log alpha_bar_t < 0."""
    lab = tensor_arg("log_alpha_bar_t", log_alpha_bar_t, "negative")
    return lab - _log1mexp(lab)


@register(84, 85)
def posterior_coefficients(
    *, log_alpha_bar_t, log_alpha_bar_prev, log_alpha_t=None
) -> dict[str, torch.Tensor]:
    r"""q(x_s | x_t, x_0) = N(coef_x_t x_t + coef_x_0 x_0, var_q) between two noise levels
    s < t given by log alpha_bar, eqs. (84), (85).

    One step (alpha_bar_prev = alpha_bar_{t-1}) gives the paper's mu_q and sigma_q^2(t);
    any two levels of a coarser grid give the posterior of a respaced chain, with
    alpha_t replaced by alpha_bar_t / alpha_bar_s (the forward step from s to t is
    N(sqrt(alpha_bar_t / alpha_bar_s) x_s, (1 - alpha_bar_t / alpha_bar_s) I)). In log space:
    1 - alpha = -expm1(log alpha), no cancellation when a level is near 1. alpha_bar_prev = 1
    (log 0) is allowed: then coef_x_0 = 1 and var_q = 0. Returns coef_x_t, coef_x_0, var_q.
    log_alpha_t: the step's own log alpha_t where known (a schedule's log1p(-beta_t)); the
    difference of two cumulative sums loses up to 1e-11 relative of a small beta_t.
    """
    lab = tensor_arg("log_alpha_bar_t", log_alpha_bar_t)
    lab_prev = tensor_arg("log_alpha_bar_prev", log_alpha_bar_prev, like=lab)
    check_broadcast(log_alpha_bar_t=lab, log_alpha_bar_prev=lab_prev)
    # Given log_alpha_t, the step is defined by it, and the two cumulative logs may round to
    # the same float (a beta_t below the ulp of log alpha_bar): ties are then allowed.
    tie = lab > lab_prev if log_alpha_t is not None else lab >= lab_prev
    if checks.validate_args_enabled() and bool((tie | (lab_prev > 0)).any()):
        raise ValueError("need log_alpha_bar_t < log_alpha_bar_prev <= 0 (a noisier level t)")
    log_alpha = lab - lab_prev if log_alpha_t is None else tensor_arg("log_alpha_t", log_alpha_t)
    one_minus_alpha = -torch.expm1(log_alpha)
    om_ab = _one_minus(lab)  # q_var_from_log_alpha_bar, arguments checked above
    om_ab_prev = _one_minus(lab_prev)  # 0 at alpha_bar_prev = 1
    return {
        "coef_x_t": torch.exp(0.5 * log_alpha) * om_ab_prev / om_ab,
        "coef_x_0": torch.exp(0.5 * lab_prev) * one_minus_alpha / om_ab,
        "var_q": one_minus_alpha * om_ab_prev / om_ab,
    }


def _x_0_weight(alpha_bar_prev, one_minus_alpha_t, one_minus_alpha_bar_prev, one_minus_alpha_bar_t):
    """The eq. (99) weight from its four factors (each given without cancellation):
    alpha_bar_{t-1} (1 - alpha_t) / (2 (1 - alpha_bar_{t-1}) (1 - alpha_bar_t)); inf at t = 1."""
    return (
        alpha_bar_prev * one_minus_alpha_t / (2 * one_minus_alpha_bar_prev * one_minus_alpha_bar_t)
    )


def _coefficients(beta: torch.Tensor) -> dict[str, torch.Tensor]:
    """All per-t coefficients in float64 from beta_t (float64, 1-D), by the pure functions above
    (log space); the one step written here is the scan log alpha_bar_t = cumsum log alpha_t."""
    log_alpha = log_alpha_t(beta_t=beta)
    log_ab = torch.cumsum(log_alpha, 0)  # log alpha_bar_t, the product of eq. (69)
    log_ab_prev = torch.cat([log_ab.new_zeros(1), log_ab[:-1]])  # alpha_bar_0 = 1
    logs = {"log_alpha_bar_t": log_ab, "log_alpha_bar_prev": log_ab_prev}
    posterior = posterior_coefficients(**logs, log_alpha_t=log_alpha)
    om_ab = q_var_from_log_alpha_bar(log_alpha_bar_t=log_ab)  # 1 - alpha_bar_t
    with_beta = {"beta_t": beta, **logs}
    log_var_q = log_var_q_from_log_alpha_bars(**with_beta)
    # sigma_q^2(1) = 0 (alpha_bar_0 = 1), whose log is -inf: clip to log sigma_q^2(2) as
    # DDPM's posterior_log_variance_clipped does; t = 1 uses it only as the decoder's scale.
    log_var_q[0] = log_var_q[1] if beta.numel() > 1 else torch.log(beta[0])
    log_snr = log_snr_from_log_alpha_bar(log_alpha_bar_t=log_ab)
    return {
        "beta_t": beta,
        "alpha_t": 1 - beta,
        "alpha_bar_t": torch.exp(log_ab),
        "alpha_bar_prev": torch.exp(log_ab_prev),
        "var_q": posterior["var_q"],  # eq. (85)
        "log_var_q": log_var_q,
        "snr": torch.exp(log_snr),
        "log_snr": log_snr,
        # eq. (99): (SNR(t-1) - SNR(t)) / 2; inf at t = 1
        "x_0_loss_weight": x_0_loss_weight_from_log_alpha_bars(**with_beta),
        # eq. (84): mu_q = coef_x_t x_t + coef_x_0 x_0
        "mu_q_coef_x_t": posterior["coef_x_t"],
        "mu_q_coef_x_0": posterior["coef_x_0"],
        "sqrt_alpha_bar_t": torch.exp(0.5 * log_ab),
        "sqrt_one_minus_alpha_bar_t": torch.sqrt(om_ab),
        "eps_loss_weight": eps_loss_weight_from_log_alpha_bars(
            beta_t=beta, log_alpha_bar_prev=log_ab_prev
        ),
        "score_loss_weight": score_loss_weight_from_log_alpha_bars(**with_beta),
    }


@register(31, 70, 84, 85, 94, 130, 148)
class Schedule:
    r"""A noise schedule with its coefficients, eqs. (31), (70), (84), (85), (94), (130), (148).

    Built from beta_t = 1 - alpha_t (eq. (31)), t = 1..T, each in (0, 1). Every coefficient
    (`COEFFICIENTS`: alpha_t, alpha_bar_t (eq. (70)), alpha_bar_prev (alpha_bar_0 = 1),
    var_q and log_var_q (eq. (85)), snr, log_snr, the x_0 loss weight of eq. (99), the
    posterior-mean coefficients of eq. (84), the eps and score loss weights of eqs. (130)
    and (148), infinite at t = 1) is computed once in float64 in log space
    (log alpha_bar_t = cumsum log1p(-beta_t)) and cached per (dtype, device) when gathered,
    so data in float64 sees float64 coefficients and float32 data sees them rounded once.
    Attributes (`schedule.alpha_bar_t`) are length-T tensors in the working `dtype` and
    `device`; element t - 1 belongs to time step t. `gather(name, t, x)` indexes by the
    paper's t and broadcasts against x with `append_dims`.

    log_var_q at t = 1 is clipped to log var_q(2) (DDPM's posterior_log_variance_clipped):
    var_q(1) = 0 exactly, and t = 1 needs the log-variance only as the decoder's scale.
    """

    def __init__(self, beta_t, *, dtype: torch.dtype = torch.float32, device=None):
        if isinstance(beta_t, torch.Tensor):
            beta = beta_t.detach().to("cpu", torch.float64)
        else:
            beta = torch.as_tensor(beta_t, dtype=torch.float64)
        if beta.ndim != 1 or beta.numel() == 0:
            raise ValueError(
                f"beta_t must be a non-empty 1-D tensor, got shape {tuple(beta.shape)}"
            )
        checks.in_unit_interval("beta_t", beta, closed_right=False)
        self._f64 = _coefficients(beta)  # master copy: float64 on the CPU
        self._cache: dict = {}
        self.dtype, self.device = dtype, torch.device(device or "cpu")

    @property
    def T(self) -> int:
        return int(self._f64["beta_t"].numel())

    def coefficients(self, dtype=None, device=None) -> dict[str, torch.Tensor]:
        """All coefficients as length-T tensors of `dtype` on `device` (cached)."""
        key = (dtype or self.dtype, torch.device(device or self.device))
        if key not in self._cache:
            self._cache[key] = {k: v.to(key[1], key[0]) for k, v in self._f64.items()}
        return self._cache[key]

    def __getattr__(self, name: str):
        if name in COEFFICIENTS:
            return self.coefficients()[name]
        raise AttributeError(name)

    def check_t(self, t) -> torch.Tensor:
        """Validate integer time steps 1 <= t <= T (syncs with the device: entry points only)."""
        if not isinstance(t, torch.Tensor):
            t = torch.as_tensor(t)
        checks.timestep("t", t, self.T)
        return t

    def gather(self, name: str, t: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """Coefficient `name` at time steps t ([B] integers, 1..T), shaped to broadcast
        against x ([B, ...]; dtype and device follow x). No validation: see `check_t`."""
        like = x if x is not None else None
        table = self.coefficients(
            like.dtype if like is not None else None,
            t.device if isinstance(t, torch.Tensor) else None,
        )[name]
        value = table[t - 1]
        return append_dims(value, x) if x is not None else value

    def q_sample(self, *, x_0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        r"""x_t ~ q(x_t | x_0) at time steps t, eq. (69): sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps."""
        return (
            self.gather("sqrt_alpha_bar_t", t, x_0) * x_0
            + self.gather("sqrt_one_minus_alpha_bar_t", t, x_0) * eps
        )

    def posterior_mean(self, *, x_t: torch.Tensor, x_0: torch.Tensor, t: torch.Tensor):
        """mu_q(x_t, x_0) of q(x_{t-1} | x_t, x_0), eq. (84), at time steps t ([B])."""
        return (
            self.gather("mu_q_coef_x_t", t, x_t) * x_t + self.gather("mu_q_coef_x_0", t, x_t) * x_0
        )

    def posterior_var(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """sigma_q^2(t), eq. (85), shaped against x (0 at t = 1)."""
        return self.gather("var_q", t, x)

    def posterior_log_var(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log sigma_q^2(t), eq. (85), finite at t = 1 (clipped to t = 2, see the class)."""
        return self.gather("log_var_q", t, x)

    def p_mean(self, *, x_t: torch.Tensor, x_0_hat: torch.Tensor, t: torch.Tensor):
        """mu_theta(x_t, t) of p_theta(x_{t-1} | x_t) from the prediction x_0_hat, eq. (94)."""
        return self.posterior_mean(x_t=x_t, x_0=x_0_hat, t=t)

    def __repr__(self) -> str:
        b = self._f64["beta_t"]
        return f"Schedule(T={self.T}, beta_1={float(b[0]):.6g}, beta_T={float(b[-1]):.6g}, dtype={self.dtype})"


def _check_T(T) -> int:
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be an int >= 1, got {T!r}")
    return T


def _step_args(t, T, **params) -> dict[str, torch.Tensor]:
    t = tensor_arg("t", t, "positive")
    out = {"t": t, "T": tensor_arg("T", T, "positive", like=t)}
    domains = {"beta_start": "open_unit", "beta_end": "open_unit", "s": "positive"}
    out |= {k: tensor_arg(k, v, domains[k], like=t) for k, v in params.items()}
    check_broadcast(**out)
    return out


@register(31)
def linear_beta_t(*, t, T, beta_start, beta_end) -> torch.Tensor:
    r"""beta_t of DDPM's linear schedule at step t of T (eq. (31)): from beta_start at t = 1 to
    beta_end at t = T, :math:`\beta_{start} + \frac{\beta_{end} - \beta_{start}}{T - 1}(t - 1)`."""
    a = _step_args(t, T, beta_start=beta_start, beta_end=beta_end)
    step = (a["beta_end"] - a["beta_start"]) / (a["T"] - 1)
    return a["beta_start"] + step * (a["t"] - 1)


@register(31)
def scaled_linear_beta_t(*, t, T, beta_start, beta_end) -> torch.Tensor:
    r"""beta_t of Stable Diffusion's scaled-linear schedule at step t of T (eq. (31)):
    sqrt(beta_t) runs linearly from sqrt(beta_start) at t = 1 to sqrt(beta_end) at t = T."""
    a = _step_args(t, T, beta_start=beta_start, beta_end=beta_end)
    root_start, root_end = a["beta_start"].sqrt(), a["beta_end"].sqrt()
    return (root_start + (root_end - root_start) / (a["T"] - 1) * (a["t"] - 1)) ** 2


@register(31, 70)
def cosine_beta_t(*, t, T, s) -> torch.Tensor:
    r"""beta_t of improved DDPM's cosine schedule at step t of T, before clipping (eq. (31)).

    1 - f(t / T) / f((t - 1) / T) with f(u) = cos((u + s) / (1 + s) pi / 2)^2, the target
    alpha_bar_t = f(t / T) / f(0) of eq. (70).
    """
    a = _step_args(t, T, s=s)

    def f(u):
        return torch.cos((u + a["s"]) / (1 + a["s"]) * (math.pi / 2)) ** 2

    return 1 - f(a["t"] / a["T"]) / f((a["t"] - 1) / a["T"])


def _steps(T: int) -> torch.Tensor:
    return torch.arange(1, T + 1, dtype=torch.float64)


@register(31)
def linear_schedule(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02, **kw):
    """DDPM's schedule, beta_t = 1 - alpha_t (eq. (31)) linear from beta_start to beta_end
    (`linear_beta_t`; the last step is beta_end exactly, as linspace has it).

    Keyword arguments (dtype, device) go to `Schedule`.
    """
    T = _check_T(T)
    for name, v in (("beta_start", beta_start), ("beta_end", beta_end)):
        checks.in_unit_interval(name, v, closed_right=False)
    # T = 1: the one step is beta_start (t = 1 is the start on any grid of T >= 2)
    beta = linear_beta_t(t=_steps(T), T=max(T, 2), beta_start=beta_start, beta_end=beta_end)
    if T > 1:
        beta[-1] = beta_end
    return Schedule(beta, **kw)


@register(31)
def scaled_linear_schedule(
    T: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012, **kw
):
    """Stable Diffusion's schedule (eq. (31)), sqrt(beta_t) linear (`scaled_linear_beta_t`)."""
    T = _check_T(T)
    for name, v in (("beta_start", beta_start), ("beta_end", beta_end)):
        checks.in_unit_interval(name, v, closed_right=False)
    ends = {"beta_start": beta_start, "beta_end": beta_end}
    return Schedule(scaled_linear_beta_t(t=_steps(T), T=max(T, 2), **ends), **kw)


@register(31, 70)
def cosine_schedule(T: int = 1000, s: float = 0.008, max_beta: float = 0.999, **kw):
    """Improved DDPM's cosine schedule for alpha_t (eq. (31)) via a target alpha_bar (eq. (70)):
    beta_t = min(`cosine_beta_t`, max_beta) (the clipping keeps beta_T < 1 where f -> 0)."""
    T = _check_T(T)
    checks.positive("s", s)
    checks.in_unit_interval("max_beta", max_beta, closed_right=False)
    return Schedule(torch.clamp(cosine_beta_t(t=_steps(T), T=T, s=s), max=max_beta), **kw)


@register(31)
def schedule_from_alphas(alpha_t, **kw):
    """A schedule from user-given alpha_1..alpha_T (eq. (31)), each in (0, 1) (alpha_t = 1
    would make var_q vanish: refused)."""
    alpha = torch.as_tensor(alpha_t, dtype=torch.float64)
    checks.in_unit_interval("alpha_t", alpha, closed_right=False)
    return Schedule(1 - alpha, **kw)


@register(31, 70)
def schedule_from_alpha_bars(alpha_bar_t, **kw):
    """A schedule from user-given alpha_bar_1..alpha_bar_T (eq. (70)), strictly decreasing in
    (0, 1); beta_t = 1 - alpha_bar_t / alpha_bar_{t-1} (eq. (31)) as
    (alpha_bar_{t-1} - alpha_bar_t) / alpha_bar_{t-1} (alpha_bar_0 = 1; the difference is exact
    where the two are within a factor 2, so nearly equal levels keep beta_t to 2 ulps)."""
    ab = torch.as_tensor(alpha_bar_t, dtype=torch.float64)
    checks.in_unit_interval("alpha_bar_t", ab, closed_right=False)
    if ab.ndim != 1 or ab.numel() == 0:
        raise ValueError(f"alpha_bar_t must be a non-empty 1-D tensor, got shape {tuple(ab.shape)}")
    step = torch.diff(ab)
    if bool((step >= 0).any()):
        bad = int(torch.nonzero(step >= 0)[0]) + 2
        raise ValueError(f"alpha_bar_t must be strictly decreasing in t; it is not at t = {bad}")
    ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
    return Schedule((ab_prev - ab) / ab_prev, **kw)


@register(31)
def make_schedule(name: str, T: int = 1000, beta_start=None, beta_end=None, **kw):
    """A named schedule: 'linear', 'scaled-linear' or 'cosine' (alpha_t of eq. (31)).

    beta_start / beta_end override the linear schedules' defaults (None: the default);
    cosine refuses them. Keyword arguments (dtype, device) go to `Schedule`.
    """
    ends = checks.schedule_choice(name, beta_start, beta_end)
    return _BUILDERS[name](T, **ends, **kw)


_BUILDERS = {
    "linear": linear_schedule,
    "scaled-linear": scaled_linear_schedule,
    "cosine": cosine_schedule,
}


# Pure functions of the paper's symbols (the reference's generated signatures).


def _alphas(alpha_t, alpha_bar_t, alpha_bar_prev, like):
    alpha_t = tensor_arg("alpha_t", alpha_t, "unit", like=like)
    alpha_bar_t = tensor_arg("alpha_bar_t", alpha_bar_t, "open_unit", like=like)
    alpha_bar_prev = tensor_arg("alpha_bar_prev", alpha_bar_prev, "unit", like=like)
    return alpha_t, alpha_bar_t, alpha_bar_prev


@register(84, 93)
def mu_q(*, x_t, x_0, alpha_t, alpha_bar_t, alpha_bar_prev) -> torch.Tensor:
    r"""Mean of q(x_{t-1} | x_t, x_0), eqs. (84), (93).

    :math:`\mu_q = \frac{\sqrt{\alpha_t}(1-\bar\alpha_{t-1}) x_t + \sqrt{\bar\alpha_{t-1}}
    (1-\alpha_t) x_0}{1-\bar\alpha_t}`. Coefficients broadcast against x_t (use
    `append_dims` for [B]); domains alpha_t, alpha_bar_prev in (0, 1], alpha_bar_t in (0, 1).
    """
    x_t = tensor_arg("x_t", x_t)
    x_0 = tensor_arg("x_0", x_0, like=x_t)
    a, ab, abp = _alphas(alpha_t, alpha_bar_t, alpha_bar_prev, x_t)
    check_broadcast(x_t=x_t, x_0=x_0, alpha_t=a, alpha_bar_t=ab, alpha_bar_prev=abp)
    return (a.sqrt() * (1 - abp) * x_t + abp.sqrt() * (1 - a) * x_0) / (1 - ab)


@register(85)
def var_q(*, alpha_t, alpha_bar_t, alpha_bar_prev) -> torch.Tensor:
    r"""Variance of q(x_{t-1} | x_t, x_0) per coordinate, eq. (85).

    :math:`\sigma_q^2(t) = \frac{(1-\alpha_t)(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}`.
    """
    like = alpha_t if isinstance(alpha_t, torch.Tensor) else None
    a, ab, abp = _alphas(alpha_t, alpha_bar_t, alpha_bar_prev, like)
    check_broadcast(alpha_t=a, alpha_bar_t=ab, alpha_bar_prev=abp)
    return (1 - a) * (1 - abp) / (1 - ab)


# --- KL between Gaussians, eq. (86) ---


@register(86)
def kl_normal(*, mean_q, var_q, mean_p, var_p) -> torch.Tensor:
    r"""KL(N(mean_q, var_q) || N(mean_p, var_p)) per coordinate, eq. (86).

    :math:`\tfrac12\left[\log\frac{\sigma_p^2}{\sigma_q^2} - 1 + \frac{\sigma_q^2 + (\mu_q -
    \mu_p)^2}{\sigma_p^2}\right]`; sum over coordinates for a diagonal covariance. Written
    as r - 1 - log r with r = var_q / var_p, computed as expm1mx(l) = expm1(l) - l (a series
    near 0), l = log r as log1p((var_q - var_p) / var_p) near r = 1 (`udm.torch_impl._stable`):
    the variance term stays >= 0 and keeps full relative accuracy when the variances nearly
    agree (tests/test_kl_precision.py: <= 1e-13 against 50-digit values).
    """
    mean_q = tensor_arg("mean_q", mean_q)
    mean_p = tensor_arg("mean_p", mean_p, like=mean_q)
    var_q = tensor_arg("var_q", var_q, "positive", like=mean_q)
    var_p = tensor_arg("var_p", var_p, "positive", like=mean_q)
    check_broadcast(mean_q=mean_q, var_q=var_q, mean_p=mean_p, var_p=var_p)
    variances = _stable.expm1mx(_stable.log_ratio(var_q, var_p))
    return 0.5 * (variances + (mean_q - mean_p) ** 2 / var_p)


LOG2 = math.log(2.0)


@register(94)
def mu_theta(*, x_t, x_0_hat, alpha_t, alpha_bar_t, alpha_bar_prev) -> torch.Tensor:
    r"""Mean of p_theta(x_{t-1} | x_t) through the prediction x_0_hat, eq. (94).

    `mu_q` (eq. (93)) at x_0 = x_0_hat.
    """
    alphas = {"alpha_t": alpha_t, "alpha_bar_t": alpha_bar_t, "alpha_bar_prev": alpha_bar_prev}
    return mu_q(x_t=x_t, x_0=tensor_arg("x_0_hat", x_0_hat), **alphas)


@register(92)
def denoising_kl(*, mu_q, mu_theta, var_q) -> torch.Tensor:
    r"""KL(N(mu_q, var_q) || N(mu_theta, var_q)) per coordinate, eq. (92).

    :math:`\frac{(\mu_\theta - \mu_q)^2}{2\sigma_q^2}`; sum over coordinates for
    ||mu_theta - mu_q||^2 / (2 sigma_q^2).
    """
    mu_q = tensor_arg("mu_q", mu_q)
    mu_theta = tensor_arg("mu_theta", mu_theta, like=mu_q)
    var_q = tensor_arg("var_q", var_q, "positive", like=mu_q)
    check_broadcast(mu_q=mu_q, mu_theta=mu_theta, var_q=var_q)
    return (mu_theta - mu_q) ** 2 / (2 * var_q)


@register(99, 101)
def x_0_loss_weight(*, alpha_t, alpha_bar_t, alpha_bar_prev) -> torch.Tensor:
    r"""Weight of ||x_0_hat - x_0||^2 in the denoising KL, eqs. (99), (101), for t >= 2.

    :math:`\frac{1}{2\sigma_q^2(t)}\frac{\bar\alpha_{t-1}(1-\alpha_t)^2}{(1-\bar\alpha_t)^2}
    = \frac{\bar\alpha_{t-1}(1-\alpha_t)}{2(1-\bar\alpha_{t-1})(1-\bar\alpha_t)}`;
    alpha_bar_prev in (0, 1) (at t = 1 the weight is infinite: the decoder term replaces it).
    """
    like = alpha_t if isinstance(alpha_t, torch.Tensor) else None
    a, ab, abp = _alphas(alpha_t, alpha_bar_t, alpha_bar_prev, like)
    tensor_arg("alpha_bar_prev", abp, "open_unit")
    check_broadcast(alpha_t=a, alpha_bar_t=ab, alpha_bar_prev=abp)
    return _x_0_weight(abp, 1 - a, 1 - abp, 1 - ab)


@register(58, 86)
def prior_kl_term(*, x_0, alpha_bar_t) -> torch.Tensor:
    r"""Prior matching term of eq. (58), KL(q(x_T | x_0) || N(0, I)) per coordinate, eq. (86).

    Pass alpha_bar_t = alpha_bar_T. :math:`\tfrac12[\bar\alpha x_0^2 - \bar\alpha -
    \log(1 - \bar\alpha)]`, as (alpha_bar x_0^2 + expm1mx(log1p(-alpha_bar))) / 2: full
    relative accuracy even at x_0 = 0 and alpha_bar_T ~ 1e-9 (the KL is then ~alpha_bar^2 / 4).
    Sum over coordinates for one sample's term.
    """
    x_0 = tensor_arg("x_0", x_0)
    ab = tensor_arg("alpha_bar_t", alpha_bar_t, "open_unit", like=x_0)
    check_broadcast(x_0=x_0, alpha_bar_t=ab)
    return 0.5 * (ab * x_0**2 + _stable.expm1mx(torch.log1p(-ab)))


def _log_ndtr_diff(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """log(Phi(hi) - Phi(lo)) for lo < hi, from whichever tail keeps it accurate."""
    upper = lo > 0  # both in the upper tail: Phi(hi) - Phi(lo) = Phi(-lo) - Phi(-hi)
    a = torch.where(upper, -hi, lo)
    b = torch.where(upper, -lo, hi)
    log_b = torch.special.log_ndtr(b)
    return log_b + _log1mexp(torch.special.log_ndtr(a) - log_b)


@register(58)
def discretized_gaussian_log_likelihood(*, x_0, mean, log_var, levels: int | None) -> torch.Tensor:
    r"""log p(x_0 | x_1) per coordinate for DDPM's discretized Gaussian decoder (eq. (58)).

    x_0: data with `levels` grey levels scaled to [-1, 1] (8-bit: k / 127.5 - 1); the bin of
    x is [x - h, x + h], h = 1 / (levels - 1), widened to -inf / +inf at -1 and 1
    (`levels=None`: continuous data, the Gaussian log-density). log of a difference of normal CDFs
    computed with log_ndtr on the tail where it does not cancel (DDPM clamps at 1e-12
    instead, which caps the log-likelihood at -27.6 per coordinate).
    """
    x_0 = tensor_arg("x_0", x_0)
    mean = tensor_arg("mean", mean, like=x_0)
    log_var = tensor_arg("log_var", log_var, like=x_0)
    check_broadcast(x_0=x_0, mean=mean, log_var=log_var)
    if levels is None:
        return _gaussian_log_density(x_0, mean, log_var)
    _check_levels(levels, x_0)
    return _discretized(x_0, mean, log_var, levels)


def _check_levels(levels, x_0: torch.Tensor) -> None:
    """A discretized decoder needs a level count and data in its range [-1, 1]: continuous
    data outside it would get a plausible but meaningless likelihood."""
    if levels is None:
        return
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ValueError(f"levels must be an int >= 2 or None, got {levels!r}")
    if checks.validate_args_enabled() and bool((x_0.abs() > 1).any()):
        raise ValueError(
            f"x_0 must lie in [-1, 1] for the discretized decoder (levels={levels}); "
            "for continuous data pass levels=None"
        )


def _gaussian_log_density(x_0, mean, log_var):
    return -0.5 * (math.log(2 * math.pi) + log_var + (x_0 - mean) ** 2 * torch.exp(-log_var))


def _discretized(x_0, mean, log_var, levels: int) -> torch.Tensor:
    half_bin = 1.0 / (levels - 1)
    inv_std = torch.exp(-0.5 * log_var)
    inf = torch.full_like(x_0, math.inf)
    hi = torch.where(x_0 > 1 - half_bin / 2, inf, (x_0 - mean + half_bin) * inv_std)
    lo = torch.where(x_0 < -1 + half_bin / 2, -inf, (x_0 - mean - half_bin) * inv_std)
    return _log_ndtr_diff(lo, hi)


def _sum_data(v: torch.Tensor) -> torch.Tensor:
    """Sum [B, ...] over the data dimensions to [B] (torch's sum(()) would sum everything)."""
    return v.flatten(1).sum(1) if v.ndim > 1 else v


def _kl_normal_log_var(diff_sq, log_var_q, log_var_p) -> torch.Tensor:
    """KL(N(m_q, var_q) || N(m_p, var_p)) per coordinate from (m_q - m_p)^2 and the two
    log-variances (eq. (86) as `kl_normal` writes it: r - 1 - log r = expm1mx(l), l = log r,
    `udm.torch_impl._stable`). No validation (inner loop of the bound)."""
    return 0.5 * (_stable.expm1mx(log_var_q - log_var_p) + diff_sq * torch.exp(-log_var_p))


def _vb_term(
    schedule: Schedule, x_0, x_t, x_0_hat, t, levels: int | None, log_var=None
) -> torch.Tensor:
    """L_t per sample (nats, summed over coordinates); t a [B] tensor, no validation.
    log_var: the model's log-variance of p(x_{t-1} | x_t) (broadcasting against x_0; at t = 1
    the decoder's), or None for sigma_q^2 (the matched path: eq. (99), decoder var_q(2))."""
    is_recon = append_dims(t == 1, x_0)
    if log_var is None:
        # t >= 2: the denoising KL, eq. (99) (= eq. (92) without the cancelling x_t terms).
        # The weight is infinite at t = 1; it is zeroed *before* it multiplies anything, since
        # where(mask, 0, inf * r) has a finite value but a NaN gradient (0 * inf in backward).
        weight = torch.where(is_recon, 0.0, schedule.gather("x_0_loss_weight", t, x_0))
        kl = _sum_data(weight * (x_0_hat - x_0) ** 2)
        log_var = schedule.posterior_log_var(t, x_0)  # the decoder's: var_q(2) at t = 1
    else:
        # t >= 2: KL(N(mu_q, sigma_q^2) || N(mu_theta, Sigma)), eq. (86) with unmatched
        # variances; mu_q - mu_theta = coef_x_0 (x_0 - x_0_hat) (eqs. (84), (94)). At t = 1
        # every factor is finite (log_var_q clipped, coef_x_0 = 1) and the value is masked.
        coef = schedule.gather("mu_q_coef_x_0", t, x_0)
        per_coord = _kl_normal_log_var(
            coef**2 * (x_0_hat - x_0) ** 2, schedule.posterior_log_var(t, x_0), log_var
        )
        kl = _sum_data(torch.where(is_recon, 0.0, per_coord))
    # t = 1: reconstruction -log p(x_0 | x_1), decoder N(mu_theta(x_1, 1) = x_0_hat, exp(log_var))
    mean = schedule.p_mean(x_t=x_t, x_0_hat=x_0_hat, t=t)
    log_var = log_var.expand_as(x_0)
    if levels is None:
        decoder = -_gaussian_log_density(x_0, mean, log_var)
    else:
        decoder = -_discretized(x_0, mean, log_var, levels)
    recon = _sum_data(torch.where(is_recon, decoder, 0.0))
    return kl + recon


def _split(out, like: torch.Tensor):
    """A denoiser's output: x_0_hat, or (x_0_hat, log_var) for a model variance != sigma_q^2."""
    if isinstance(out, tuple):
        x_0_hat, log_var = out
    else:
        x_0_hat, log_var = out, None
    if x_0_hat.shape != like.shape:
        raise ValueError(
            f"denoiser returned shape {tuple(x_0_hat.shape)}, expected {tuple(like.shape)}"
        )
    return x_0_hat, log_var


@register(58, 86, 92, 99)
def vb_term(
    schedule: Schedule, *, x_0, x_t, x_0_hat, t, levels: int | None, log_var=None
) -> torch.Tensor:
    r"""One term L_t of the negative ELBO (eq. (58)) per sample, in nats, at time steps t.

    t = 1: the reconstruction term -log p_theta(x_0 | x_1) (discretized Gaussian decoder,
    mean mu_theta(x_1, 1) = x_0_hat, log-variance log var_q clipped); t >= 2: the denoising
    KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)) with matched variances, eq. (92),
    written as the x_0 regression of eq. (99). Shapes: x_0, x_t, x_0_hat [B, ...]; t [B]
    integers in 1..T (may differ per sample). Returns [B].

    log_var: a model variance other than sigma_q^2 (DDPM's beta_t, iDDPM's learned
    interpolation), as log Sigma_theta broadcasting against x_0; then t >= 2 is the KL of
    Gaussians with unmatched variances (eq. (86)) and the t = 1 decoder has that variance.
    """
    x_0 = tensor_arg("x_0", x_0)
    _check_levels(levels, x_0)
    x_t = tensor_arg("x_t", x_t)
    x_0_hat = tensor_arg("x_0_hat", x_0_hat)
    checks.same_shape(x_0=x_0, x_t=x_t, x_0_hat=x_0_hat)
    t = schedule.check_t(t).to(x_0.device)
    if t.shape != x_0.shape[:1]:
        raise ValueError(f"t must have shape [B] = {tuple(x_0.shape[:1])}, got {tuple(t.shape)}")
    if log_var is not None:
        log_var = tensor_arg("log_var", log_var, like=x_0)
        check_broadcast(x_0=x_0, log_var=log_var)
    return _vb_term(schedule, x_0, x_t, x_0_hat, t, levels, log_var)


def _prior(schedule: Schedule, x_0: torch.Tensor) -> torch.Tensor:
    ab_T = schedule.coefficients(x_0.dtype, x_0.device)["alpha_bar_t"][-1]
    return _sum_data(prior_kl_term(x_0=x_0, alpha_bar_t=ab_T))


@register(58, 100)
def vb_terms(schedule: Schedule, denoiser, x_0, *, levels, eps=None, generator=None):
    r"""All terms of the negative ELBO (eq. (58)) in one batched pass over t = 1..T.

    denoiser(x_t, t) -> x_0_hat is called ONCE on T * B inputs (x_t [T * B, ...], t [T * B],
    t-major); no Python loop over T. It may return (x_0_hat, log_var) for a model variance
    other than sigma_q^2 (see `vb_term`). eps: [T, B, ...] standard normal noise (drawn with
    `generator` if None). Returns (terms [B, T], prior [B]) in nats: terms[:, t - 1] = L_t
    (reconstruction at t = 1, denoising KLs for t >= 2, see `vb_term`), prior = KL(q(x_T |
    x_0) || N(0, I)). Summing terms over t is the sum of eq. (100)'s expectation times T - 1
    plus the reconstruction. Memory: T * B * prod(x_0.shape[1:]) elements. `levels`: grey
    levels of discrete data for the t = 1 decoder (256 = 8-bit; sklearn's digits: 17), or
    None for continuous data (Gaussian decoder density: the bound is then on log p in nats).
    """
    x_0 = tensor_arg("x_0", x_0)
    _check_levels(levels, x_0)
    T, B = schedule.T, x_0.shape[0]
    if eps is None:
        eps = torch.randn((T, *x_0.shape), generator=generator, dtype=x_0.dtype, device=x_0.device)
    eps = tensor_arg("eps", eps)
    if eps.shape != (T, *x_0.shape):
        raise ValueError(
            f"eps must have shape [T, B, ...] = {(T, *x_0.shape)}, got {tuple(eps.shape)}"
        )
    t = torch.arange(1, T + 1, device=x_0.device).repeat_interleave(B)  # [T * B], t-major
    x_0_rep = x_0.expand(T, *x_0.shape).reshape(T * B, *x_0.shape[1:])
    x_t = schedule.q_sample(x_0=x_0_rep, t=t, eps=eps.reshape(T * B, *x_0.shape[1:]))
    x_0_hat, log_var = _split(denoiser(x_t, t), x_t)
    terms = _vb_term(schedule, x_0_rep, x_t, x_0_hat, t, levels, log_var).reshape(T, B).T
    return terms, _prior(schedule, x_0)


@register(58, 100)
def nll_bits_per_dim(schedule: Schedule, denoiser, x_0, *, levels, eps=None, generator=None):
    r"""The negative ELBO (eq. (58)) in bits per dimension, all t in one pass (`vb_terms`).

    (prior + sum_t L_t) / (D log 2), D = prod(x_0.shape[1:]); an upper bound on -log2 p(x_0)
    per dimension for 8-bit data scaled to [-1, 1]; the denoising terms are those of eq.
    (100) summed rather than sampled. Returns [B].
    """
    terms, prior = vb_terms(schedule, denoiser, x_0, eps=eps, generator=generator, levels=levels)
    dims = max(1, math.prod(x_0.shape[1:]))
    return (prior + terms.sum(1)) / (dims * LOG2)


@register(58, 100)
def training_loss(schedule: Schedule, denoiser, x_0, *, levels, t=None, eps=None, generator=None):
    r"""Unbiased one-t-per-sample estimate of the negative ELBO (eq. (58)), in nats per sample.

    t ~ U{1, ..., T} per sample (eq. (100) extended to include the reconstruction term at
    t = 1); the loss T * L_t + prior has expectation prior + sum_{t=1}^T L_t, the full
    negative ELBO of `vb_terms`. denoiser(x_t, t) -> x_0_hat is called once on [B, ...].
    t: [B] integers in 1..T, eps: [B, ...] (both drawn with `generator` if None).
    Returns [B]; take .mean() for the batch loss.
    """
    x_0 = tensor_arg("x_0", x_0)
    _check_levels(levels, x_0)
    B = x_0.shape[0]
    if t is None:
        t = torch.randint(1, schedule.T + 1, (B,), generator=generator, device=x_0.device)
    t = schedule.check_t(t).to(x_0.device)
    if t.shape != (B,):
        raise ValueError(f"t must have shape [B] = {(B,)}, got {tuple(t.shape)}")
    if eps is None:
        eps = torch.randn(x_0.shape, generator=generator, dtype=x_0.dtype, device=x_0.device)
    checks.same_shape(x_0=x_0, eps=eps)
    x_t = schedule.q_sample(x_0=x_0, t=t, eps=eps)
    x_0_hat, log_var = _split(denoiser(x_t, t), x_t)
    return schedule.T * _vb_term(schedule, x_0, x_t, x_0_hat, t, levels, log_var) + _prior(
        schedule, x_0
    )
