"""Ground truth at 50 digits (mpmath) for a declared noise schedule, and ulp error measures.

Shared by `udm audit` and the accuracy benchmark (`udm/bench/accuracy.py`). A schedule is
declared by its published recipe with decimal parameters (a float parameter such as a
config's ``beta_end = 0.02`` is read as the shortest decimal that round-trips, ``"0.02"``):

* ``linear``        DDPM: beta_t = linspace(beta_start, beta_end, T);
* ``scaled-linear`` Stable Diffusion: beta_t = linspace(sqrt(beta_start), sqrt(beta_end), T)^2;
* ``cosine``        improved DDPM / diffusers ``squaredcos_cap_v2``: f(u) = cos((u + s) /
                    (1 + s) pi / 2)^2, s = 0.008, beta_t = min(1 - f(t / T) / f((t - 1) / T), 0.999);
* ``sigmoid``       diffusers: sigmoid(linspace(-6, 6, T)) (beta_end - beta_start) + beta_start;
* zero terminal SNR (Lin et al. 2024, diffusers ``rescale_betas_zero_snr``): sqrt(alpha_bar_t)
  shifted so that sqrt(alpha_bar_T) = 0 and rescaled to keep sqrt(alpha_bar_1).

Index t - 1 of every list belongs to the paper's time step t (1-based).
"""

from __future__ import annotations

import mpmath
import numpy as np

DPS = 50
SCHEDULE_NAMES = ("linear", "scaled-linear", "cosine", "sigmoid")
DEFAULT_ENDS = {
    "linear": ("0.0001", "0.02"),
    "scaled-linear": ("0.00085", "0.012"),
    "sigmoid": ("0.0001", "0.02"),
}
# every per-t coefficient `true_table` returns (names as in the paper's notation)
QUANTITIES = (
    "beta_t",
    "alpha_t",
    "alpha_bar_t",
    "alpha_bar_prev",
    "one_minus_alpha_bar_t",
    "sqrt_alpha_bar_t",
    "sqrt_one_minus_alpha_bar_t",
    "var_q",
    "log_var_q",
    "snr",
    "log_snr",
    "mu_q_coef_x_t",
    "mu_q_coef_x_0",
    "x_0_loss_weight",
    "eps_loss_weight",
    "score_loss_weight",
)


def decimal(value) -> mpmath.mpf:
    """A parameter as the decimal its author wrote: floats via their shortest repr."""
    if isinstance(value, str):
        return mpmath.mpf(value)
    if isinstance(value, int):
        return mpmath.mpf(value)
    return mpmath.mpf(repr(float(value)))


def true_betas(name: str, T: int, beta_start=None, beta_end=None) -> list:
    """The published betas of schedule `name` at T steps, as 50-digit mpmath numbers."""
    if name not in SCHEDULE_NAMES:
        raise ValueError(f"no published betas for {name!r}; known: {', '.join(SCHEDULE_NAMES)}")
    with mpmath.workdps(DPS):
        if name == "cosine":
            if beta_start is not None or beta_end is not None:
                raise ValueError("the cosine schedule takes no beta_start/beta_end")
            s, cap = mpmath.mpf("0.008"), mpmath.mpf("0.999")

            def f(u):
                return mpmath.cos((u + s) / (1 + s) * mpmath.pi / 2) ** 2

            fs = [f(mpmath.mpf(i) / T) for i in range(T + 1)]
            return [min(1 - fs[i] / fs[i - 1], cap) for i in range(1, T + 1)]
        lo = decimal(DEFAULT_ENDS[name][0] if beta_start is None else beta_start)
        hi = decimal(DEFAULT_ENDS[name][1] if beta_end is None else beta_end)
        if name == "linear":
            return [lo + (hi - lo) * i / (T - 1) if T > 1 else lo for i in range(T)]
        if name == "scaled-linear":
            lo, hi = mpmath.sqrt(lo), mpmath.sqrt(hi)
            return [(lo + (hi - lo) * i / (T - 1) if T > 1 else lo) ** 2 for i in range(T)]
        # sigmoid
        xs = [
            mpmath.mpf(-6) + mpmath.mpf(12) * i / (T - 1) if T > 1 else mpmath.mpf(-6)
            for i in range(T)
        ]
        return [(hi - lo) / (1 + mpmath.exp(-x)) + lo for x in xs]


def rescale_zero_terminal_snr(betas: list) -> list:
    """Lin et al. (2024), Algorithm 1, in mpmath: betas whose alpha_bar_T is exactly 0."""
    with mpmath.workdps(DPS):
        ab, acc = [], mpmath.mpf(1)
        for b in betas:
            acc *= 1 - b
            ab.append(acc)
        r = [mpmath.sqrt(v) for v in ab]
        r0, rT = r[0], r[-1]
        r = [(v - rT) * r0 / (r0 - rT) for v in r]
        ab = [v**2 for v in r]
        alphas = [ab[0]] + [ab[i] / ab[i - 1] for i in range(1, len(ab))]
        return [1 - a for a in alphas]


