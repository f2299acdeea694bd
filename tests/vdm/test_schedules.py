"""Noise schedules: the named schedules, the Schedule table's coefficients in log space (eqs.
(31), (70), (85), the log SNR of eq. (109) and the loss weights of eqs. (99), (130), (148)),
schedule_from_alphas, schedule_from_alpha_bars,
log(1 - exp(x)) and `udm schedule`.

Oracles: the published definitions (DDPM's linspace, Stable Diffusion's, improved-diffusion's
betas_for_alpha_bar loop), direct float64 products, the generated reference (torch on every
device), and 50-digit mpmath from the definitions. Bad input is refused by name."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import assume, example, given
from hypothesis import strategies as st

import udm.reference.vdm as ref
import udm.torch_impl.vdm as tim
from tests import tolerances as tol
from tests.devices import DEVICES
from tests.strategies import schedules
from tests.vdm._helpers import F64_EPS, _both, _t
from udm.cli import main as udm_main


@pytest.mark.eq(31, 70, 85)
@given(alphas=schedules(max_T=4000))
@example(alphas=np.array([0.5]))  # T = 1
@example(alphas=np.full(4000, 1 - 1e-5))  # alpha_bar stays near 1
@example(alphas=np.full(4000, 0.5))  # alpha_bar underflows to 0 at t ~ 1075
def test_schedule_torch_float64_matches_reference(alphas):
    r, s = _both(alphas)
    for name in ref._COEFFICIENTS:
        np.testing.assert_allclose(
            s.coefficients()[name].numpy(), getattr(r, name), err_msg=name, **tol.F64
        )
    assert s.T == r.T == alphas.size


@pytest.mark.eq(31, 70, 85)
@given(alphas=schedules(max_T=4000))
def test_schedule_float32_coefficients_are_rounded_once(alphas):
    """float32 buffers are the float64 values rounded once: within half a float32 ulp."""
    s = tim.schedule_from_alphas(alphas, dtype=torch.float32)
    r = ref.schedule_from_alphas(alphas)
    for name in ("alpha_t", "alpha_bar_t", "alpha_bar_prev", "var_q", "log_var_q", "log_snr"):
        got = s.coefficients()[name].numpy().astype(np.float64)
        want = getattr(r, name)
        normal = np.abs(want) >= np.finfo(np.float32).tiny
        half_ulp = np.spacing(np.abs(want[normal]).astype(np.float32)).astype(np.float64) / 2
        assert np.all(np.abs(got[normal] - want[normal]) <= half_ulp * (1 + 1e-6)), name


@pytest.mark.eq(70, 85)
@given(alphas=schedules(max_T=4000))
@example(alphas=np.full(3, 1 - 1e-9))
def test_schedule_log_space_forms_match_the_direct_formulas(alphas):
    """Schedule (cumsum of logs, expm1) vs the direct float64 products and eq. (85) as
    generated from the derivation. The direct route loses eps / (1 - alpha_bar) relative
    accuracy to cancellation, so the tolerance scales with that condition number."""
    r = ref.schedule_from_alphas(alphas)
    direct = np.cumprod(alphas)
    # cumsum of t logs carries <= t eps |log alpha_bar_t| absolute error, which exp turns
    # into relative error; cumprod carries <= t eps relative
    t = np.arange(1, alphas.size + 1)
    bound = 2 * F64_EPS * t * (1 + np.abs(r.log_alpha_bar_t)) * direct
    assert np.all(np.abs(r.alpha_bar_t - direct) <= bound + 1e-300)
    if r.T >= 2:
        ab, abp, a = r.alpha_bar_t[1:], r.alpha_bar_prev[1:], r.alpha_t[1:]
        gen = ref.var_q(alpha_t=a, alpha_bar_t=ab, alpha_bar_prev=abp)
        cond = 1 / (1 - abp) + 1 / (1 - ab) + 1 / (1 - a)
        assert np.all(np.abs(r.var_q[1:] - gen) <= 8 * F64_EPS * cond * gen)
        # log_var_q is the log of var_q where var_q > 0, clipped at t = 1
        np.testing.assert_allclose(np.exp(r.log_var_q[1:]), r.var_q[1:], rtol=1e-13)
        assert r.log_var_q[0] == r.log_var_q[1]
    else:
        assert r.log_var_q[0] == np.log(1 - alphas[0])
    assert r.var_q[0] == 0.0 and r.alpha_bar_prev[0] == 1.0
    np.testing.assert_allclose(r.alpha_bar_prev[1:], r.alpha_bar_t[:-1], rtol=0, atol=0)
    ok = r.alpha_bar_t > 1e-300
    np.testing.assert_allclose(
        r.snr[ok], r.alpha_bar_t[ok] / (1 - r.alpha_bar_t[ok]), rtol=1e-12 / (1 - r.alpha_bar_t[0])
    )
    np.testing.assert_allclose(r.log_snr[ok], np.log(r.snr[ok]), rtol=1e-12, atol=1e-12)


@pytest.mark.eq(31, 70)
def test_schedules_match_their_published_definitions():
    lin = ref.linear_schedule()
    betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)  # DDPM, diffusion_utils_2.py
    np.testing.assert_allclose(lin.beta_t, betas, rtol=0, atol=0)
    np.testing.assert_allclose(lin.alpha_bar_t, np.cumprod(1 - betas), rtol=1e-12)
    np.testing.assert_allclose(lin.alpha_bar_t[-1], 4.0358e-05, rtol=1e-4)  # DDPM's value
    sd = ref.scaled_linear_schedule()
    np.testing.assert_allclose(
        sd.beta_t, np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2, rtol=1e-15
    )
    np.testing.assert_allclose(sd.alpha_bar_t[-1], 0.0047, rtol=1e-2)  # SD's final value
    cos = ref.cosine_schedule()

    def f(u):
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    # improved-diffusion's betas_for_alpha_bar, as a Python loop (independent of ours)
    want = [min(1 - f((i + 1) / 1000) / f(i / 1000), 0.999) for i in range(1000)]
    np.testing.assert_allclose(cos.beta_t, want, rtol=1e-14)
    assert cos.beta_t[-1] == 0.999 and np.all(cos.beta_t <= 0.999)
    unclipped = cos.beta_t < 0.999
    np.testing.assert_allclose(
        cos.alpha_bar_t[unclipped],
        [f((t + 1) / 1000) / f(0) for t in np.flatnonzero(unclipped)],
        rtol=1e-12,
    )


@pytest.mark.eq(31, 70, 85)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["linear", "scaled-linear", "cosine"])
@pytest.mark.parametrize("T", [1, 2, 1000, 4000])
def test_named_schedules_torch_matches_reference(device, name, T):
    r = ref.make_schedule(name, T)
    s = tim.make_schedule(name, T, dtype=torch.float64, device=device)
    for key in ref._COEFFICIENTS:
        got = getattr(s, key)
        assert got.device.type == device and got.dtype == torch.float64
        np.testing.assert_allclose(got.cpu().numpy(), getattr(r, key), err_msg=key, **tol.F64)


# --- schedules: bad input ---------------------------------------------------------------------


@pytest.mark.eq(31, 70, 85)
@pytest.mark.parametrize("layer", [ref, tim], ids=["reference", "torch"])
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m: m.schedule_from_alphas([0.9, 1.5]), ValueError, r"alpha_t must lie in \(0, 1\)"),
        (lambda m: m.schedule_from_alphas([0.9, 0.0]), ValueError, "alpha_t"),
        (lambda m: m.schedule_from_alphas([0.9, -0.1]), ValueError, "alpha_t"),
        (lambda m: m.schedule_from_alphas([1.0, 0.9]), ValueError, "alpha_t"),
        (
            lambda m: m.schedule_from_alphas([0.9, float("nan")]),
            ValueError,
            "alpha_t must be finite",
        ),
        (
            lambda m: m.schedule_from_alpha_bars([0.9, 0.5, 0.6]),
            ValueError,
            r"strictly decreasing.*t = 3",
        ),
        (lambda m: m.schedule_from_alpha_bars([0.9, 0.9]), ValueError, "strictly decreasing"),
        (lambda m: m.linear_schedule(T=0), ValueError, "T must be an int >= 1"),
        (lambda m: m.linear_schedule(T=10, beta_end=1.2), ValueError, "beta_end"),
        (lambda m: m.make_schedule("quadratic"), ValueError, "unknown schedule 'quadratic'"),
        (lambda m: m.make_schedule("cosine", beta_start=0.1), ValueError, "cosine"),
        (
            lambda m: m.mu_q(x_t=0.0, x_0=0.0, alpha_t=0.5, alpha_bar_t=1.0, alpha_bar_prev=1.0),
            ValueError,
            "alpha_bar_t",
        ),
        (
            lambda m: m.x_0_loss_weight(alpha_t=0.5, alpha_bar_t=0.5, alpha_bar_prev=1.0),
            ValueError,
            "alpha_bar_prev",
        ),
    ],
)
def test_schedule_bad_input_is_refused_by_name(layer, call, error, message):
    with pytest.raises(error, match=message):
        call(layer)


@pytest.mark.eq(31)
@pytest.mark.parametrize("layer", [ref, tim], ids=["reference", "torch"])
@pytest.mark.parametrize("name", ["linear", "scaled-linear"])
@pytest.mark.parametrize("end", ["beta_start", "beta_end"])
def test_make_schedule_passes_every_given_end_on(layer, name, end):
    """A given beta end reaches the builder whatever its value: 0.0 is refused by name (the
    reference used to drop a falsy 0.0 and silently build the default schedule), and a
    given value is used, not the default."""
    with pytest.raises(ValueError, match=f"{end} must lie in"):
        layer.make_schedule(name, 10, **{end: 0.0})
    value = {"beta_start": 3e-4, "beta_end": 0.05}[end]
    built = layer.make_schedule(name, 10, **{end: value})
    builder = {"linear": layer.linear_schedule, "scaled-linear": layer.scaled_linear_schedule}
    want = builder[name](10, **{end: value})
    got_beta, want_beta = (np.asarray(s.beta_t, dtype=np.float64) for s in (built, want))
    np.testing.assert_array_equal(got_beta, want_beta)
    default = np.asarray(builder[name](10).beta_t, dtype=np.float64)
    assert not np.array_equal(got_beta, default)


def _alpha_bar_lists():
    """alpha_bar_1 > ... > alpha_bar_T in (0, 1): spread out, near 1, or nearly equal neighbours."""
    levels = st.one_of(st.floats(1e-12, 1 - 1e-12), st.floats(1 - 1e-6, 1 - 1e-15))
    return st.lists(levels, min_size=1, max_size=40, unique=True).map(
        lambda v: np.array(sorted(v, reverse=True))
    )


@pytest.mark.eq(31, 70)
@pytest.mark.parametrize("layer", [ref, tim], ids=["reference", "torch"])
@given(alpha_bar=_alpha_bar_lists())
@example(alpha_bar=np.array([0.5]))
@example(alpha_bar=np.array([1e-12, np.nextafter(1e-12, 0)]))  # beta_2 below log alpha_bar's ulp
@example(alpha_bar=np.array([1 - 1e-9, 0.5, 0.5 * (1 - 1e-9), 1e-3, 1e-3 * (1 - 1e-8), 1e-10]))
def test_schedule_from_alpha_bars_values_vs_mpmath(layer, alpha_bar):
    """Every coefficient of the schedule built from alpha_bar_1..alpha_bar_T against a 50-digit
    computation straight from the definitions: alpha_t = alpha_bar_t / alpha_bar_{t-1} (eq. (31)
    with alpha_bar_0 = 1, eq. (70)), beta_t = 1 - alpha_t, sigma_q^2(t) (eq. (85)), SNR(t)."""
    import mpmath

    mpmath.mp.dps = 50
    ab = [mpmath.mpf(float(v)) for v in alpha_bar]
    abp = [mpmath.mpf(1), *ab[:-1]]
    alpha = [a / b for a, b in zip(ab, abp, strict=True)]
    want = {
        "beta_t": [1 - a for a in alpha],
        "alpha_t": alpha,
        "alpha_bar_t": ab,
        "alpha_bar_prev": abp,
        "var_q": [(1 - a) * (1 - p) / (1 - b) for a, p, b in zip(alpha, abp, ab, strict=True)],
        "snr": [b / (1 - b) for b in ab],
        "log_snr": [mpmath.log(b / (1 - b)) for b in ab],
    }
    kw = {"dtype": torch.float64} if layer is tim else {}
    s = layer.schedule_from_alpha_bars(alpha_bar, **kw)
    # beta_t is formed once from the inputs (<= 2 ulps); the rest is rebuilt from beta_t by
    # log alpha_bar_t = cumsum log1p(-beta_t): each step adds a few ulps, amplified by
    # 1 / alpha_t where 1 - beta_t is small, and by 1 / (1 - alpha_bar_t) in the SNR.
    cond = np.cumsum([float(1 + 1 / a) for a in alpha])
    scale = {"beta_t": np.full(len(ab), 1.0), "alpha_t": 1 / np.array([float(a) for a in alpha])}
    for key, exact in want.items():
        got = np.asarray(getattr(s, key), dtype=np.float64)
        exact = np.array([float(v) for v in exact])
        rel = scale.get(key, cond * (1 + 1 / (1 - np.asarray(alpha_bar))))
        err = np.abs(got - exact)
        bound = 8 * F64_EPS * rel * np.abs(exact) + (2 * F64_EPS * rel if key == "log_snr" else 0)
        assert np.all(err <= bound), (key, err / np.maximum(np.abs(exact), 1e-300))


@pytest.mark.eq(31, 85)
@pytest.mark.parametrize("bad_t", [0, 11, -1])
def test_t_outside_1_to_T_is_refused(bad_t):
    r, s = ref.linear_schedule(T=10), tim.linear_schedule(T=10)
    with pytest.raises(ValueError, match=r"1 <= t <= T = 10"):
        r.at(bad_t)
    with pytest.raises(ValueError, match=r"1 <= t <= T = 10"):
        s.check_t(torch.tensor([1, bad_t]))
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"1 <= t <= T = 10"):
        tim.vb_term(s, x_0=x, x_t=x, x_0_hat=x, t=torch.tensor([1, bad_t]), levels=256)
    with pytest.raises(TypeError, match="integer time step"):
        s.check_t(torch.tensor([1.5]))


# --- udm schedule -----------------------------------------------------------------------------


@pytest.mark.eq(31, 70, 85)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("linear", []),
        ("scaled-linear", ["--T", "50"]),
        ("cosine", ["--T", "1"]),
        ("linear", ["--T", "7", "--beta-start", "0.001", "--beta-end", "0.3"]),
    ],
)
def test_udm_schedule_json_matches_the_schedule(name, args, dtype):
    result = CliRunner().invoke(udm_main, ["schedule", name, *args, "--dtype", dtype, "--json"])
    assert result.exit_code == 0, result.output
    obj = json.loads(result.output)
    assert {"t", "alpha_t", "alpha_bar_t", "var_q", "snr", "log_snr"} <= set(obj)
    opts = dict(zip(args[::2], args[1::2], strict=True))
    r = ref.make_schedule(
        name,
        int(opts.get("--T", 1000)),
        beta_start=float(opts["--beta-start"]) if "--beta-start" in opts else None,
        beta_end=float(opts["--beta-end"]) if "--beta-end" in opts else None,
    )
    assert obj["t"] == list(range(1, r.T + 1))
    for key in ("alpha_t", "alpha_bar_t", "var_q", "snr", "log_snr"):
        want, got = getattr(r, key), np.asarray(obj[key])
        if dtype == "float32":  # the float64 value rounded once to float32: <= 1 ulp apart
            assert np.all(got == got.astype(np.float32)), key  # printed float32 values
            assert np.all(np.abs(got - want) <= np.spacing(np.abs(want).astype(np.float32))), key
        else:
            np.testing.assert_allclose(got, want, err_msg=key, **tol.F64)


@pytest.mark.eq(31)
def test_udm_schedule_text_plot_and_errors(tmp_path):
    result = CliRunner().invoke(udm_main, ["schedule", "cosine", "--T", "3"])
    assert result.exit_code == 0 and len(result.output.strip().splitlines()) == 4
    assert result.output.split()[:6] == ["t", "alpha_t", "alpha_bar_t", "var_q", "snr", "log_snr"]
    bad = CliRunner().invoke(udm_main, ["schedule", "linear", "--T", "0"])
    assert bad.exit_code == 2 and "T must be an int >= 1" in bad.output
    bad = CliRunner().invoke(udm_main, ["schedule", "quadratic"])
    assert bad.exit_code == 2
    png = tmp_path / "s.png"
    out = CliRunner().invoke(udm_main, ["schedule", "linear", "--T", "20", "--plot", str(png)])
    assert out.exit_code == 0
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "needs matplotlib" in out.output and not png.exists()
    else:
        assert png.stat().st_size > 0


# --- a schedule's closed forms: torch vs the generated reference vs 50 digits ------------------


def _log_levels():
    """(log alpha_bar_{t-1}, log alpha_bar_t): 0 >= log_prev > log_t, near 0 (alpha_bar ~ 1),
    around -log 2 (where log1mexp switches form) and far below (alpha_bar ~ 1e-20)."""
    log_prev = st.one_of(
        st.just(0.0), st.floats(-1e-12, 0.0), st.floats(-0.8, -0.6), st.floats(-50.0, 0.0)
    )
    gap = st.one_of(st.floats(1e-15, 1e-6), st.floats(1e-6, 5.0))
    return st.tuples(log_prev, gap).map(lambda p: (p[0], p[0] - p[1])).filter(lambda p: p[1] < 0)


def _reference_log_space(beta, logs):
    log_t = logs["log_alpha_bar_t"]
    return {
        "log_alpha_t": ref.log_alpha_t(beta_t=beta),
        "q_var_from_log_alpha_bar": ref.q_var_from_log_alpha_bar(log_alpha_bar_t=log_t),
        "var_q": ref.var_q_from_log_alpha_bars(beta_t=beta, **logs),
        "log_snr_from_log_alpha_bar": ref.log_snr_from_log_alpha_bar(log_alpha_bar_t=log_t),
        "log_var_q_from_log_alpha_bars": ref.log_var_q_from_log_alpha_bars(beta_t=beta, **logs),
    }


@pytest.mark.eq(31, 70, 85, 109)
@pytest.mark.parametrize("device", DEVICES)
@given(levels=_log_levels(), beta=st.floats(1e-12, 1 - 1e-12))
@example(levels=(0.0, -1e-4), beta=1e-4)  # t = 1 of DDPM's schedule
@example(levels=(-math.log(2), -math.log(2) - 1e-9), beta=1e-9)  # log SNR ~ 0
def test_log_space_coefficients_torch_vs_generated_vs_mpmath(device, levels, beta):
    """The Schedule tables' closed forms (udm.derivations.vdm.schedules.schedule_in_log_space): torch's
    hand-written forms, the generated reference, and the paper's formulas in 50 digits at the
    same inputs: log alpha_t = log(1 - beta_t), 1 - alpha_bar_t, sigma_q^2(t) = beta_t (1 -
    alpha_bar_{t-1}) / (1 - alpha_bar_t) and its log, log SNR(t) (eqs. (31), (70), (85), (109)).
    Errors in ulps of each form's condition scale (sum of the magnitudes of its terms)."""
    import mpmath

    log_prev, log_t = levels
    mpmath.mp.dps = 50
    L, Lp, b = mpmath.mpf(log_t), mpmath.mpf(log_prev), mpmath.mpf(beta)
    om, om_prev = -mpmath.expm1(L), -mpmath.expm1(Lp)  # exact even for |L| < 1e-50
    exact = {
        "log_alpha_t": (mpmath.log(1 - b), abs(mpmath.log(1 - b))),
        "q_var_from_log_alpha_bar": (om, om),
        "var_q": (b * om_prev / om, b * om_prev / om),
        "log_snr_from_log_alpha_bar": (L - mpmath.log(om), abs(L) + abs(mpmath.log(om))),
    }
    if log_prev < 0:
        log_var = mpmath.log(b * om_prev / om)
        scale = abs(mpmath.log(b)) + abs(mpmath.log(om_prev)) + abs(mpmath.log(om))
        exact["log_var_q_from_log_alpha_bars"] = (log_var, scale)
    logs = {"log_alpha_bar_t": log_t, "log_alpha_bar_prev": log_prev}
    with np.errstate(divide="ignore"):  # the unused branch of log1mexp at log_prev ~ 0
        ref_values = _reference_log_space(beta, logs)

    def tt(v):
        return _t(v, torch.float64, device)

    tlogs = {k: tt(v) for k, v in logs.items()}
    torch_values = {
        "log_alpha_t": tim.log_alpha_t(beta_t=tt(beta)),
        "q_var_from_log_alpha_bar": tim.q_var_from_log_alpha_bar(log_alpha_bar_t=tt(log_t)),
        "var_q": tim.posterior_coefficients(**tlogs, log_alpha_t=tim.log_alpha_t(beta_t=tt(beta)))[
            "var_q"
        ],
        "log_snr_from_log_alpha_bar": tim.log_snr_from_log_alpha_bar(log_alpha_bar_t=tt(log_t)),
        "log_var_q_from_log_alpha_bars": tim.log_var_q_from_log_alpha_bars(
            beta_t=tt(beta), **tlogs
        ),
    }
    for key, (want, scale) in exact.items():
        bound = 8 * F64_EPS * float(scale) + tol.F64["atol"]  # floor: subnormal results
        for layer, got in (("reference", ref_values[key]), ("torch", torch_values[key])):
            got = float(got.cpu()) if isinstance(got, torch.Tensor) else float(got)
            assert abs(got - float(want)) <= bound, (key, layer, got, float(want))


