"""Conventions, inference grids and `step()` of a diffusers DDPM / DDIM scheduler, against
ours: x_0_hat from the prediction (eqs. (69), (115)-(116): `udm.torch_impl.interpretations`),
then our steps at the 50-digit schedule, in float64: the ancestral step through the posterior
of eqs. (84), (85), (94) (`udm.torch_impl.sampling.ancestral_step`, with iDDPM's interpolated
variance for learned_range) and DDIM's step (Song et al. 2021, not in the paper:
`udm.torch_impl.sampling.ddim_step`). No step formula is written here."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from udm.audit import truth
from udm.audit.schedule import Finding, _fresh
from udm.torch_impl import iddpm, vdm
from udm.torch_impl import interpretations as I
from udm.torch_impl import sampling as S

PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")
DDPM_VARIANCES = (
    "fixed_small",
    "fixed_small_log",
    "fixed_large",
    "fixed_large_log",
    "learned_range",
)
ELBO_VARIANCES = ("fixed_small", "fixed_small_log")
# A step is a formula difference when, run on the scheduler's own tables, it still differs
# from ours by more than float arithmetic can explain at that t: relative to the size of the
# result, FORMULA_FACTOR u (1 / (1 - alpha_bar_t / alpha_bar_prev) + 1 / (1 - alpha_bar_t)),
# u the unit roundoff (step() re-forms beta_t = 1 - alpha_bar_t / alpha_bar_prev and 1 -
# alpha_bar_t by subtraction, which cancel near t = 1), and at least 1e-5. A sign error or a
# missing square root moves the result by O(1) at mid-range t.
FORMULA_FACTOR = 32.0
FORMULA_FLOOR = 1e-5


def _threshold(ab_t: float, ab_s: float, u: float) -> float:
    with np.errstate(divide="ignore"):
        cond = 1 / max(1 - ab_t / ab_s, 1e-300) + 1 / max(1 - ab_t, 1e-300)
    return max(FORMULA_FLOOR, FORMULA_FACTOR * u * cond)


def is_class(obj, name: str) -> bool:
    """Whether obj is a `name` (diffusers class) or a subclass of one."""
    return any(c.__name__ == name for c in type(obj).__mro__)


def convention_findings(sch, config: dict, declared) -> list[Finding]:
    out = []
    vt = config.get("variance_type")
    if vt is not None and vt not in ELBO_VARIANCES:
        out.append(
            Finding(
                "convention",
                f"variance_type={vt!r}: the reverse-step variance is not var_q (eq. (85)); the "
                "ELBO's denoising KL with matched variances (eq. (92)) assumes fixed_small",
            )
        )
    if config.get("thresholding"):
        out.append(
            Finding(
                "convention",
                "thresholding=True: step() rescales x_0_hat by a per-sample quantile "
                f"(ratio {config.get('dynamic_thresholding_ratio')}), so the step is not the "
                "posterior mean of eq. (94); steps are audited with it off",
            )
        )
    elif config.get("clip_sample"):
        r = config.get("clip_sample_range", 1.0)
        out.append(
            Finding(
                "convention",
                f"clip_sample=True: step() clamps x_0_hat to [-{r:g}, {r:g}]; for predictions "
                "outside that range the step is not eq. (94)'s posterior mean; steps are "
                "audited with clipping off",
            )
        )
    if declared.zero_snr:
        pt = config.get("prediction_type", "epsilon")
        out.append(
            Finding(
                "convention",
                "rescale_betas_zero_snr=True: alpha_bar_T = 0 (zero terminal SNR): x_T is pure "
                "noise and x_0 cannot be recovered from eps at t = T (division by "
                "sqrt(alpha_bar_T) = 0)"
                + (
                    "; with prediction_type='epsilon' the first step is undefined: use v_prediction"
                    if pt == "epsilon"
                    else ""
                ),
                "warn" if pt == "epsilon" else "info",
            )
        )
    if hasattr(sch, "final_alpha_cumprod"):
        if not config.get("set_alpha_to_one", True):
            ab1 = float(sch.alphas_cumprod[0])
            out.append(
                Finding(
                    "convention",
                    "set_alpha_to_one=False: the last step lands on alpha_bar_1 = "
                    f"{ab1:.6g} (t = 1), not on alpha_bar_0 = 1: the output keeps noise of "
                    f"standard deviation sqrt(1 - alpha_bar_1) = {math.sqrt(1 - ab1):.3g}",
                )
            )
    return out


def _ddim_prev(sch, t: int) -> int:
    """The timestep whose alpha_bar DDIM's step() uses after t, observed from step() itself:
    prediction 'sample' = 1 at x_t = sqrt(alpha_bar_t) (so eps_hat = 0) returns
    sqrt(alpha_bar_prev); -1 stands for final_alpha_cumprod."""
    c = copy.deepcopy(sch)
    c.register_to_config(prediction_type="sample", clip_sample=False, thresholding=False)
    ab = c.alphas_cumprod.double()
    x_t = torch.ones(1) * float(ab[t]) ** 0.5
    out = c.step(torch.ones(1), t, x_t.to(c.alphas_cumprod.dtype), eta=0.0).prev_sample
    ab_prev = float(out[0]) ** 2
    table = np.append(ab.numpy(), float(c.final_alpha_cumprod))
    j = int(np.argmin(np.abs(table - ab_prev)))
    if j == ab.numel() or abs(table[-1] - ab_prev) <= abs(table[j] - ab_prev):
        return -1  # final_alpha_cumprod (equal to alphas_cumprod[0] when not set to one)
    return j


def grid_findings(sch, config: dict, k: int) -> list[Finding]:
    """The inference grid set_timesteps(k) builds, the timestep each step() lands on, and
    the grid asked for (k steps from t = T down to 0)."""
    T = int(config.get("num_train_timesteps", len(sch.alphas_cumprod)))
    if k < 1 or k > T:
        return [Finding("grid", f"--steps {k} outside 1..{T}: grid not checked", "info")]
    c = _fresh(sch)
    try:
        c.set_timesteps(k)
    except Exception as err:
        return [Finding("grid", f"set_timesteps({k}) failed: {str(err).splitlines()[0]}", "warn")]
    ts = [int(v) for v in c.timesteps]
    spacing = config.get("timestep_spacing", "leading")
    offset = config.get("steps_offset", 0)
    out = []
    if is_class(c, "DDIMScheduler"):
        prevs = [_ddim_prev(c, t) for t in ts]
    elif hasattr(c, "previous_timestep"):
        prevs = [int(c.previous_timestep(t)) for t in ts]
    else:
        prevs = None  # another sampler: its steps are not observed, only its grid
    nxt = [*ts[1:], -1]
    missed = [(t, p, n) for t, p, n in zip(ts, prevs, nxt, strict=True) if p != n] if prevs else []
    head = f"timestep_spacing={spacing!r}, steps_offset={offset}, {k} steps"
    shown = ", ".join(str(t) for t in ts[:4]) + ", ..., " + ", ".join(str(t) for t in ts[-3:])
    out.append(Finding("grid", f"{head}: timesteps (0-based) {shown}", "info"))
    if missed:
        ex = "; ".join(
            f"from {t} to {p} while the next step starts at {n}" for t, p, n in missed[:3]
        )
        out.append(
            Finding(
                "grid",
                f"{head}: {len(missed)} of the {len(ts) - 1} steps between grid points land on "
                f"a timestep that is not the next grid point ({ex}): step() moves by a fixed "
                f"stride T // k = {T // k} while the grid is not evenly spaced by it",
            )
        )
    if ts[0] != T - 1:
        ab = float(c.alphas_cumprod[ts[0]])
        out.append(
            Finding(
                "grid",
                f"{head}: sampling starts at timestep {ts[0]} (t = {ts[0] + 1} of T = {T}), "
                f"where alpha_bar = {ab:.3g} (SNR {ab / (1 - ab):.3g}), but x starts as N(0, I), "
                f"which is the marginal at t = T only; 'trailing' spacing starts at t = T",
            )
        )
    return out


# --- step() against ours ----------------------------------------------------------------


def _truth_ab(declared) -> np.ndarray:
    return truth.split(truth.true_table(declared.betas(), ("alpha_bar_t",))["alpha_bar_t"])[0]


def _x0_eps(pt: str, model_output, x_t, ab):
    """x_0_hat and eps_hat from a prediction of type pt, at alpha_bar_t = ab (float64)."""
    if pt == "epsilon":
        return I.x_0_from_eps(x_t=x_t, eps_hat=model_output, alpha_bar_t=ab), model_output
    if pt == "sample":
        return model_output, I.eps_from_x_0(x_t=x_t, x_0_hat=model_output, alpha_bar_t=ab)
    return (
        I.x_0_from_v(x_t=x_t, v_hat=model_output, alpha_bar_t=ab),
        I.eps_from_v(x_t=x_t, v_hat=model_output, alpha_bar_t=ab),
    )


def _log(level: float) -> torch.Tensor:
    return torch.tensor(math.log(level), dtype=torch.float64)


def _ours_ddpm(pt, vt, model_output, x_t, i, ab_table, z, var_pred=None):
    """Our ancestral step from diffusers timestep i (t = i + 1) to i - 1, float64: the
    posterior of eqs. (84), (85) (`udm.torch_impl.sampling.ancestral_step`), with iDDPM's
    interpolated variance (iddpm.15) for learned_range."""
    lab_t, lab_s = _log(ab_table[i]), _log(ab_table[i - 1]) if i > 0 else _log(1.0)
    x0, _ = _x0_eps(pt, model_output, x_t, torch.tensor(float(ab_table[i]), dtype=torch.float64))
    levels = {"x_t": x_t, "x_0_hat": x0, "log_alpha_bar_t": lab_t, "log_alpha_bar_s": lab_s}
    if i == 0:
        return S.ancestral_step(**levels)  # the last step: the mean
    if vt != "learned_range":
        variance = "small" if vt in ("fixed_small", "fixed_small_log") else "large"
        return S.ancestral_step(**levels, noise=z, variance=variance)
    beta = -torch.expm1(lab_t - lab_s)  # the step's beta_t = 1 - alpha_bar_t / alpha_bar_{t-1}
    var_q = vdm.posterior_coefficients(log_alpha_bar_t=lab_t, log_alpha_bar_prev=lab_s)["var_q"]
    var = iddpm.interpolated_variance(v_interp=(var_pred + 1) / 2, beta_t=beta, var_q=var_q)
    return S.ancestral_step(**levels) + var.sqrt() * z


def _ours_ddim(pt, eta, model_output, x_t, ab_t, ab_s, z):
    """Our DDIM step (ddim.12, sigma_t(eta) of ddim.16: `udm.torch_impl.sampling.ddim_step`)."""
    x0, eps = _x0_eps(pt, model_output, x_t, torch.tensor(ab_t, dtype=torch.float64))
    levels = {"log_alpha_bar_t": _log(ab_t), "log_alpha_bar_s": _log(ab_s)}
    noise = z if eta > 0 else None
    return S.ddim_step(x_0_hat=x0, eps_hat=eps, **levels, eta=eta, noise=noise)


def _pick_timesteps(T: int, rng: np.random.Generator) -> list[int]:
    fixed = {0, 1, 2, 9, T // 2, T - 2, T - 1}
    fixed |= set(rng.integers(0, T, 5).tolist())
    return sorted(i for i in fixed if 0 <= i < T)


def audit_steps(sch, declared, k: int, *, seed: int = 0) -> tuple[list[dict], list[Finding]]:
    """The scheduler's step() on seeded random x_t and model outputs, for each prediction
    type (DDPM: each variance type; DDIM: eta 0 and 1), against ours at the 50-digit schedule
    and against ours on the scheduler's own (float32) alphas_cumprod."""
    name = type(sch).__name__
    is_ddim = is_class(sch, "DDIMScheduler")
    T = int(sch.alphas_cumprod.numel())
    dtype = sch.alphas_cumprod.dtype
    ab_true = _truth_ab(declared)
    ab_user = sch.alphas_cumprod.double().numpy()
    rng = np.random.default_rng(seed)
    shape = (4, 3, 4, 4)
    gen = torch.Generator().manual_seed(seed)
    x_t = torch.randn(shape, generator=gen, dtype=dtype)
    model_out = torch.randn(shape, generator=gen, dtype=dtype)
    rows, findings = [], []
    cases = []
    user_pt = sch.config.get("prediction_type", "epsilon")
    user_vt = sch.config.get("variance_type", "fixed_small")
    if is_ddim:
        for pt in PREDICTION_TYPES:
            for eta in (0.0, 1.0):
                cases.append((pt, eta))
    else:
        for pt in PREDICTION_TYPES:
            for vt in DDPM_VARIANCES:
                cases.append((pt, vt))
    for pt, extra in cases:
        c = copy.deepcopy(sch)
        cfg = {"prediction_type": pt, "clip_sample": False, "thresholding": False}
        if not is_ddim:
            cfg["variance_type"] = extra
        c.register_to_config(**cfg)
        if not is_ddim:
            c.variance_type = extra
            c = _fresh(c)
            times = _pick_timesteps(T, rng)
        else:
            c = _fresh(c)
            c.set_timesteps(k)
            times = [int(v) for v in c.timesteps]
            times = sorted({times[0], times[1], times[len(times) // 2], times[-2], times[-1]})
        worst = (0.0, 0.0, 0.0, -1)  # abs diff vs truth, rel, rel vs own tables, timestep
        formula = None  # (rel vs own tables, threshold, timestep)
        nan_at = None
        u = float(torch.finfo(dtype).eps) / 2
        for i in times:
            if ab_true[i] == 0 or ab_user[i] == 0:
                continue  # zero terminal SNR at t = T: no signal, conversions degenerate
            seed_i = seed * 100_003 + i
            mo = model_out
            var_pred = None
            if extra == "learned_range":
                var_pred = (
                    torch.rand(
                        shape, generator=torch.Generator().manual_seed(seed_i + 7), dtype=dtype
                    )
                    * 2
                    - 1
                )
                mo = torch.cat([model_out, var_pred], dim=1)
            kw = {"generator": torch.Generator().manual_seed(seed_i)}
            if is_ddim:
                kw["eta"] = extra
                prev = _ddim_prev(c, i)
            with torch.no_grad():
                got = c.step(mo, i, x_t, **kw).prev_sample.double()
            z = torch.randn(
                shape, generator=torch.Generator().manual_seed(seed_i), dtype=dtype
            ).double()
            x64, m64 = x_t.double(), model_out.double()
            vp = var_pred.double() if var_pred is not None else None
            if is_ddim:
                final = float(c.final_alpha_cumprod)
                s_true = ab_true[prev] if prev >= 0 else (1.0 if final == 1.0 else ab_true[0])
                s_user = ab_user[prev] if prev >= 0 else final
                want = _ours_ddim(pt, extra, m64, x64, ab_true[i], s_true, z)
                own = _ours_ddim(pt, extra, m64, x64, ab_user[i], s_user, z)
            else:
                want = _ours_ddpm(pt, extra, m64, x64, i, ab_true, z, vp)
                own = _ours_ddpm(pt, extra, m64, x64, i, ab_user, z, vp)
            if not torch.isfinite(got).all():
                nan_at = i if nan_at is None else nan_at
                continue
            scale = float(want.abs().max()) or 1.0
            d = float((got - want).abs().max())
            d_own = float((got - own).abs().max()) / (float(own.abs().max()) or 1.0)
            if d / scale > worst[1]:
                worst = (d, d / scale, d_own, i)
            if is_ddim:
                ab_s = s_true
            else:
                ab_s = ab_true[i - 1] if i > 0 else 1.0
            thr = _threshold(float(ab_true[i]), float(ab_s), u)
            if d_own > thr and (formula is None or d_own / thr > formula[0] / formula[1]):
                formula = (d_own, thr, i)
        label = f"{name} {pt}, " + (f"eta {extra:g}" if is_ddim else extra)
        d, rel, rel_own, i = worst
        used = pt == user_pt and (is_ddim or extra == user_vt)
        severity = "fail" if used else "warn"
        if nan_at is not None:
            cause = f"NaN/inf at timestep {nan_at}"
            findings.append(
                Finding(
                    "step",
                    f"{label}: step() returns NaN or inf at timestep {nan_at}"
                    + (
                        " (it takes the square root of the log-variance log beta_t < 0)"
                        if extra == "fixed_large_log"
                        else ""
                    ),
                    severity,
                )
            )
        elif formula is not None:
            f_rel, f_thr, f_i = formula
            cause = f"formula (t = {f_i + 1}): {f_rel:.2g} on its own tables > {f_thr:.2g}"
            findings.append(
                Finding(
                    "step",
                    f"{label}: step() differs from ours at timestep {f_i} (t = {f_i + 1}) by "
                    f"{f_rel:.2g} relative even with its own alphas_cumprod (rounding allows "
                    f"{f_thr:.2g}): a formula difference (a sign, a missing square root, "
                    "another variance), not rounding",
                    severity,
                )
            )
        else:
            cause = (
                f"rounding: its {str(dtype).replace('torch.', '')} tables and arithmetic (t = {i + 1})"
                if rel > 0
                else "exact"
            )
        rows.append(
            {
                "case": label,
                "max_abs_diff": d,
                "max_rel_diff": rel,
                "rel_diff_own_tables": rel_own,
                "worst_t": i + 1,
                "cause": cause,
            }
        )
    return rows, findings
