"""Accuracy benchmark: every schedule quantity, loss weight and conversion against mpmath truth.

Ground truth is computed with mpmath at 50 significant digits from each schedule's defining
betas exactly as published (decimal parameters, not their float64 roundings):

* ``linear``        DDPM: beta_t = linspace(1e-4, 0.02, T);
* ``cosine``        improved DDPM: f(u) = cos((u + s) / (1 + s) pi / 2)^2, s = 0.008,
                    beta_t = min(1 - f(t / T) / f((t - 1) / T), 0.999);
* ``scaled-linear`` Stable Diffusion: beta_t = linspace(sqrt(0.00085), sqrt(0.012), T)^2;
* ``learned``       `LearnedNoiseSchedule` (seed 0) evaluated at t = i / T, its float64
                    parameters taken as exact.

Three kinds of rows:

* ``table``: a per-t coefficient (alpha_bar_t, var_q, SNR, loss weights, ...) against the
  true schedule's value. Ours (float32 and float64 `Schedule` tables) beside diffusers'
  `DDPMScheduler` (float32 `alphas_cumprod`) and the float64 NumPy recipe of the DDPM code
  (np.cumprod of float64 alphas, then cast to float32). Target: float32 <= 1 ulp.
* ``function``: a float32 computation on float32 tensors (q_sample, mu_q, the loss weights,
  the x_0/eps/score/v conversions) against the exact result for those float32 inputs.
  Target: <= 4 ulps of the exact result. Also reported: the error in ulps of the largest
  intermediate term ("ulps of scale"), which is what a float32 evaluation can promise when
  the result cancels.
* ``end_to_end``: t -> coefficient -> formula on float32 data (q_sample, x_0 from eps or v,
  the posterior mean) against the true schedule, ours beside diffusers' formulas.

Errors: relative = |got - true| / |true|; ulps = |got - true| / spacing(true rounded to the
output's dtype) (``numpy.spacing``): float32 outputs in float32 ulps, float64 outputs in float64
ulps.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import mpmath
import numpy as np
import torch

from udm.audit import truth

DPS = truth.DPS
SCHEDULES = ("linear", "cosine", "scaled-linear", "learned")
# the schedule tables the benchmark reports (truth.QUANTITIES less the one it does not)
TABLE_QUANTITIES = tuple(q for q in truth.QUANTITIES if q != "one_minus_alpha_bar_t")
# quantities compared from t = 2 on: infinite at t = 1 (weights) or a convention there
# (log_var_q: we and DDPM clip to t = 2, diffusers clamps the variance at 1e-20)
FROM_T2 = ("log_var_q", "x_0_loss_weight", "eps_loss_weight", "score_loss_weight")
LEARNED_QUANTITIES = (
    "alpha_bar_t",
    "one_minus_alpha_bar_t",
    "sqrt_alpha_bar_t",
    "sqrt_one_minus_alpha_bar_t",
    "snr",
    "log_snr",
    "x_0_loss_weight",
    "eps_loss_weight",
)
TABLE_TARGET_ULPS = 1.0
FUNCTION_TARGET_ULPS = 4.0
LEARNED_HIDDEN = 16  # width of the learned schedule's network (mpmath cost is T * hidden)


def diffusers_available() -> bool:
    try:
        import diffusers  # noqa: F401
    except Exception:  # ImportError, or a broken optional install
        return False
    return True


# --- ground truth: udm.audit.truth (shared with `udm audit`) ---------------------------------

true_betas = truth.true_betas
true_table = truth.true_table
_split = truth.split
errors = truth.errors


def _learned_module(dtype: torch.dtype):
    from udm.torch_impl.noise_params import LearnedNoiseSchedule

    gen_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    try:
        module = LearnedNoiseSchedule(hidden=LEARNED_HIDDEN, dtype=torch.float64)
    finally:
        torch.random.set_rng_state(gen_state)
    return module.to(dtype)


def true_omega(module, ts: list) -> list:
    """omega(t) of a LearnedNoiseSchedule in mpmath, its float64 parameters taken as exact."""
    with mpmath.workdps(DPS):
        mpf = mpmath.mpf

        def p(x):
            return [mpf(float(v)) for v in x.detach().double().reshape(-1)]

        def softplus(x):
            return mpmath.log1p(mpmath.exp(x))

        w1 = softplus(p(module.raw_w1)[0]) + mpf(1e-3)
        w2 = [softplus(v) for v in p(module.raw_w2)]
        w3 = [softplus(v) for v in p(module.raw_w3)]
        b2 = p(module.b2)
        n = len(w2)

        def h(t):
            acc = mpf(0)
            for a, b, c in zip(w2, b2, w3, strict=True):
                acc += c * (2 / (1 + mpmath.exp(-(a * (2 * t - 1) + b))) - 1)
            return w1 * t + acc / n

        h0, h1 = h(mpf(0)), h(mpf(1))
        omin = p(module.raw_omega_min)[0]
        gap = softplus(p(module.raw_gap)[0]) + mpf(1e-4)
        return [omin + gap * (h(t) - h0) / (h1 - h0) for t in ts]


def true_learned(omegas: list) -> dict[str, list]:
    """Learned-schedule quantities at t = i / T (i = 1..T) from omega at i / T, i = 0..T."""
    with mpmath.workdps(DPS):
        out = {k: [] for k in LEARNED_QUANTITIES}
        for w_s, w_t in itertools.pairwise(omegas):
            sig = 1 / (1 + mpmath.exp(w_t))
            row = {
                "alpha_bar_t": sig,
                "one_minus_alpha_bar_t": 1 / (1 + mpmath.exp(-w_t)),
                "sqrt_alpha_bar_t": mpmath.sqrt(sig),
                "sqrt_one_minus_alpha_bar_t": mpmath.sqrt(1 / (1 + mpmath.exp(-w_t))),
                "snr": mpmath.exp(-w_t),
                "log_snr": -w_t,
                "x_0_loss_weight": (mpmath.exp(-w_s) - mpmath.exp(-w_t)) / 2,
                "eps_loss_weight": mpmath.expm1(w_t - w_s) / 2,
            }
            for k, v in row.items():
                out[k].append(v)
        return out


def _np(x) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


# --- implementations of the schedule tables ------------------------------------------------


def ours_tables(name: str, T: int, dtype: torch.dtype) -> dict[str, np.ndarray]:
    from udm.torch_impl import vdm

    sched = vdm.make_schedule(name, T, dtype=dtype)
    coef = sched.coefficients(dtype)
    return {k: _np(coef[k]) for k in TABLE_QUANTITIES if k in coef}


def numpy_recipe_tables(name: str, T: int) -> dict[str, np.ndarray]:
    """The DDPM-family float64 NumPy recipe (ddpm / improved-diffusion), cast to float32."""
    if name == "linear":
        betas = np.linspace(1e-4, 0.02, T, dtype=np.float64)
    elif name == "scaled-linear":
        betas = np.linspace(0.00085**0.5, 0.012**0.5, T, dtype=np.float64) ** 2
    else:  # improved-diffusion's betas_for_alpha_bar, Python floats
        f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
        betas = np.array([min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)])
    alphas = 1.0 - betas
    ab = np.cumprod(alphas, axis=0)
    abp = np.append(1.0, ab[:-1])
    var = betas * (1.0 - abp) / (1.0 - ab)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = ab / (1.0 - ab)
        snr_prev = abp / (1.0 - abp)
        out = {
            "beta_t": betas,
            "alpha_t": alphas,
            "alpha_bar_t": ab,
            "alpha_bar_prev": abp,
            "sqrt_alpha_bar_t": np.sqrt(ab),
            "sqrt_one_minus_alpha_bar_t": np.sqrt(1.0 - ab),
            "var_q": var,
            "log_var_q": np.log(np.append(var[1], var[1:])) if T > 1 else np.log(betas),
            "snr": snr,
            "log_snr": np.log(snr),
            "mu_q_coef_x_t": (1.0 - abp) * np.sqrt(alphas) / (1.0 - ab),
            "mu_q_coef_x_0": betas * np.sqrt(abp) / (1.0 - ab),
            "x_0_loss_weight": 0.5 * (snr_prev - snr),  # (SNR(t-1) - SNR(t)) / 2, eq. (110)
            # the paper's eq. (130) form: (1 - alpha_t)^2 / (2 sigma_q^2 alpha_t (1 - alpha_bar_t))
            "eps_loss_weight": betas**2 / (2 * var * alphas * (1.0 - ab)),
        }
        out["score_loss_weight"] = out["eps_loss_weight"] * (1.0 - ab)
    return {k: v.astype(np.float32).astype(np.float64) for k, v in out.items()}


_DIFFUSERS_NAMES = {
    "linear": "linear",
    "scaled-linear": "scaled_linear",
    "cosine": "squaredcos_cap_v2",
}


def diffusers_scheduler(name: str, T: int):
    from diffusers import DDPMScheduler

    kw = {"beta_start": 0.00085, "beta_end": 0.012} if name == "scaled-linear" else {}
    return DDPMScheduler(num_train_timesteps=T, beta_schedule=_DIFFUSERS_NAMES[name], **kw)


def diffusers_tables(name: str, T: int) -> dict[str, np.ndarray]:
    """diffusers' DDPMScheduler quantities, the way its code computes them (float32): the
    tables `udm audit` reads from any scheduler (`udm.audit.schedule.diffusers_tables`)."""
    from udm.audit.schedule import diffusers_tables as audit_tables

    tables, _ = audit_tables(diffusers_scheduler(name, T))
    return {k: v for k, v in tables.items() if k in TABLE_QUANTITIES}


def _learned_ours(module64, module32, T: int) -> dict[str, dict[str, np.ndarray]]:
    from torch.nn import functional as F

    from udm.torch_impl import noise_params as npm

    def quantities(module, dtype):
        t = torch.arange(T + 1, dtype=torch.float64) / T
        with torch.no_grad():
            omega = module(t.to(dtype))
        w_s, w_t = omega[:-1], omega[1:]
        ones = torch.ones(T, 1, dtype=dtype)
        return {
            "alpha_bar_t": npm.alpha_bar_from_omega(omega=w_t),
            "one_minus_alpha_bar_t": npm.one_minus_alpha_bar_from_omega(omega=w_t),
            # the scales of q_sample_from_omega and of the conversions' log_snr= form
            "sqrt_alpha_bar_t": torch.exp(0.5 * F.logsigmoid(-w_t)),
            "sqrt_one_minus_alpha_bar_t": torch.exp(0.5 * F.logsigmoid(w_t)),
            "snr": npm.snr_from_omega(omega=w_t),
            "log_snr": -w_t,
            "x_0_loss_weight": npm.x0_loss_weight_from_omega(omega_s=w_s, omega_t=w_t),
            "eps_loss_weight": npm.discrete_diffusion_loss(
                eps=ones, eps_hat=0 * ones, omega_s=w_s, omega_t=w_t, T=1
            ),
        }

    q64 = {k: _np(v) for k, v in quantities(module64, torch.float64).items()}
    q32 = {k: _np(v) for k, v in quantities(module32, torch.float32).items()}
    cast = {k: v.astype(np.float32).astype(np.float64) for k, v in q64.items()}
    return {"ours-f64": q64, "ours-f32": q32, "ours-f64->f32": cast}


# --- the runs -------------------------------------------------------------------------------


def _row(kind, schedule, T, quantity, impl, err, target=None, dtype="float32", note=""):
    row = {
        "kind": kind,
        "schedule": schedule,
        "T": T,
        "quantity": quantity,
        "impl": impl,
        "dtype": dtype,
        "max_rel": err["max_rel"],
        "max_ulps": err["max_ulps"],
        "worst_t": err["worst"] + 1,
    }
    if "max_ulps_scale" in err:
        row["max_ulps_scale"] = err["max_ulps_scale"]
    if target is not None:
        row["target_ulps"] = target
        row["ok"] = bool(err["max_ulps"] <= target)
    if note:
        row["note"] = note
    return row


def table_rows(name: str, T: int, peers: bool) -> list[dict]:
    rows = []
    truth = true_table(true_betas(name, T))
    split = {k: _split(v) for k, v in truth.items()}
    impls: dict[str, tuple[dict, type]] = {
        "ours-f32": (ours_tables(name, T, torch.float32), np.float32),
        "ours-f64": (ours_tables(name, T, torch.float64), np.float64),
        "numpy-f64->f32": (numpy_recipe_tables(name, T), np.float32),
    }
    if peers:
        impls["diffusers-f32"] = (diffusers_tables(name, T), np.float32)
    for impl, (tables, dtype) in impls.items():
        for q in TABLE_QUANTITIES:
            if q not in tables:
                continue
            lo = 1 if q in FROM_T2 else 0
            if lo >= T:
                continue
            hi_lo = (split[q][0][lo:], split[q][1][lo:])
            err = errors(tables[q][lo:], hi_lo, dtype)
            err["worst"] += lo
            target = TABLE_TARGET_ULPS if dtype is np.float32 else None
            rows.append(_row("table", name, T, q, impl, err, target, np.dtype(dtype).name))
    return rows


def learned_rows(T: int) -> list[dict]:
    m64 = _learned_module(torch.float64)
    m32 = _learned_module(torch.float32)
    ts = [mpmath.mpf(i) / T for i in range(T + 1)]
    truth = true_learned(true_omega(m64, ts))
    split = {k: _split(v) for k, v in truth.items()}
    rows = []
    for impl, tables in _learned_ours(m64, m32, T).items():
        dtype = np.float64 if impl == "ours-f64" else np.float32
        for q in LEARNED_QUANTITIES:
            err = errors(tables[q], split[q], dtype)
            target = TABLE_TARGET_ULPS if impl == "ours-f64->f32" else None
            note = "float32 network and float32 formulas end to end" if impl == "ours-f32" else ""
            rows.append(
                _row("table", "learned", T, q, impl, err, target, np.dtype(dtype).name, note)
            )
    return rows


# --- functions on float32 inputs -------------------------------------------------------------

# Each: (our torch call, exact formula on mpmath scalars, magnitude formula on float64 arrays).
# Arguments: x (x_t or x_0), p (the second data argument), sa = sqrt(alpha_bar),
# sm = sqrt(1 - alpha_bar), om = 1 - alpha_bar (mpmath exact for the float32 noise level).
_CONVERSIONS: dict[str, tuple[str, str, Callable, Callable]] = {
    # name: (function, pred keyword, exact(x, p, sa, sm, om), magnitude(...))
    "x_0_from_eps": (
        "x_0_from_eps",
        "eps_hat",
        lambda x, p, sa, sm, om: (x - sm * p) / sa,
        lambda x, p, sa, sm, om: (abs(x) + sm * abs(p)) / sa,
    ),
    "eps_from_x_0": (
        "eps_from_x_0",
        "x_0_hat",
        lambda x, p, sa, sm, om: (x - sa * p) / sm,
        lambda x, p, sa, sm, om: (abs(x) + sa * abs(p)) / sm,
    ),
    "x_0_from_score": (
        "x_0_from_score",
        "score_hat",
        lambda x, p, sa, sm, om: (x + om * p) / sa,
        lambda x, p, sa, sm, om: (abs(x) + om * abs(p)) / sa,
    ),
    "score_from_x_0": (
        "score_from_x_0",
        "x_0_hat",
        lambda x, p, sa, sm, om: (sa * p - x) / om,
        lambda x, p, sa, sm, om: (abs(x) + sa * abs(p)) / om,
    ),
    "score_from_eps": (
        "score_from_eps",
        "eps_hat",
        lambda x, p, sa, sm, om: -p / sm,
        lambda x, p, sa, sm, om: abs(p) / sm,
    ),
    "eps_from_score": (
        "eps_from_score",
        "score_hat",
        lambda x, p, sa, sm, om: -sm * p,
        lambda x, p, sa, sm, om: sm * abs(p),
    ),
    "x_0_from_v": (
        "x_0_from_v",
        "v_hat",
        lambda x, p, sa, sm, om: sa * x - sm * p,
        lambda x, p, sa, sm, om: sa * abs(x) + sm * abs(p),
    ),
    "eps_from_v": (
        "eps_from_v",
        "v_hat",
        lambda x, p, sa, sm, om: sm * x + sa * p,
        lambda x, p, sa, sm, om: sm * abs(x) + sa * abs(p),
    ),
    "v_from_x_0": (
        "v_from_x_0",
        "x_0_hat",
        lambda x, p, sa, sm, om: (sa * x - p) / sm,
        lambda x, p, sa, sm, om: (sa * abs(x) + abs(p)) / sm,
    ),
    "v_from_eps": (
        "v_from_eps",
        "eps_hat",
        lambda x, p, sa, sm, om: (p - sm * x) / sa,
        lambda x, p, sa, sm, om: (abs(p) + sm * abs(x)) / sa,
    ),
    "v_from_score": (
        "v_from_score",
        "score_hat",
        lambda x, p, sa, sm, om: -(sm / sa) * (x + p),
        lambda x, p, sa, sm, om: (sm / sa) * (abs(x) + abs(p)),
    ),
    "score_from_v": (
        "score_from_v",
        "v_hat",
        lambda x, p, sa, sm, om: -(x + (sa / sm) * p),
        lambda x, p, sa, sm, om: abs(x) + (sa / sm) * abs(p),
    ),
}
# arguments whose call needs 1 - alpha_bar > 0 (skip the points where float32 alpha_bar is 1)
_NEEDS_NOISE = {"eps_from_x_0", "score_from_x_0", "score_from_eps", "v_from_x_0", "score_from_v"}


def _exact(fn: Callable, *cols) -> list:
    with mpmath.workdps(DPS):
        return [fn(*args) for args in zip(*cols, strict=True)]


def _mp(a: np.ndarray) -> list:
    return [mpmath.mpf(float(v)) for v in a]


def function_rows(name: str, T: int, *, seed: int = 0) -> list[dict]:
    """float32 calls on float32 inputs vs the exact result for those inputs, one sample per t."""
    from udm.torch_impl import interpretations as it
    from udm.torch_impl import noise_params as npm
    from udm.torch_impl import vdm

    rows = []
    coef = vdm.make_schedule(name, T, dtype=torch.float32).coefficients(torch.float32)
    ab32, a32, abp32, ls32 = (
        coef[k] for k in ("alpha_bar_t", "alpha_t", "alpha_bar_prev", "log_snr")
    )
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(T, generator=gen, dtype=torch.float32)
    p = torch.randn(T, generator=gen, dtype=torch.float32)

    with mpmath.workdps(DPS):
        ab, a, abp = _mp(_np(ab32)), _mp(_np(a32)), _mp(_np(abp32))
        lam = _mp(_np(ls32))
        xs, ps = _mp(_np(x)), _mp(_np(p))
        # noise level given as alpha_bar_t: exact sqrt(ab), sqrt(1 - ab), 1 - ab
        by_ab = (
            [mpmath.sqrt(v) for v in ab],
            [mpmath.sqrt(1 - v) for v in ab],
            [1 - v for v in ab],
        )
        # given as log_snr: alpha_bar = sigmoid(lam)
        sig = [1 / (1 + mpmath.exp(-v)) for v in lam]
        sigm = [1 / (1 + mpmath.exp(v)) for v in lam]
        by_ls = ([mpmath.sqrt(v) for v in sig], [mpmath.sqrt(v) for v in sigm], sigm)

    def measure(quantity, got, exact, mag, mask=None, note=""):
        got = _np(got)
        hi, lo = _split(exact)
        mag = np.asarray(mag, dtype=np.float64)
        if mask is not None:
            got, hi, lo, mag = got[mask], hi[mask], lo[mask], mag[mask]
        err = errors(got, (hi, lo), np.float32, scale=mag)
        if mask is not None and err["max_ulps"] > 0:
            err["worst"] = int(np.flatnonzero(mask)[err["worst"]])
        rows.append(
            _row("function", name, T, quantity, "ours-f32", err, FUNCTION_TARGET_ULPS, note=note)
        )

    xf, pf = _np(x), _np(p)
    for mode, scales, kw in (
        ("alpha_bar_t", by_ab, {"alpha_bar_t": ab32}),
        ("log_snr", by_ls, {"log_snr": ls32}),
    ):
        sa, sm, om = scales
        saf, smf, omf = (np.array([float(v) for v in s]) for s in scales)
        mask = None
        if mode == "alpha_bar_t":
            mask = _np(ab32) < 1  # float32 alpha_bar_t = 1 leaves no noise to divide by
        for label, (fname, pred_kw, exact_fn, mag_fn) in _CONVERSIONS.items():
            fn = getattr(it, fname)
            args = {pred_kw: p}
            if fname not in ("score_from_eps", "eps_from_score"):
                args["x_t"] = x
            m = mask if fname in _NEEDS_NOISE else None
            if m is not None and not m.any():
                continue
            if m is not None:
                call = {k: v[torch.from_numpy(m)] for k, v in {**args, **kw}.items()}
                got = np.full(T, np.nan)
                got[m] = _np(fn(**call))
            else:
                got = _np(fn(**args, **kw))
            exact = _exact(exact_fn, xs, ps, sa, sm, om)
            measure(f"{label}({mode}=)", got, exact, mag_fn(xf, pf, saf, smf, omf), m)

    # q_sample, mu_q, var_q, snr and the loss weights on float32 table values
    measure(
        "q_sample(alpha_bar_t=)",
        vdm.q_sample(x_0=x, alpha_bar_t=ab32, eps=p),
        _exact(lambda u, v, s, m: s * u + m * v, xs, ps, by_ab[0], by_ab[1]),
        np.abs(xf) * _np(ab32) ** 0.5 + np.abs(pf) * np.sqrt(1 - _np(ab32)),
    )
    x_t = torch.randn(T, generator=gen, dtype=torch.float32)
    xts = _mp(_np(x_t))
    with mpmath.workdps(DPS):
        c_t = [mpmath.sqrt(ai) * (1 - bp) / (1 - b) for ai, b, bp in zip(a, ab, abp, strict=True)]
        c_0 = [mpmath.sqrt(bp) * (1 - ai) / (1 - b) for ai, b, bp in zip(a, ab, abp, strict=True)]
    nz = _np(ab32) < 1
    if nz.any():
        idx = torch.from_numpy(nz)
        got = np.full(T, np.nan)
        got[nz] = _np(
            vdm.mu_q(
                x_t=x_t[idx],
                x_0=x[idx],
                alpha_t=a32[idx],
                alpha_bar_t=ab32[idx],
                alpha_bar_prev=abp32[idx],
            )
        )
        exact = _exact(lambda ct, c0, u, v: ct * u + c0 * v, c_t, c_0, xts, xs)
        mag = np.array([float(ct) for ct in c_t]) * np.abs(_np(x_t)) + np.array(
            [float(c) for c in c_0]
        ) * np.abs(xf)
        measure("mu_q", got, exact, mag, nz)
    # var_q, snr and the weights (functions of the schedule's float32 alpha values)
    with mpmath.workdps(DPS):
        exact_var = [(1 - ai) * (1 - bp) / (1 - b) for ai, b, bp in zip(a, ab, abp, strict=True)]
    if nz.any():
        got = np.full(T, np.nan)
        got[nz] = _np(vdm.var_q(alpha_t=a32[idx], alpha_bar_t=ab32[idx], alpha_bar_prev=abp32[idx]))
        measure(
            "var_q(alpha_t, alpha_bar_t, alpha_bar_prev)",
            got,
            exact_var,
            np.abs(_np_list(exact_var)),
            nz,
        )
        got = np.full(T, np.nan)
        got[nz] = _np(npm.snr(alpha_bar_t=ab32[idx]))
        measure(
            "snr(alpha_bar_t=)",
            got,
            _exact(lambda b: b / (1 - b), ab),
            _np_list(_exact(lambda b: b / (1 - b), ab)),
            nz,
        )
    w_ok = (_np(abp32) < 1) & (_np(a32) < 1)
    if w_ok.any():
        wi = torch.from_numpy(w_ok)
        kw = {"alpha_t": a32[wi], "alpha_bar_prev": abp32[wi]}
        weights = {
            "x_0_loss_weight(alpha_t, alpha_bar_t, alpha_bar_prev)": (
                vdm.x_0_loss_weight(**kw, alpha_bar_t=ab32[wi]),
                lambda ai, b, bp: bp * (1 - ai) / (2 * (1 - bp) * (1 - b)),
            ),
            "eps_loss_weight(alpha_t, alpha_bar_prev)": (
                it.eps_loss_weight(**kw),
                lambda ai, bp: (1 - ai) / (2 * ai * (1 - bp)),
            ),
            "score_loss_weight(alpha_t, alpha_bar_prev)": (
                it.score_loss_weight(**kw),
                lambda ai, bp: (1 - ai) * (1 - ai * bp) / (2 * ai * (1 - bp)),
            ),
        }
        for label, (val, fn) in weights.items():
            got = np.full(T, np.nan)
            got[w_ok] = _np(val)
            # t = 1 (alpha_bar_prev = 1) is outside the weights' domain: masked
            with mpmath.workdps(DPS):
                exact = [
                    (fn(ai, b, bp) if "alpha_bar_t" in label else fn(ai, bp))
                    if ok
                    else mpmath.mpf(1)
                    for ai, b, bp, ok in zip(a, ab, abp, w_ok, strict=True)
                ]
            measure(label, got, exact, np.abs(_np_list(exact)), w_ok)
    return rows


def _np_list(values: list) -> np.ndarray:
    return np.array([float(v) for v in values])


# --- end to end: t -> table -> formula, ours vs diffusers' formulas -----------------------


def end_to_end_rows(name: str, T: int, peers: bool, *, seed: int = 1) -> list[dict]:
    from udm.torch_impl import interpretations as it
    from udm.torch_impl import vdm

    truth = true_table(true_betas(name, T))
    sched = vdm.make_schedule(name, T, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(T, 1, generator=gen)
    eps = torch.randn(T, 1, generator=gen)
    xt = torch.randn(T, 1, generator=gen)
    t = torch.arange(1, T + 1)
    x0s, epss, xts = _mp(_np(x0[:, 0])), _mp(_np(eps[:, 0])), _mp(_np(xt[:, 0]))
    sa, sm = truth["sqrt_alpha_bar_t"], truth["sqrt_one_minus_alpha_bar_t"]
    cases = {
        "q_sample": _exact(lambda s, m, u, v: s * u + m * v, sa, sm, x0s, epss),
        "x_0_from_eps": _exact(lambda s, m, u, v: (u - m * v) / s, sa, sm, xts, epss),
        "x_0_from_v": _exact(lambda s, m, u, v: s * u - m * v, sa, sm, xts, epss),
        "posterior_mean": _exact(
            lambda ct, c0, u, v: ct * u + c0 * v,
            truth["mu_q_coef_x_t"],
            truth["mu_q_coef_x_0"],
            xts,
            x0s,
        ),
    }
    ab32 = sched.coefficients(torch.float32)["alpha_bar_t"]
    ls32 = sched.coefficients(torch.float32)["log_snr"]
    ours = {
        "q_sample": sched.q_sample(x_0=x0, t=t, eps=eps),
        "x_0_from_eps": it.x_0_from_eps(x_t=xt, eps_hat=eps, log_snr=ls32[:, None]),
        "x_0_from_v": it.x_0_from_v(x_t=xt, v_hat=eps, log_snr=ls32[:, None]),
        "posterior_mean": sched.posterior_mean(x_t=xt, x_0=x0, t=t),
    }
    ours_ab = {
        "x_0_from_eps": it.x_0_from_eps(x_t=xt, eps_hat=eps, alpha_bar_t=ab32[:, None]),
        "x_0_from_v": it.x_0_from_v(x_t=xt, v_hat=eps, alpha_bar_t=ab32[:, None]),
    }
    impls = {"ours-f32": ours, "ours-f32 (alpha_bar_t=)": ours_ab}
    if peers:
        sch = diffusers_scheduler(name, T)
        acp = sch.alphas_cumprod
        idx = t - 1
        a_t = acp[idx][:, None]
        ab_prev = torch.cat([torch.ones(1), acp[:-1]])[idx][:, None]
        beta_prod, beta_prod_prev = 1 - a_t, 1 - ab_prev
        cur_alpha = a_t / ab_prev
        cur_beta = 1 - cur_alpha
        impls["diffusers-f32"] = {
            "q_sample": sch.add_noise(x0, eps, idx),
            # DDPMScheduler.step, prediction_type "epsilon" / "v_prediction"
            "x_0_from_eps": (xt - beta_prod**0.5 * eps) / a_t**0.5,
            "x_0_from_v": a_t**0.5 * xt - beta_prod**0.5 * eps,
            "posterior_mean": (ab_prev**0.5 * cur_beta / beta_prod) * x0
            + (cur_alpha**0.5 * beta_prod_prev / beta_prod) * xt,
        }
    rows = []
    for impl, values in impls.items():
        for q, got in values.items():
            err = errors(_np(got[:, 0]), _split(cases[q]), np.float32)
            rows.append(_row("end_to_end", name, T, q, impl, err))
    return rows


def run(
    Ts=(10, 1000, 4000), schedules=SCHEDULES, *, peers: bool | None = None, log=None
) -> list[dict]:
    """All accuracy rows for the schedules and step counts given."""
    if peers is None:
        peers = diffusers_available()
    rows = []
    for T in Ts:
        for name in schedules:
            if log:
                log(f"accuracy: {name} T={T}")
            if name == "learned":
                rows += learned_rows(T)
                continue
            rows += table_rows(name, T, peers)
            rows += function_rows(name, T)
            rows += end_to_end_rows(name, T, peers)
    return rows