def _paper_weights(b, Lp, L):
    """The loss weights as the paper prints them, 1 / (2 sigma_q^2(t)) times the factor of
    eqs. (99), (130), (148), in mpmath from beta_t = b and the log alpha_bars Lp, L."""
    import mpmath

    a, abp = 1 - b, mpmath.exp(Lp)
    # 1 - alpha_bar by expm1: exact in 50 digits even where alpha_bar = 1 - 1e-178
    om_prev, om = -mpmath.expm1(Lp), -mpmath.expm1(L)
    half_inv_var = om / (2 * b * om_prev)  # 1 / (2 sigma_q^2), eq. (85)
    return {
        "x_0_loss_weight": half_inv_var * abp * (1 - a) ** 2 / om**2,
        "eps_loss_weight": half_inv_var * (1 - a) ** 2 / (om * a),
        "score_loss_weight": half_inv_var * (1 - a) ** 2 / a,
    }


@pytest.mark.eq(99, 130, 148)
@pytest.mark.parametrize("device", DEVICES)
@given(levels=_log_levels(), beta=st.floats(1e-12, 1 - 1e-12))
@example(levels=(0.0, -1e-4), beta=1e-4)  # t = 1: every weight is +inf
@example(levels=(-1e-4, -1e-4 - 1e-12), beta=1e-12)  # tiny beta_t near alpha_bar = 1
def test_loss_weights_in_log_form_torch_vs_generated_vs_mpmath(device, levels, beta):
    """The loss weights from beta_t and the log alpha_bars (the Schedule tables' source): torch,
    the generated reference, and the paper's 1 / (2 sigma_q^2) forms in 50 digits. Each is a
    product and quotient of at most six correctly rounded factors (no sum of opposite signs),
    so 8 ulps of the value bound it; at t = 1 (log alpha_bar_0 = 0) each is +inf. The claim
    holds while no product of factors is subnormal: 1 - alpha_bar_{t-1} >= 1e-150 (it is
    >= beta_1 in any schedule; 1 - alpha_bar_{t-1} = 1e-311 costs up to 1e-13 relative)."""
    import mpmath

    log_prev, log_t = levels
    assume(log_prev == 0 or log_prev <= -1e-150)
    mpmath.mp.dps = 50
    args = {"beta_t": beta, "log_alpha_bar_t": log_t, "log_alpha_bar_prev": log_prev}
    names = {"eps_loss_weight": ("beta_t", "log_alpha_bar_prev")}
    exact = (
        _paper_weights(mpmath.mpf(beta), mpmath.mpf(log_prev), mpmath.mpf(log_t))
        if log_prev < 0
        else dict.fromkeys(("x_0_loss_weight", "eps_loss_weight", "score_loss_weight"), math.inf)
    )
    for key, want in exact.items():
        fn = f"{key}_from_log_alpha_bars"
        kw = {k: v for k, v in args.items() if k in names.get(key, args)}
        # t = 1 divides by 1 - alpha_bar_0 = 0; a weight beyond 1.8e308 overflows (inf is right)
        with np.errstate(divide="ignore", over="ignore"):
            got_ref = float(getattr(ref, fn)(**kw))
        tkw = {k: _t(v, torch.float64, device) for k, v in kw.items()}
        got_torch = float(getattr(tim, fn)(**tkw).cpu())
        want = float(want)
        for layer, got in (("reference", got_ref), ("torch", got_torch)):
            if want == math.inf:
                assert got == math.inf, (key, layer, got)
            else:
                assert abs(got - want) <= 8 * F64_EPS * want, (key, layer, got, want)


