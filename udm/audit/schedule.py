"""Audit a noise schedule: a diffusers scheduler, its config JSON, or plain arrays.

Every table the user's code holds or derives is compared with the correctly rounded 50-digit
value of the *same declared schedule* (`udm.audit.truth`), in ulps of the user's dtype, with
the worst time step t (the paper's 1-based t; diffusers' timestep i is t = i + 1). Each
error is classified:

* ``rounding``: within 1 ulp: as good as a float64 computation rounded once;
* ``precision``: larger, but inside what arithmetic in the user's dtype can produce (a
  budget of 8 u (t + max 1 / alpha_s + 1 / beta_t + 1 / (1 - alpha_bar_t) + 1 / (1 -
  alpha_bar_{t-1})) relative, u the unit roundoff: the cumulative product over t steps,
  1 - alpha_bar_t and beta_t = 1 - alpha_bar_t / alpha_bar_{t-1} formed by subtraction);
* ``formula``: larger than that budget: another schedule, an index shift, a wrong end point,
  a rounded table. Always a failure.

The exit status a CI job reads (`Report.passed`): every coefficient within `max_ulps`
(default `DEFAULT_MAX_ULPS`) and no formula difference. Conventions (0-based timesteps, the
inference grid, set_alpha_to_one, the clamped variance at t = 1, zero terminal SNR, clipping)
are named as warnings; they do not fail the audit by themselves.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from udm.audit import truth

# 4 ulps: a table computed in float64 and rounded once is within 0.5 ulp; a short float
# chain (a square root or quotient of correctly rounded values) stays within 2-4 ulps. More
# than 4 means error that grows with t (a float32 cumulative product) or cancellation
# (1 - alpha_bar_t near t = 1): fixable by computing in float64 and rounding once.
DEFAULT_MAX_ULPS = 4.0
PRECISION_BUDGET = 8.0  # the factor of the precision budget (see the module docstring)
FROM_T2 = ("log_var_q", "x_0_loss_weight", "eps_loss_weight", "score_loss_weight")
LOG_QUANTITIES = ("log_var_q", "log_snr")
_CONFIG_NAMES = {
    "linear": "linear",
    "scaled_linear": "scaled-linear",
    "squaredcos_cap_v2": "cosine",
    "sigmoid": "sigmoid",
}
_DIFFUSERS_NAMES = {v: k for k, v in _CONFIG_NAMES.items()}
EXPECT_NAMES = ("linear", "scaled-linear", "cosine", "sigmoid")
STEP_CLASSES = ("DDPMScheduler", "DDIMScheduler")


class AuditInputError(ValueError):
    """Bad input (unreadable file, unknown schedule, NaN, non-monotone table): exit 2."""


@dataclass
class Finding:
    kind: str  # precision | formula | indexing | convention | grid | step | schedule | info
    message: str
    severity: str = "warn"  # fail | warn | info

    def to_json(self) -> dict:
        return {"kind": self.kind, "message": self.message, "severity": self.severity}


@dataclass
class Coefficient:
    name: str
    dtype: str
    max_ulps: float
    worst_t: int
    max_rel: float
    classification: str  # rounding | precision | formula
    ulps: np.ndarray = field(repr=False)  # per t (nan where not compared)
    budget_ratio: float = 0.0  # max over t of relative error / precision budget

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "max_ulps": _finite(self.max_ulps),
            "worst_t": self.worst_t,
            "max_rel": _finite(self.max_rel),
            "classification": self.classification,
        }


def _finite(v: float):
    return v if math.isfinite(v) else str(v)


@dataclass
class Declared:
    """The schedule a source declares: a published recipe with its parameters."""

    name: str  # linear | scaled-linear | cosine | sigmoid | trained
    T: int
    beta_start: float | None = None
    beta_end: float | None = None
    zero_snr: bool = False
    trained_betas: list | None = None
    _betas: list | None = field(default=None, repr=False)

    def describe(self) -> str:
        if self.name == "trained":
            text = f"trained_betas (T = {self.T})"
        elif self.name == "cosine":
            text = f"cosine (squaredcos_cap_v2, s = 0.008, max_beta = 0.999, T = {self.T})"
        else:
            lo, hi = truth.DEFAULT_ENDS[self.name]
            lo = lo if self.beta_start is None else repr(float(self.beta_start))
            hi = hi if self.beta_end is None else repr(float(self.beta_end))
            text = f"{self.name} (beta_start = {lo}, beta_end = {hi}, T = {self.T})"
        return text + (" rescaled to zero terminal SNR" if self.zero_snr else "")

    def betas(self) -> list:
        if self._betas is None:
            if self.name == "trained":
                betas = [truth.decimal(v) for v in self.trained_betas]
            else:
                betas = truth.true_betas(self.name, self.T, self.beta_start, self.beta_end)
            self._betas = truth.rescale_zero_terminal_snr(betas) if self.zero_snr else betas
        return self._betas


@dataclass
class Report:
    source: str
    declared: str
    T: int
    max_ulps: float
    coefficients: list[Coefficient] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not any(f.severity == "fail" for f in self.findings)

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "declared": self.declared,
            "T": self.T,
            "max_ulps": self.max_ulps,
            "coefficients": [c.to_json() for c in self.coefficients],
            "findings": [f.to_json() for f in self.findings],
            "steps": self.steps,
            "passed": self.passed,
        }

    def coefficient(self, name: str) -> Coefficient:
        for c in self.coefficients:
            if c.name == name:
                return c
        raise KeyError(name)

    def render(self) -> str:
        lines = [
            f"udm audit: {self.source}",
            f"declared schedule: {self.declared}",
            f"t is the paper's 1-based step (diffusers' timestep i is t = i + 1); "
            f"ulps of each table's dtype; tolerance {self.max_ulps:g} ulps",
            "",
            f"{'coefficient':<28}{'dtype':>9}{'max ulps':>12}{'worst t':>9}{'max rel':>11}  class",
        ]
        for c in self.coefficients:
            flag = "!" if c.classification == "formula" or c.max_ulps > self.max_ulps else " "
            lines.append(
                f"{c.name:<28}{c.dtype:>9}{_fmt(c.max_ulps):>11}{flag}{c.worst_t:>9}"
                f"{c.max_rel:>11.2g}  {c.classification}"
            )
        if self.steps:
            lines += ["", f"{'step()':<44}{'max |diff|':>12}{'rel':>10}  cause"]
            for s in self.steps:
                lines.append(
                    f"{s['case']:<44}{s['max_abs_diff']:>12.3g}{s['max_rel_diff']:>10.2g}  "
                    f"{s['cause']}"
                )
        if self.findings:
            lines += ["", "findings:"]
            for f in self.findings:
                lines.append(f"  [{f.severity} {f.kind}] {f.message}")
        lines += ["", "PASSED" if self.passed else "FAILED"]
        return "\n".join(lines)


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    return f"{v:.3g}" if v < 1e5 else f"{v:.2e}"


# --- the tables of a diffusers scheduler --------------------------------------------------


def _np(x) -> np.ndarray:
    import torch

    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _fresh(sch):
    """A copy of a scheduler without an inference grid (step t goes to t - 1)."""
    c = copy.deepcopy(sch)
    for attr, value in (("num_inference_steps", None), ("custom_timesteps", False)):
        if hasattr(c, attr):
            setattr(c, attr, value)
    return c


def _add_noise_scales(sch, ab, idx, notes: list | None):
    """(sqrt(alpha_bar_t), sqrt(1 - alpha_bar_t)) as the scheduler's `add_noise` applies
    them, or None when its add_noise leaves x_0 unscaled (k-diffusion schedulers add sigma_t
    eps to x_0; named in `notes`)."""
    import torch

    if not hasattr(sch, "add_noise"):
        return None
    T = ab.shape[0]
    ones, zeros = torch.ones(T, dtype=ab.dtype), torch.zeros(T, dtype=ab.dtype)
    try:
        c0 = sch.add_noise(ones, zeros, idx)
        c1 = sch.add_noise(zeros, ones, idx)
    except Exception as err:
        if notes is not None:
            notes.append(
                Finding(
                    "info", f"add_noise could not be probed ({str(err).splitlines()[0]})", "info"
                )
            )
        return None
    if float((c0.double() - 1).abs().max()) > 1e-6:
        return c0, c1  # the DDPM form (or a broken one: then the audit measures it)
    if notes is not None:
        notes.append(
            Finding(
                "convention",
                f"{type(sch).__name__}.add_noise computes x_0 + sigma_t eps, sigma_t = "
                "sqrt((1 - alpha_bar_t) / alpha_bar_t): the variance-exploding form of the same "
                "schedule (the model sees x_t scaled by scale_model_input); the square-root "
                "tables are taken from alphas_cumprod as the DDPM formulas form them",
                "info",
            )
        )
    return None


def diffusers_tables(sch, notes: list | None = None) -> tuple[dict[str, np.ndarray], str]:
    """Every schedule table a diffusers scheduler holds or derives, the way its code does
    (its own arrays, `add_noise`, `_get_variance`, `DDPMScheduler.step`'s coefficients,
    `training_utils.compute_snr`), as float64 arrays of its values, and their dtype.
    Conventions met on the way (another add_noise form) go to `notes`."""
    import torch

    ab = sch.alphas_cumprod
    dtype = str(ab.dtype).replace("torch.", "")
    T = ab.shape[0]
    idx = torch.arange(T)
    one = torch.ones((), dtype=ab.dtype)
    abp = torch.cat([one[None], ab[:-1]])
    out: dict[str, torch.Tensor] = {
        "beta_t": sch.betas,
        "alpha_t": sch.alphas,
        "alpha_bar_t": ab,
        "alpha_bar_prev": abp,
        "one_minus_alpha_bar_t": 1 - ab,  # beta_prod_t of step()
    }
    with torch.no_grad():
        sq = _add_noise_scales(sch, ab, idx, notes)
        if sq is not None:
            out["sqrt_alpha_bar_t"], out["sqrt_one_minus_alpha_bar_t"] = sq
        else:
            out["sqrt_alpha_bar_t"], out["sqrt_one_minus_alpha_bar_t"] = ab**0.5, (1 - ab) ** 0.5
        fresh = _fresh(sch)
        var = None
        if any(c.__name__ == "DDIMScheduler" for c in type(sch).__mro__):
            try:
                var = torch.stack([fresh._get_variance(i, i - 1) for i in range(T)])
            except Exception:
                var = None
        elif hasattr(sch, "_get_variance"):
            try:
                var = torch.stack(
                    [fresh._get_variance(i, variance_type="fixed_small") for i in range(T)]
                )
            except Exception:
                var = None
        cur_beta = 1 - ab / abp  # step()'s current_beta_t
        if var is None:
            var = (1 - abp) / (1 - ab) * cur_beta
        out["var_q"] = var
        out["log_var_q"] = torch.log(var)  # variance_type="fixed_small_log"
        try:
            from diffusers.training_utils import compute_snr

            snr = compute_snr(fresh, idx)
        except Exception:
            snr = (ab**0.5 / (1 - ab) ** 0.5) ** 2
        out["snr"] = snr
        out["log_snr"] = torch.log(snr)
        beta_prod, beta_prod_prev = 1 - ab, 1 - abp
        out["mu_q_coef_x_t"] = (1 - cur_beta) ** 0.5 * beta_prod_prev / beta_prod
        out["mu_q_coef_x_0"] = abp**0.5 * cur_beta / beta_prod
        snr_prev = torch.cat([torch.full((1,), math.inf, dtype=snr.dtype), snr[:-1]])
        out["x_0_loss_weight"] = 0.5 * (snr_prev - snr)
        out["eps_loss_weight"] = sch.betas**2 / (2 * var * sch.alphas * beta_prod)
        out["score_loss_weight"] = out["eps_loss_weight"] * beta_prod
    return {k: _np(v) for k, v in out.items()}, dtype


def declared_from_config(config: dict) -> Declared:
    T = config.get("num_train_timesteps", 1000)
    if isinstance(T, bool) or not isinstance(T, int) or T < 2:
        raise AuditInputError(f"num_train_timesteps must be an integer >= 2, got {T!r}")
    zero = bool(config.get("rescale_betas_zero_snr", False))
    trained = config.get("trained_betas")
    if trained is not None:
        return Declared("trained", len(trained), trained_betas=list(trained), zero_snr=zero)
    sched = config.get("beta_schedule", "linear")
    if sched not in _CONFIG_NAMES:
        raise AuditInputError(
            f"beta_schedule {sched!r} is not one the audit knows; valid: {', '.join(_CONFIG_NAMES)}"
        )
    name = _CONFIG_NAMES[sched]
    ends = {}
    if name != "cosine":
        for key in ("beta_start", "beta_end"):
            v = config.get(key, 0.0001 if key == "beta_start" else 0.02)
            if not isinstance(v, int | float) or not 0 < v < 1:
                raise AuditInputError(f"{key} must be a number in (0, 1), got {v!r}")
            ends[key] = float(v)
    return Declared(name, T, zero_snr=zero, **ends)


# --- measuring ----------------------------------------------------------------------------


def _budget(tt: dict[str, np.ndarray], u: float) -> np.ndarray:
    """Relative error float arithmetic with unit roundoff u can produce at each t."""
    T = tt["beta_t"].size
    t = np.arange(1, T + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        inv_alpha = np.maximum.accumulate(1 / np.abs(tt["alpha_t"]))
        om_prev = 1 - tt["alpha_bar_prev"]
        terms = (
            t
            + inv_alpha
            + 1 / np.abs(tt["beta_t"])
            + 1 / np.abs(tt["one_minus_alpha_bar_t"])
            + np.where(om_prev > 0, 1 / np.where(om_prev > 0, om_prev, 1), 0.0)
        )
    return PRECISION_BUDGET * u * terms


def measure(
    name: str,
    got: np.ndarray,
    want: tuple[np.ndarray, np.ndarray],
    dtype: np.dtype,
    budget: np.ndarray,
    findings: list[Finding],
) -> Coefficient:
    """One coefficient against the truth: ulps, worst t, class (entries where the truth is
    0 or infinite are set aside and named as convention findings when they differ)."""
    T = got.size
    hi = want[0]
    start = 1 if name in FROM_T2 else 0
    mask = np.zeros(T, dtype=bool)
    mask[start:] = True
    special = mask & ((hi == 0) | ~np.isfinite(hi))
    for i in np.flatnonzero(special):
        if got[i] != hi[i] and not (np.isnan(got[i]) and np.isnan(hi[i])):
            findings.append(
                Finding(
                    "convention",
                    f"{name} at t = {i + 1} is {got[i]:.6g} where the declared schedule has "
                    f"exactly {hi[i]:g}" + (" (a clamp)" if hi[i] == 0 and got[i] > 0 else ""),
                )
            )
    mask &= ~special
    u = np.full(T, np.nan)
    np_dtype = np.dtype(dtype).type
    u[mask] = truth.ulps(got[mask], (hi[mask], want[1][mask]), np_dtype)
    err = truth.abs_error(got, want)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = err / (1.0 if name in LOG_QUANTITIES else np.abs(hi))
        ratio = np.where(mask, rel / budget, 0.0)
        rel = np.where(mask, rel, 0.0)
    if mask.any():
        worst = int(np.nanargmax(u))
        max_ulps = float(u[worst])
    else:
        worst, max_ulps = 0, 0.0
    ratio_max = float(np.nanmax(ratio)) if ratio.size else 0.0
    if max_ulps <= 1.0:
        cls = "rounding"
    elif ratio_max <= 1.0:
        cls = "precision"
    else:
        cls = "formula"
    return Coefficient(
        name,
        np.dtype(dtype).name,
        max_ulps,
        worst + 1,
        float(np.nanmax(rel)) if rel.size else 0.0,
        cls,
        u,
        ratio_max,
    )


_CAUSES = {
    "alpha_bar_t": "the cumulative product of alpha_t accumulates one rounding per step",
    "alpha_bar_prev": "the cumulative product of alpha_t accumulates one rounding per step",
    "sqrt_alpha_bar_t": "the square root inherits the cumulative product's error",
}


def _cause(c: Coefficient, tt: dict[str, np.ndarray]) -> str:
    om = tt["one_minus_alpha_bar_t"][c.worst_t - 1]
    if c.name in _CAUSES:
        return _CAUSES[c.name]
    if om < 0.1:
        return (
            f"1 - alpha_bar_t (= {om:.3g} at t = {c.worst_t}) formed by subtraction cancels "
            "where alpha_bar_t is near 1"
        )
    return "rounding of the arithmetic in this dtype, amplified by the formula's conditioning"


def _classify_findings(
    coefs: list[Coefficient], tt, declared: Declared, max_ulps: float, findings: list
) -> None:
    for c in coefs:
        if c.classification == "formula":
            findings.append(
                Finding(
                    "formula",
                    f"{c.name} differs from the declared {declared.name} schedule by up to "
                    f"{c.max_rel:.3g} relative ({_fmt(c.max_ulps)} {c.dtype} ulps, worst t = "
                    f"{c.worst_t}): {c.budget_ratio:.3g} times what {c.dtype} arithmetic can "
                    "explain: another formula, schedule or index, not rounding",
                    "fail",
                )
            )
        elif c.max_ulps > max_ulps:
            findings.append(
                Finding(
                    "precision",
                    f"{c.name}: {_fmt(c.max_ulps)} {c.dtype} ulps at t = {c.worst_t} (relative "
                    f"{c.max_rel:.2g}) > {max_ulps:g}: {_cause(c, tt)}; compute in float64 and "
                    "round once",
                    "fail",
                )
            )


# --- array sources ------------------------------------------------------------------------

_TABLE_ALIASES = {
    "beta_t": "beta_t",
    "betas": "beta_t",
    "alpha_t": "alpha_t",
    "alphas": "alpha_t",
    "alpha_bar_t": "alpha_bar_t",
    "alphas_cumprod": "alpha_bar_t",
}


def _check_values(name: str, v: np.ndarray, source: str) -> None:
    if v.ndim != 1 or v.size < 2:
        raise AuditInputError(
            f"{source}: {name} must be a 1-D array of >= 2 values, got shape {v.shape}"
        )
    if not np.all(np.isfinite(v)):
        bad = int(np.flatnonzero(~np.isfinite(v))[0])
        raise AuditInputError(
            f"{source}: {name} holds NaN or inf (entry {bad}); valid: finite values in [0, 1]"
        )
    if np.any(v < 0) or np.any(v > 1):
        raise AuditInputError(
            f"{source}: {name} must lie in [0, 1]; got values in [{v.min():.4g}, {v.max():.4g}]"
        )


def _guess_table(v: np.ndarray) -> str:
    if v[0] > 0.5:
        return "alpha_bar_t" if v[-1] < 0.5 else "alpha_t"
    return "beta_t"


def read_array(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".npy":
            v = np.load(path, allow_pickle=False)
        else:
            v = np.loadtxt(path, dtype=np.float64, ndmin=1)
    except (OSError, ValueError) as err:
        raise AuditInputError(f"{path}: cannot read an array ({str(err).splitlines()[0]})") from err
    if v.dtype.kind != "f":
        if v.dtype.kind in "iu":
            v = v.astype(np.float64)
        else:
            raise AuditInputError(f"{path}: need a float array, got dtype {v.dtype}")
    return np.squeeze(v) if v.ndim > 1 else v


def _tables_from_array(v: np.ndarray, table: str, source: str, findings: list, T=None) -> dict:
    """The user's table (possibly 1-based) as {name: values}; checks monotonicity.

    1-based: entry 0 is exactly alpha_bar_0 = 1 (or beta_0 = 0) and, when --T is given, the
    array has T + 1 entries. A half-precision table is taken as 0-based unless --T says
    otherwise (its alpha_bar_1 often rounds to 1)."""
    _check_values(table, v, source)
    first = {"beta_t": 0.0, "alpha_t": 1.0, "alpha_bar_t": 1.0}[table]
    half = v.dtype.itemsize <= 2
    if v[0] == first and (v.size == T + 1 if T is not None else not half):
        findings.append(
            Finding(
                "indexing",
                f"1-based: entry 0 holds {table.replace('_t', '_0')} = {first:g}; entries "
                f"1..{v.size - 1} are audited as t = 1..{v.size - 1}",
                "info",
            )
        )
        v = v[1:]
    else:
        findings.append(
            Finding(
                "indexing",
                f"0-based: entry i is the paper's time step t = i + 1 (T = {v.size})",
                "info",
            )
        )
    if table == "alpha_bar_t":
        step = np.diff(v.astype(np.float64))
        if np.any(step > 0):  # ties are rounding (a low-precision table), measured below
            bad = int(np.flatnonzero(step > 0)[0]) + 2
            raise AuditInputError(
                f"{source}: alphas_cumprod must decrease in t; it increases at t = {bad}"
            )
        if v[-1] < 0:
            raise AuditInputError(f"{source}: alphas_cumprod must lie in [0, 1]")
    return {table: v}


def _closest(table: str, v: np.ndarray, candidates: list[Declared]) -> tuple[Declared, float]:
    best, best_err = None, math.inf
    for d in candidates:
        try:
            ref = truth.split(truth.true_table(d.betas(), (table,))[table])
        except (ValueError, ZeroDivisionError):
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            e = float(np.nanmax(truth.abs_error(v, ref) / np.abs(ref[0])))
        if e < best_err:
            best, best_err = d, e
    return best, best_err


def _shift_finding(name, got, declared: Declared, err_now: float) -> Finding | None:
    ref_all = truth.split(truth.true_table(declared.betas(), (name,))[name])[0]
    for shift, words in ((1, "t + 1"), (-1, "t - 1")):
        if shift > 0:
            a, b = got[:-1], ref_all[1:]
        else:
            a, b = got[1:], ref_all[:-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            e = float(np.nanmax(np.abs(a - b) / np.abs(b)))
        if e < 1e-3 * err_now or e < 1e-6:
            return Finding(
                "indexing",
                f"{name} is shifted by one step: your value at t is the declared value at "
                f"{words} (matches to {e:.2g} relative once shifted, {err_now:.2g} as given)",
                "fail",
            )
    return None


def _float16_finding(name: str, got: np.ndarray, dtype) -> Finding | None:
    if np.dtype(dtype).itemsize <= 2:
        return Finding(
            "precision",
            f"{name} is stored as {np.dtype(dtype).name} (11 significant bits): "
            "alpha_bar_t near 1 and small beta_t lose most of their digits; store float32 or float64",
            "fail",
        )
    with np.errstate(over="ignore"):
        if np.all(got.astype(np.float16).astype(np.float64) == got):
            return Finding(
                "precision",
                f"every entry of {name} is a float16 value: the table was rounded to float16 "
                "on its way here",
                "fail",
            )
    return None


# --- the audit ----------------------------------------------------------------------------


def _audit_tables(
    tables: dict[str, np.ndarray],
    dtypes: dict[str, str],
    declared: Declared,
    max_ulps: float,
    findings: list[Finding],
    *,
    checks_for_arrays: bool = False,
) -> list[Coefficient]:
    try:
        tt_mp = truth.true_table(declared.betas())
    except (ValueError, ZeroDivisionError) as err:
        raise AuditInputError(f"cannot build the declared schedule: {err}") from err
    want = {k: truth.split(v) for k, v in tt_mp.items()}
    tt = {k: v[0] for k, v in want.items()}
    coefs = []
    for name in truth.QUANTITIES:
        if name not in tables:
            continue
        got = np.asarray(tables[name], dtype=np.float64)
        if got.size != declared.T:
            raise AuditInputError(
                f"{name} has {got.size} entries but the declared schedule has T = {declared.T}"
            )
        dt = np.dtype(dtypes[name])
        u = float(np.finfo(dt).eps) / 2
        c = measure(name, got, want[name], dt, _budget(tt, u), findings)
        coefs.append(c)
        if checks_for_arrays and name in ("beta_t", "alpha_t", "alpha_bar_t"):
            f16 = _float16_finding(name, got, dt)
            if f16:
                findings.append(f16)
            if c.classification == "formula":
                shift = _shift_finding(name, got, declared, c.max_rel)
                if shift:
                    findings.append(shift)
                ends = [
                    f"{name.replace('_t', '')}_{t} = {got[t - 1]:.6g} (declared {tt[name][t - 1]:.6g})"
                    for t in (1, declared.T)
                    if abs(got[t - 1] - tt[name][t - 1]) > 1e-3 * abs(tt[name][t - 1])
                ]
                if ends and not shift:
                    findings.append(
                        Finding("formula", f"end points differ: {'; '.join(ends)}", "fail")
                    )
    _classify_findings(coefs, tt, declared, max_ulps, findings)
    if "log_var_q" in tables and declared.T > 1:
        got1 = float(tables["log_var_q"][0])
        clipped = float(tt["log_var_q"][0])
        if abs(got1 - clipped) > 1e-6 * abs(clipped):
            findings.append(
                Finding(
                    "convention",
                    f"log_var_q at t = 1 is {got1:.6g}"
                    + (
                        " = log(1e-20), the clamp of var_q(1) = 0"
                        if abs(got1 - math.log(1e-20)) < 1e-3
                        else ""
                    )
                    + f"; DDPM's posterior_log_variance_clipped (and ours) use log var_q(2) = "
                    f"{clipped:.6g}: it matters where the log-variance at t = 1 is used (the "
                    "decoder's scale in the ELBO, learned_range interpolation)",
                )
            )
    return coefs


def _expect_findings(declared: Declared, expect, beta_start, beta_end, T, findings) -> None:
    if expect is not None and expect != declared.name:
        findings.append(
            Finding(
                "formula",
                f"the source declares the {declared.name} schedule, you expected {expect}",
                "fail",
            )
        )
    for key, want in (("beta_start", beta_start), ("beta_end", beta_end)):
        have = getattr(declared, key)
        if want is not None and have is not None and not math.isclose(have, want, rel_tol=1e-12):
            findings.append(
                Finding(
                    "formula",
                    f"the source declares {key} = {have!r}, you expected {want!r}",
                    "fail",
                )
            )
    if T is not None and T != declared.T:
        findings.append(
            Finding(
                "formula", f"the source declares T = {declared.T}, you expected T = {T}", "fail"
            )
        )


def scheduler(
    obj,
    *,
    expect: str | None = None,
    beta_start: float | None = None,
    beta_end: float | None = None,
    T: int | None = None,
    max_ulps: float = DEFAULT_MAX_ULPS,
    steps: int = 50,
    check_steps: bool = True,
    source: str | None = None,
) -> Report:
    """Audit a diffusers scheduler object (DDPMScheduler, DDIMScheduler, or any with
    `betas`, `alphas_cumprod` and a config): its tables against the 50-digit truth of the
    schedule its config declares, its conventions, its inference grid for `steps` steps, and
    (DDPM / DDIM) its `step()` against ours."""
    config = dict(getattr(obj, "config", {}) or {})
    if not hasattr(obj, "alphas_cumprod") or not hasattr(obj, "betas"):
        raise AuditInputError(
            f"{type(obj).__name__} has no betas / alphas_cumprod: not a DDPM-family scheduler"
        )
    declared = declared_from_config(config)
    findings: list[Finding] = []
    _expect_findings(declared, expect, beta_start, beta_end, T, findings)
    tables, dtype = diffusers_tables(obj, findings)
    coefs = _audit_tables(tables, dict.fromkeys(tables, dtype), declared, max_ulps, findings)
    report = Report(source or type(obj).__name__, declared.describe(), declared.T, max_ulps, coefs)
    from udm.audit import steps as step_audit

    findings.append(
        Finding(
            "indexing",
            f"{type(obj).__name__} indexes timesteps 0..{declared.T - 1}: its timestep i is the "
            f"paper's t = i + 1 (alphas_cumprod[i] = alpha_bar_(i+1))",
            "info",
        )
    )
    findings += step_audit.convention_findings(obj, config, declared)
    if hasattr(obj, "set_timesteps") and steps:
        findings += step_audit.grid_findings(obj, config, steps)
    if check_steps and not any(c.__name__ in STEP_CLASSES for c in type(obj).__mro__):
        findings.append(
            Finding(
                "step",
                f"step() of {type(obj).__name__} is not audited (DDPMScheduler and "
                "DDIMScheduler are); its tables and grid are",
                "info",
            )
        )
    elif check_steps:
        rows, step_findings = step_audit.audit_steps(obj, declared, steps)
        report.steps = rows
        findings += step_findings
    report.findings = findings
    return report


def _load_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as err:
        raise AuditInputError(f"{path}: cannot read JSON ({str(err).splitlines()[0]})") from err
    if not isinstance(data, dict):
        raise AuditInputError(f"{path}: expected a JSON object (a scheduler config)")
    return data


def _config_path(path: Path) -> Path:
    for cand in (path / "scheduler_config.json", path / "scheduler" / "scheduler_config.json"):
        if cand.is_file():
            return cand
    raise AuditInputError(
        f"{path}: no scheduler_config.json or scheduler/scheduler_config.json in this folder"
    )


def scheduler_from_config(config: dict, source: str):
    try:
        import diffusers
    except ImportError as err:
        raise AuditInputError(
            "auditing a scheduler config needs diffusers: pip install 'udm[audit]'"
        ) from err
    declared_from_config(config)  # validate before diffusers sees it
    name = config.get("_class_name", "DDPMScheduler")
    cls = getattr(diffusers, name, None)
    if cls is None or not hasattr(cls, "from_config"):
        raise AuditInputError(f"{source}: _class_name {name!r} is not a diffusers scheduler")
    try:
        return cls.from_config(config)
    except Exception as err:  # diffusers raises NotImplementedError, ValueError, ...
        raise AuditInputError(
            f"{source}: {name} refuses this config: {str(err).splitlines()[0]}"
        ) from err


def scheduler_source(
    path,
    *,
    expect: str | None = None,
    beta_start: float | None = None,
    beta_end: float | None = None,
    T: int | None = None,
    max_ulps: float = DEFAULT_MAX_ULPS,
    steps: int = 50,
    check_steps: bool = True,
    table: str | None = None,
) -> Report:
    """Audit a source on disk: a scheduler config JSON, a folder holding one, `udm schedule
    --json` output, or a .npy / .txt array of betas, alphas or alphas_cumprod."""
    path = Path(path)
    if expect is not None and expect not in EXPECT_NAMES:
        raise AuditInputError(f"--expect must be one of {', '.join(EXPECT_NAMES)}, got {expect!r}")
    if not path.exists():
        raise AuditInputError(f"{path}: no such file or folder")
    if path.is_dir():
        path = _config_path(path)
    if path.suffix == ".json":
        data = _load_json(path)
        if "alpha_bar_t" in data or "betas" in data or "alphas_cumprod" in data:
            return _audit_columns(data, str(path), expect, beta_start, beta_end, T, max_ulps)
        sch = scheduler_from_config(data, str(path))
        return scheduler(
            sch,
            expect=expect,
            beta_start=beta_start,
            beta_end=beta_end,
            T=T,
            max_ulps=max_ulps,
            steps=steps,
            check_steps=check_steps,
            source=str(path),
        )
    if path.suffix not in (".npy", ".txt", ".csv"):
        raise AuditInputError(
            f"{path}: SOURCE must be a scheduler config .json, a folder holding one, or a "
            ".npy / .txt array"
        )
    v = read_array(path)
    if table is not None and table not in _TABLE_ALIASES:
        raise AuditInputError(f"--table must be one of {', '.join(_TABLE_ALIASES)}, got {table!r}")
    name = (
        _TABLE_ALIASES[table]
        if table
        else (_guess_table(v) if v.ndim == 1 and v.size else "beta_t")
    )
    return _audit_arrays(
        {name: v}, {name: v.dtype}, str(path), expect, beta_start, beta_end, T, max_ulps
    )


def _audit_columns(data, source, expect, beta_start, beta_end, T, max_ulps) -> Report:
    """`udm schedule --json` output (one array per column) or {"betas": [...]} JSON."""
    dtype = np.dtype(data.get("dtype", "float64"))
    cols = {}
    for key, name in (("betas", "beta_t"), ("alphas_cumprod", "alpha_bar_t"), ("beta_t", "beta_t")):
        if key in data:
            cols[name] = data[key]
    for name in truth.QUANTITIES:
        if name in data and name not in cols:
            cols[name] = data[name]
    arrays = {}
    for name, values in cols.items():
        try:
            arrays[name] = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise AuditInputError(f"{source}: column {name} is not numeric") from err
    if expect is None and data.get("schedule") in EXPECT_NAMES:
        expect = data["schedule"]
    return _audit_arrays(
        arrays, dict.fromkeys(arrays, dtype), source, expect, beta_start, beta_end, T, max_ulps
    )


def _audit_arrays(arrays, dtypes, source, expect, beta_start, beta_end, T, max_ulps) -> Report:
    findings: list[Finding] = []
    primary = (
        next(n for n in ("alpha_bar_t", "beta_t", "alpha_t") if n in arrays)
        if any(n in arrays for n in ("alpha_bar_t", "beta_t", "alpha_t"))
        else None
    )
    if primary is None:
        raise AuditInputError(f"{source}: no beta_t / alpha_t / alpha_bar_t table found")
    base = _tables_from_array(np.asarray(arrays[primary]), primary, source, findings, T)
    n = base[primary].size
    offset = arrays[primary].size - n
    tables = {
        k: np.asarray(v, dtype=np.float64)[offset:] if np.asarray(v).size == n + offset else v
        for k, v in arrays.items()
    }
    for k, v in tables.items():
        if not np.all(np.isfinite(v[1:] if k in FROM_T2 else v)) and k not in ("log_snr",):
            raise AuditInputError(f"{source}: {k} holds NaN or inf")
    if T is not None and T != n:
        raise AuditInputError(
            f"--T is {T} but {source} holds {n} time steps (valid: --T {n} or omit it)"
        )
    if beta_start is not None and not 0 < beta_start < 1:
        raise AuditInputError(f"--beta-start must lie in (0, 1), got {beta_start}")
    if beta_end is not None and not 0 < beta_end < 1:
        raise AuditInputError(f"--beta-end must lie in (0, 1), got {beta_end}")
    if expect is not None:
        ends = {} if expect == "cosine" else {"beta_start": beta_start, "beta_end": beta_end}
        declared = Declared(expect, n, **ends)
        findings.append(
            Finding("schedule", f"audited against the expected {declared.describe()}", "info")
        )
    else:
        cands = [Declared(nm, n) for nm in ("linear", "scaled-linear", "cosine")]
        if beta_start is not None or beta_end is not None:
            cands = [Declared(nm, n, beta_start, beta_end) for nm in ("linear", "scaled-linear")]
        declared, err = _closest(primary, tables[primary].astype(np.float64), cands)
        if declared is None:
            raise AuditInputError(f"{source}: no known schedule fits these values")
        findings.append(
            Finding(
                "schedule",
                f"no --expect: the closest known schedule is {declared.describe()} "
                f"(max relative difference {err:.3g}); pass --expect to audit against another",
                "info",
            )
        )
    coefs = _audit_tables(tables, dtypes, declared, max_ulps, findings, checks_for_arrays=True)
    return Report(source, declared.describe(), n, max_ulps, coefs, findings)