def true_table(betas: list, quantities=QUANTITIES) -> dict[str, list]:
    """Every per-t coefficient of a schedule from its betas, in mpmath (index t - 1).

    log_var_q at t = 1 is clipped to its value at t = 2 (DDPM's
    posterior_log_variance_clipped, ours); the loss weights are infinite at t = 1.
    """
    with mpmath.workdps(DPS):
        T = len(betas)
        out: dict[str, list] = {k: [] for k in quantities}
        ab_prev = mpmath.mpf(1)
        inf, nan = mpmath.inf, mpmath.mpf("nan")
        for beta in betas:
            alpha = 1 - beta
            ab = ab_prev * alpha
            om, om_prev = 1 - ab, 1 - ab_prev
            var = beta * om_prev / om
            row = {
                "beta_t": beta,
                "alpha_t": alpha,
                "alpha_bar_t": ab,
                "alpha_bar_prev": ab_prev,
                "one_minus_alpha_bar_t": om,
                "sqrt_alpha_bar_t": mpmath.sqrt(ab),
                "sqrt_one_minus_alpha_bar_t": mpmath.sqrt(om),
                "var_q": var,
                "log_var_q": mpmath.log(var) if var > 0 else nan,
                "snr": ab / om,
                "log_snr": mpmath.log(ab / om) if ab > 0 else -inf,
                "mu_q_coef_x_t": mpmath.sqrt(alpha) * om_prev / om,
                "mu_q_coef_x_0": mpmath.sqrt(ab_prev) * beta / om,
                "x_0_loss_weight": ab_prev * beta / (2 * om_prev * om) if om_prev else inf,
                "eps_loss_weight": beta / (2 * alpha * om_prev) if om_prev and alpha else inf,
                "score_loss_weight": beta * om / (2 * alpha * om_prev)
                if om_prev and alpha
                else inf,
            }
            for k in quantities:
                out[k].append(row[k])
            ab_prev = ab
        if "log_var_q" in out:
            out["log_var_q"][0] = out["log_var_q"][1] if T > 1 else mpmath.log(betas[0])
        return out


def split(values: list) -> tuple[np.ndarray, np.ndarray]:
    """mpmath values as float64 (hi, lo) pairs with hi + lo = value to ~1e-32."""
    with mpmath.workdps(DPS):
        hi = np.array([float(v) for v in values])
        lo = np.array(
            [
                float(v - mpmath.mpf(h)) if mpmath.isfinite(v) else 0.0
                for v, h in zip(values, hi, strict=True)
            ]
        )
    return hi, lo


def abs_error(got, truth: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """|got - truth| per element (float64, using the truth's low part); inf where one side
    is non-finite and they differ."""
    got = np.asarray(got, dtype=np.float64)
    hi, lo = truth
    finite = np.isfinite(hi)
    with np.errstate(invalid="ignore"):
        err = np.where(finite, np.abs((got - hi) - lo), np.where(got == hi, 0.0, np.inf))
    return np.where(np.isnan(got) & finite, np.inf, err)


def ulps(got, truth: tuple[np.ndarray, np.ndarray], dtype=np.float32) -> np.ndarray:
    """Error per element in ulps of `dtype`: |got - true| / spacing(true rounded to dtype)."""
    err = abs_error(got, truth)
    hi = truth[0]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        spacing = np.spacing(np.abs(hi).astype(dtype)).astype(np.float64)
        spacing = np.where(spacing == 0, np.spacing(dtype(0)), spacing)  # underflow to 0
        out = np.where(err == 0, 0.0, err / spacing)
    return np.where(np.isfinite(hi), out, np.where(err == 0, 0.0, np.inf))


def errors(got, truth: tuple[np.ndarray, np.ndarray], dtype=np.float32, scale=None) -> dict:
    """Max relative error and max ulps (in `dtype`'s ulps) of `got` against (hi, lo) truth.

    scale: optional magnitudes (float64) for an "ulps of scale" column: error / spacing(scale).
    Returns max_rel, max_ulps, worst (index of max ulps), and max_ulps_scale when scale given.
    """
    err = abs_error(got, truth)
    hi = truth[0]
    u = ulps(got, truth, dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(err == 0, 0.0, err / np.abs(hi))
    out = {
        "max_rel": float(np.max(rel)) if rel.size else 0.0,
        "max_ulps": float(np.max(u)) if u.size else 0.0,
        "worst": int(np.argmax(u)) if u.size else 0,
    }
    if scale is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            sp = np.spacing(np.abs(np.asarray(scale, np.float64)).astype(dtype)).astype(np.float64)
            us = np.where(err == 0, 0.0, err / sp)
        out["max_ulps_scale"] = float(np.max(us)) if us.size else 0.0
    return out