_WEIGHT_ARGS = {
    "x_0": ("beta_t", "log_alpha_bar_t", "log_alpha_bar_prev"),
    "eps": ("beta_t", "log_alpha_bar_prev"),
    "score": ("beta_t", "log_alpha_bar_t", "log_alpha_bar_prev"),
}
_BAD_LEVELS = [
    ("beta_t", 1.5),
    ("beta_t", 0.0),
    ("log_alpha_bar_prev", 0.1),
    ("log_alpha_bar_t", 0.0),
    ("log_alpha_bar_t", math.nan),
]


@pytest.mark.eq(99, 130, 148)
@pytest.mark.parametrize("layer", [ref, tim], ids=["reference", "torch"])
@pytest.mark.parametrize(
    "key, name, value",
    [(k, n, v) for k, names in _WEIGHT_ARGS.items() for n, v in _BAD_LEVELS if n in names],
)
def test_loss_weights_in_log_form_refuse_bad_input_by_name(layer, key, name, value):
    args = {"beta_t": 0.01, "log_alpha_bar_t": -0.5, "log_alpha_bar_prev": -0.4}
    args = {n: args[n] for n in _WEIGHT_ARGS[key]} | {name: value}
    if layer is tim:
        args = {k: torch.tensor(v, dtype=torch.float64) for k, v in args.items()}
    with pytest.raises(ValueError, match=name):
        getattr(layer, f"{key}_loss_weight_from_log_alpha_bars")(**args)


@pytest.mark.eq(99, 130, 148)
@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_schedule_loss_weights_are_the_papers_in_50_digits(name):
    """The torch Schedule table's three loss weights at every t of a T = 1000 schedule against
    the paper's forms in 50 digits from the exact cumulative sum of log(1 - beta_t). The table's
    float64 cumsum errs by <= t eps |log alpha_bar_t| in log alpha_bar, which the weights carry
    with a factor <= 3 max(1, |log alpha_bar|): rtol 3 T eps max|log alpha_bar|^2 bounds it."""
    import mpmath

    mpmath.mp.dps = 50
    s = tim.make_schedule(name, 1000, dtype=torch.float64)
    table = s.coefficients()
    L = mpmath.mpf(0)
    rtol = 3 * 1000 * F64_EPS * float(torch.log(table["alpha_bar_t"][-1])) ** 2
    for t in range(1, 1001):
        b = mpmath.mpf(table["beta_t"][t - 1].item())
        Lp, L = L, L + mpmath.log1p(-b)
        for key, want in (_paper_weights(b, Lp, L) if t > 1 else {}).items():
            got = table[key][t - 1].item()
            assert abs(got - float(want)) <= rtol * float(want), (name, t, key, got, want)
        if t == 1:
            assert all(table[k][0].item() == math.inf for k in _paper_weights(b, -1, -2))


def _steps_of_a_schedule():
    T = st.integers(2, 5000)
    return T.flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n)))


@pytest.mark.eq(31, 70)
@pytest.mark.parametrize("device", DEVICES)
@given(
    Tt=_steps_of_a_schedule(),
    ends=st.tuples(st.floats(1e-6, 0.1), st.floats(1e-6, 0.9)).map(sorted),
    s=st.one_of(st.just(0.008), st.floats(1e-4, 0.5)),
)
@example(Tt=(1000, 1), ends=[1e-4, 0.02], s=0.008)
@example(Tt=(1000, 1000), ends=[1e-4, 0.02], s=0.008)
def test_named_betas_torch_vs_generated_vs_mpmath(device, Tt, ends, s):
    """beta_t of the linear, scaled-linear and cosine schedules at step t of T (eq. (31); the
    cosine one from its target alpha_bar, eq. (70)): torch's forms and the generated reference
    against the definitions in 50 digits (linear from beta_start at t = 1 to beta_end at t = T;
    sqrt(beta_t) linear; 1 - f(t / T) / f((t - 1) / T))."""
    import mpmath

    (T, t), (b0, b1) = Tt, ends
    mpmath.mp.dps = 50
    u = mpmath.mpf(t - 1) / (T - 1)
    r0, r1 = mpmath.sqrt(mpmath.mpf(b0)), mpmath.sqrt(mpmath.mpf(b1))

    def f(x):
        return mpmath.cos((x + mpmath.mpf(s)) / (1 + mpmath.mpf(s)) * mpmath.pi / 2) ** 2

    ratio = f(mpmath.mpf(t) / T) / f(mpmath.mpf(t - 1) / T)
    exact = {
        "linear_beta_t": (b0 + (b1 - b0) * u, b0 + b1),
        "scaled_linear_beta_t": ((r0 + (r1 - r0) * u) ** 2, (r0 + r1) ** 2),
        # 1 - ratio: the cos arguments carry a few ulps, amplified by tan near pi / 2
        "cosine_beta_t": (
            1 - ratio,
            ratio * (1 + 4 * t / T * abs(mpmath.tan(mpmath.pi / 2 * t / T))),
        ),
    }
    args = {
        "linear_beta_t": {"beta_start": b0, "beta_end": b1},
        "scaled_linear_beta_t": {"beta_start": b0, "beta_end": b1},
        "cosine_beta_t": {"s": s},
    }
    for key, (want, scale) in exact.items():
        got_ref = float(getattr(ref, key)(t=t, T=T, **args[key]))
        got_torch = getattr(tim, key)(t=_t(float(t), torch.float64, device), T=T, **args[key])
        bound = 16 * F64_EPS * float(scale)
        for layer, got in (("reference", got_ref), ("torch", float(got_torch.cpu()))):
            assert abs(got - float(want)) <= bound, (key, layer, got, float(want))
    assert float(ref.linear_beta_t(t=1, T=T, beta_start=b0, beta_end=b1)) == b0


@pytest.mark.eq(58)
@pytest.mark.parametrize("device", DEVICES)
@given(
    x=st.one_of(
        st.floats(-1e-300, -1e-320),
        st.floats(-1e-6, -1e-300),
        st.floats(-0.8, -0.6),
        st.floats(-745.0, -1e-6),
    )
)
@example(x=-math.log(2))  # where the two forms meet
@example(x=-40.0)  # 1 - exp(x) rounds to 1: only log1p(-exp(x)) keeps the digits
def test_log1mexp_torch_vs_reference_vs_mpmath(device, x):
    """log(1 - exp(x)), x < 0, behind the discretized decoder (both layers) and the schedules'
    log(1 - alpha_bar): the reference's and torch's forms against 50 digits, to a few ulps of
    the result at both ends (x -> 0-: log|x|; x -> -oo: -exp(x))."""
    import mpmath

    mpmath.mp.dps = 50
    xm = mpmath.mpf(x)  # 50 digits of each form where it has them: no cancellation in either
    exact = float(mpmath.log1p(-mpmath.exp(xm)) if x < -1 else mpmath.log(-mpmath.expm1(xm)))
    got_ref = float(ref._log1mexp(np.float64(x)))
    got_torch = float(tim._log1mexp(_t(x, torch.float64, device)).cpu())
    for got in (got_ref, got_torch):
        assert abs(got - exact) <= 4 * F64_EPS * abs(exact) + tol.F64["atol"], (got, exact)
