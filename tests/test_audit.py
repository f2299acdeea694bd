"""`udm audit` against real diffusers schedulers and tiny random UNet2DModels (no
download): it reproduces the known figures of diffusers 0.42.1, passes our own tables, and
catches planted bugs (a shifted index, a float16 table, a wrong beta_end, a sign error in
step(), a missing square root). The ELBO is checked against an independent per-t loop."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
from click.testing import CliRunner

from udm.cli import main as udm_main

diffusers = pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")

from udm.audit import schedule as S  # noqa: E402
from udm.audit import truth  # noqa: E402

SD_CONFIG = {
    "_class_name": "DDIMScheduler",
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "num_train_timesteps": 1000,
    "timestep_spacing": "leading",
    "steps_offset": 1,
    "set_alpha_to_one": False,
    "clip_sample": False,
    "prediction_type": "epsilon",
}


def run(*args):
    result = CliRunner().invoke(udm_main, ["audit", *map(str, args)])
    return result


def write_json(path, obj):
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ddpm_default_report():
    return S.scheduler(diffusers.DDPMScheduler(), steps=50)


# --- known figures of diffusers 0.42.1 (float32 tables) ------------------------------------


def test_ddpm_default_reproduces_the_known_figures(ddpm_default_report):
    r = ddpm_default_report
    ab = r.coefficient("alpha_bar_t")
    assert ab.dtype == "float32"
    assert 4 < ab.max_ulps < 8 and ab.classification == "precision"  # ~6 ulps: the cumprod
    s1m = r.coefficient("sqrt_one_minus_alpha_bar_t")
    assert 800 < s1m.max_ulps < 1500 and s1m.worst_t <= 2  # cancellation of 1 - alpha_bar
    assert s1m.ulps[0] > 800  # t = 1
    var = r.coefficient("var_q")
    assert 3.5e-4 < var.max_rel < 4.5e-4  # posterior variance ~3.9e-4 relative
    assert r.coefficient("alpha_t").max_ulps <= 1  # 1 - beta in float32 is correctly rounded
    # nothing in diffusers' tables is a formula difference: all of it is float32 arithmetic
    assert all(c.classification != "formula" for c in r.coefficients)
    assert not r.passed
    kinds = {(f.kind, f.severity) for f in r.findings}
    assert ("precision", "fail") in kinds
    text = " ".join(f.message for f in r.findings)
    assert "var_q at t = 1 is 1e-20" in text  # the clamp, named as a convention
    assert "log(1e-20)" in text
    assert "clip_sample=True" in text


def test_ddpm_default_config_cli_exits_1_and_json_has_the_fields(tmp_path):
    cfg = write_json(tmp_path / "scheduler_config.json", dict(diffusers.DDPMScheduler().config))
    result = run("scheduler", tmp_path, "--json", "--no-step")
    assert result.exit_code == 1, result.output
    out = json.loads(result.output)
    assert out["passed"] is False
    names = {c["name"]: c for c in out["coefficients"]}
    for key in (
        "alpha_bar_t",
        "sqrt_alpha_bar_t",
        "sqrt_one_minus_alpha_bar_t",
        "var_q",
        "log_var_q",
        "snr",
    ):
        assert set(names[key]) >= {"name", "dtype", "max_ulps", "worst_t"}
    assert 4 < names["alpha_bar_t"]["max_ulps"] < 8
    assert all(set(f) >= {"kind", "message"} for f in out["findings"])
    # readable table, same exit status
    text = run("scheduler", cfg, "--no-step")
    assert text.exit_code == 1
    assert "sqrt_one_minus_alpha_bar_t" in text.output and "FAILED" in text.output


def test_max_ulps_decides_the_exit_status(tmp_path):
    cfg = write_json(tmp_path / "c.json", dict(diffusers.DDPMScheduler().config))
    assert run("scheduler", cfg, "--no-step", "--max-ulps", "1e5").exit_code == 0
    assert run("scheduler", cfg, "--no-step", "--max-ulps", "4").exit_code == 1


def test_ddim_linspace_misses_19_of_49_grid_points():
    sch = diffusers.DDIMScheduler(timestep_spacing="linspace")
    findings = S.scheduler(sch, steps=50, check_steps=False).findings
    grid = [f.message for f in findings if f.kind == "grid"]
    assert any("19 of the 49 steps" in m for m in grid), grid
    # trailing spacing: every step lands on the next grid point and starts at t = T
    sch = diffusers.DDIMScheduler(timestep_spacing="trailing")
    grid = [f.message for f in S.scheduler(sch, check_steps=False).findings if f.kind == "grid"]
    assert not any("land on" in m or "starts at" in m for m in grid), grid


def test_stable_diffusion_config(tmp_path):
    (tmp_path / "scheduler").mkdir()
    write_json(tmp_path / "scheduler" / "scheduler_config.json", SD_CONFIG)
    result = run("scheduler", tmp_path, "--json")
    out = json.loads(result.output)
    assert result.exit_code == 1  # float32 tables: alpha_bar ~15 ulps
    text = " ".join(f["message"] for f in out["findings"])
    assert "sampling starts at timestep 981 (t = 982 of T = 1000)" in text
    assert "set_alpha_to_one=False" in text
    assert "scaled-linear" in out["declared"]
    assert all(c["classification"] != "formula" for c in out["coefficients"])
    assert all(not s["cause"].startswith("formula") for s in out["steps"])
    assert len(out["steps"]) == 6  # 3 prediction types x eta 0, 1


@pytest.mark.parametrize(
    "cls, kw",
    [
        (
            "DDPMScheduler",
            {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
        ),
        ("DDPMScheduler", {"beta_schedule": "squaredcos_cap_v2"}),
        ("DDPMScheduler", {"beta_schedule": "sigmoid"}),
        (
            "DDIMScheduler",
            {
                "beta_schedule": "squaredcos_cap_v2",
                "rescale_betas_zero_snr": True,
                "prediction_type": "v_prediction",
                "timestep_spacing": "trailing",
            },
        ),
        ("DDPMScheduler", {"rescale_betas_zero_snr": True, "prediction_type": "v_prediction"}),
    ],
)
def test_real_schedulers_show_no_formula_difference(cls, kw):
    sch = getattr(diffusers, cls)(num_train_timesteps=1000, **kw)
    r = S.scheduler(sch, steps=20)
    assert [c.name for c in r.coefficients if c.classification == "formula"] == []
    bad_steps = [s for s in r.steps if s["cause"].startswith("formula")]
    assert bad_steps == []
    if kw.get("rescale_betas_zero_snr"):
        assert any("zero terminal SNR" in f.message for f in r.findings)


def test_fixed_large_log_step_returns_nan_in_diffusers(ddpm_default_report):
    """diffusers' step() takes sqrt of log(beta_t) < 0 for fixed_large_log: found, but a
    warning only where the config does not use that variance type."""
    nan = [f for f in ddpm_default_report.findings if f.kind == "step" and "NaN" in f.message]
    assert nan and all("fixed_large_log" in f.message and f.severity == "warn" for f in nan)
    sch = diffusers.DDPMScheduler(variance_type="fixed_large_log")
    r = S.scheduler(sch, steps=10)
    assert any(f.kind == "step" and f.severity == "fail" for f in r.findings)


# --- our own tables pass ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["linear", "cosine", "scaled-linear"])
def test_our_tables_pass(tmp_path, name):
    out = CliRunner().invoke(
        udm_main, ["schedule", name, "--T", "1000", "--json", "--dtype", "float32"]
    )
    src = tmp_path / "ours.json"
    src.write_text(out.output, encoding="utf-8")
    result = run("scheduler", src, "--json")
    assert result.exit_code == 0, result.output
    coefs = json.loads(result.output)["coefficients"]
    assert {c["name"] for c in coefs} >= {"alpha_t", "alpha_bar_t", "var_q", "snr", "log_snr"}
    assert max(c["max_ulps"] for c in coefs) <= 1.0


def test_our_float32_alpha_bar_array_passes_and_names_its_schedule(tmp_path):
    from udm.torch_impl import vdm

    ab = vdm.make_schedule("linear", 1000, dtype=torch.float32).alpha_bar_t.numpy()
    np.save(tmp_path / "ab.npy", ab)
    result = run("scheduler", tmp_path / "ab.npy")
    assert result.exit_code == 0, result.output
    assert "closest known schedule is linear" in result.output
    # 1-based with alpha_bar_0 = 1 in front, as text: the same, with the convention named
    np.savetxt(tmp_path / "ab1.txt", np.concatenate([[1.0], ab.astype(np.float64)]))
    result = run("scheduler", tmp_path / "ab1.txt", "--expect", "linear", "--json")
    out = json.loads(result.output)
    assert any("1-based" in f["message"] for f in out["findings"])
    # float64 text of float32 values: measured in float64 ulps, so it fails, as it should
    assert result.exit_code == 1


# --- planted bugs ------------------------------------------------------------------------------


def _true(name, T=1000, **kw):
    return np.array([float(b) for b in truth.true_betas(name, T, **kw)])


def test_planted_betas_shifted_by_one_index(tmp_path):
    betas = _true("linear")
    shifted = np.append(betas[1:], betas[-1] + (betas[-1] - betas[-2]))
    np.save(tmp_path / "b.npy", shifted)
    result = run("scheduler", tmp_path / "b.npy", "--expect", "linear", "--json")
    assert result.exit_code == 1
    out = json.loads(result.output)
    assert any(
        f["kind"] == "indexing" and "shifted by one step" in f["message"] for f in out["findings"]
    )
    assert (
        next(c for c in out["coefficients"] if c["name"] == "beta_t")["classification"] == "formula"
    )
    np.save(tmp_path / "ok.npy", betas)  # the unshifted table passes
    assert run("scheduler", tmp_path / "ok.npy", "--expect", "linear").exit_code == 0


def test_planted_table_rounded_to_float16(tmp_path):
    from udm.torch_impl import vdm

    ab = vdm.make_schedule("linear", 1000, dtype=torch.float64).alpha_bar_t.numpy()
    np.save(tmp_path / "f16.npy", ab.astype(np.float16))
    result = run("scheduler", tmp_path / "f16.npy", "--expect", "linear", "--json")
    assert result.exit_code == 1
    assert any("float16" in f["message"] for f in json.loads(result.output)["findings"])
    # rounded to float16 but stored as float32
    np.save(tmp_path / "f16in32.npy", ab.astype(np.float16).astype(np.float32))
    result = run("scheduler", tmp_path / "f16in32.npy", "--expect", "linear", "--json")
    assert result.exit_code == 1
    assert any("float16 value" in f["message"] for f in json.loads(result.output)["findings"])


def test_planted_wrong_beta_end(tmp_path):
    np.save(tmp_path / "b.npy", np.linspace(1e-4, 0.021, 1000))
    result = run("scheduler", tmp_path / "b.npy", "--expect", "linear", "--json")
    assert result.exit_code == 1
    out = json.loads(result.output)
    beta = next(c for c in out["coefficients"] if c["name"] == "beta_t")
    assert beta["classification"] == "formula" and beta["worst_t"] > 500
    assert any("beta_1000 = 0.021 (declared 0.02)" in f["message"] for f in out["findings"])
    # in a config: the declaration itself is checked against --beta-end
    cfg = write_json(tmp_path / "c.json", dict(diffusers.DDPMScheduler(beta_end=0.021).config))
    result = run("scheduler", cfg, "--beta-end", "0.02", "--no-step", "--max-ulps", "1e9")
    assert result.exit_code == 1 and "you expected 0.02" in result.output


class SignErrorDDPM(diffusers.DDPMScheduler):
    def step(self, model_output, timestep, sample, *args, **kwargs):
        return super().step(-model_output, timestep, sample, *args, **kwargs)


class MissingSqrtDDPM(diffusers.DDPMScheduler):
    def add_noise(self, original_samples, noise, timesteps):
        ab = self.alphas_cumprod.to(original_samples.dtype)[timesteps]
        return ab * original_samples + (1 - ab) ** 0.5 * noise  # sqrt(alpha_bar) forgotten


def test_planted_sign_error_in_step():
    r = S.scheduler(SignErrorDDPM(), steps=20)
    fails = [f for f in r.findings if f.kind == "step" and f.severity == "fail"]
    assert fails and "epsilon, fixed_small" in fails[0].message
    assert not r.passed
    # the unplanted scheduler has no step finding that fails
    ok = S.scheduler(diffusers.DDPMScheduler(), steps=20)
    assert not [f for f in ok.findings if f.kind == "step" and f.severity == "fail"]


def test_planted_missing_sqrt_in_add_noise():
    r = S.scheduler(MissingSqrtDDPM(), check_steps=False)
    c = r.coefficient("sqrt_alpha_bar_t")
    assert c.classification == "formula"
    assert any(f.kind == "formula" and "sqrt_alpha_bar_t" in f.message for f in r.findings)


# --- bad input: exit 2, one line ---------------------------------------------------------------


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda p: p / "missing.json", "no such file"),
        (lambda p: (p / "x.json").write_text("{not json") and p / "x.json", "cannot read JSON"),
        (
            lambda p: write_json(p / "u.json", {"beta_schedule": "quadratic"}),
            "beta_schedule 'quadratic'",
        ),
        (lambda p: np.save(p / "n.npy", np.array([1e-4, np.nan, 0.02])) or p / "n.npy", "NaN"),
        (
            lambda p: np.save(p / "m.npy", np.array([0.99, 0.9, 0.95, 0.1])) or p / "m.npy",
            "must decrease in t",
        ),
        (lambda p: (p / "e.txt").write_text("abc") and p / "e.txt", "cannot read"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, make, needle):
    result = run("scheduler", make(tmp_path))
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_bad_option_values_exit_2(tmp_path):
    np.save(tmp_path / "b.npy", _true("linear"))
    for args, needle in (
        (["--max-ulps", "-1"], "--max-ulps"),
        (["--beta-end", "2"], "--beta-end must lie in (0, 1)"),
        (["--T", "10"], "--T is 10"),
        (["--expect", "quadratic"], "--expect must be one of linear, scaled-linear, cosine"),
        (["--table", "sigmas"], "--table must be betas, alphas or alphas_cumprod"),
    ):
        result = run("scheduler", tmp_path / "b.npy", *args)
        assert result.exit_code == 2 and needle in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1


def test_plot_is_written(tmp_path):
    np.save(tmp_path / "b.npy", _true("linear").astype(np.float32))
    result = run("scheduler", tmp_path / "b.npy", "--plot", tmp_path / "u.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "u.png").stat().st_size > 1000


# --- the ELBO of a tiny UNet, against an independent per-t loop -------------------------------

T_SMALL = 6


def tiny_unet():
    torch.manual_seed(0)
    return diffusers.UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(4, 8),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )


def independent_bpd(net, x0_u8, betas, eps):
    """-ELBO in bits/dim from first principles, float64, one t at a time (no udm code)."""
    from scipy.special import log_ndtr

    x0 = torch.from_numpy(x0_u8.astype(np.float64) / 127.5 - 1.0)
    T = len(betas)
    alphas = 1.0 - betas
    ab = np.cumprod(alphas)
    abp = np.append(1.0, ab[:-1])
    var = betas * (1 - abp) / (1 - ab)
    total = np.zeros(x0.shape[0])
    D = x0[0].numel()
    xn = x0.numpy()
    for t in range(1, T + 1):
        i = t - 1
        x_t = math.sqrt(ab[i]) * x0 + math.sqrt(1 - ab[i]) * eps[i]
        with torch.no_grad():
            e = net(x_t, torch.full((x0.shape[0],), i)).sample.numpy()
        xt = x_t.numpy()
        x0_hat = (xt - math.sqrt(1 - ab[i]) * e) / math.sqrt(ab[i])
        c0 = math.sqrt(abp[i]) * betas[i] / (1 - ab[i])
        ct = math.sqrt(alphas[i]) * (1 - abp[i]) / (1 - ab[i])
        mu_theta = c0 * x0_hat + ct * xt
        if t == 1:
            sd = math.sqrt(var[1])  # log variance clipped to t = 2
            up = np.where(xn > 0.999, np.inf, (xn + 1 / 255 - mu_theta) / sd)
            lo = np.where(xn < -0.999, -np.inf, (xn - 1 / 255 - mu_theta) / sd)
            # log(Phi(up) - Phi(lo)) through the upper tail where both are positive
            pos = lo > 0
            a, b = np.where(pos, -up, lo), np.where(pos, -lo, up)
            lb = log_ndtr(b)
            term = -(lb + np.log1p(-np.exp(log_ndtr(a) - lb)))
        else:
            mu_q = c0 * xn + ct * xt
            term = (mu_q - mu_theta) ** 2 / (2 * var[i])
        total += term.reshape(x0.shape[0], -1).sum(1)
    prior = 0.5 * (ab[-1] * xn**2 + (1 - ab[-1]) - 1 - np.log(1 - ab[-1]))
    total += prior.reshape(x0.shape[0], -1).sum(1)
    return total / (D * math.log(2))


def test_elbo_matches_an_independent_per_t_loop(one_thread):
    from udm.audit import likelihood

    net = tiny_unet().double()
    x0 = np.random.default_rng(0).integers(0, 256, (3, 1, 8, 8), dtype=np.uint8)
    sch = diffusers.DDPMScheduler(num_train_timesteps=T_SMALL, beta_end=0.2)
    eps = torch.randn(
        (T_SMALL, 3, 1, 8, 8), generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    r = likelihood.elbo(net, x0, sch, dtype="float64", eps=eps, batch=2)
    betas = np.linspace(1e-4, 0.2, T_SMALL)
    want = independent_bpd(net, x0, betas, eps)
    got = np.array(r["per_image_bits_per_dim"])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert r["bits_per_dim"] == pytest.approx(want.mean(), rel=1e-6)
    assert r["stderr_bits_per_dim"] == pytest.approx(want.std(ddof=1) / math.sqrt(3), rel=1e-6)
    assert r["terms"].shape == (T_SMALL,)


def test_elbo_cli_on_a_diffusers_folder_and_on_a_state_dict(tmp_path, one_thread, monkeypatch):
    net = tiny_unet()
    net.save_pretrained(tmp_path / "model" / "unet", safe_serialization=True)
    sch = diffusers.DDPMScheduler(num_train_timesteps=4)
    sch.save_config(tmp_path / "model" / "scheduler")
    imgs = np.random.default_rng(1).integers(0, 256, (2, 8, 8, 1), dtype=np.uint8)  # NHWC
    np.save(tmp_path / "x.npy", imgs)
    result = run(
        "elbo",
        tmp_path / "model",
        "--images",
        tmp_path / "x.npy",
        "--json",
        "--plot",
        tmp_path / "t.png",
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output[result.output.index("{") :])
    assert out["n"] == 2 and out["T"] == 4 and len(out["terms_bits_per_dim"]) == 4
    assert out["bits_per_dim"] > 0 and (tmp_path / "t.png").exists()
    # a state dict plus module:Class gives the same number
    (tmp_path / "mymod.py").write_text(
        "import diffusers\n"
        "class Net(diffusers.UNet2DModel):\n"
        "    def __init__(self):\n"
        "        super().__init__(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,\n"
        "            block_out_channels=(4, 8), down_block_types=('DownBlock2D', 'DownBlock2D'),\n"
        "            up_block_types=('UpBlock2D', 'UpBlock2D'), norm_num_groups=4)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    result = run(
        "elbo",
        tmp_path / "sd.pt",
        "--module",
        "mymod:Net",
        "--images",
        tmp_path / "x.npy",
        "--scheduler",
        tmp_path / "model" / "scheduler",
        "--json",
    )
    assert result.exit_code == 0, result.output
    again = json.loads(result.output[result.output.index("{") :])
    assert again["bits_per_dim"] == pytest.approx(out["bits_per_dim"], rel=1e-6)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > pwned.txt",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"weight": _Evil()}, fh)
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8), np.uint8))
    result = run(
        "elbo",
        tmp_path / "evil.pt",
        "--module",
        "torch.nn:Linear",
        "--images",
        tmp_path / "x.npy",
        "--scheduler",
        tmp_path,
    )
    assert result.exit_code == 2
    assert "refused to load" in result.output and "would run code" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "pwned.txt").exists()


def test_trained_betas_and_expect_on_a_config(tmp_path):
    betas = [float(b) for b in np.linspace(1e-4, 0.02, 50)]
    cfg = write_json(
        tmp_path / "c.json",
        {"_class_name": "DDPMScheduler", "trained_betas": betas, "num_train_timesteps": 50},
    )
    out = json.loads(run("scheduler", cfg, "--json", "--no-step").output)
    assert out["declared"].startswith("trained_betas (T = 50)")
    assert all(c["classification"] != "formula" for c in out["coefficients"])
    beta = next(c for c in out["coefficients"] if c["name"] == "beta_t")
    assert beta["max_ulps"] <= 0.5  # the float32 rounding of the declared decimals
    result = run("scheduler", cfg, "--json", "--no-step", "--expect", "cosine")
    assert result.exit_code == 1
    assert any("you expected cosine" in f["message"] for f in json.loads(result.output)["findings"])


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # diffusers'
def test_a_k_diffusion_scheduler_is_audited_by_its_tables_and_grid():
    """EulerDiscreteScheduler adds sigma_t eps to an unscaled x_0: named, not a formula bug."""
    sch = diffusers.EulerDiscreteScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012
    )
    r = S.scheduler(sch, steps=20)
    assert [c.name for c in r.coefficients if c.classification == "formula"] == []
    text = " ".join(f.message for f in r.findings)
    assert "variance-exploding form" in text
    assert "step() of EulerDiscreteScheduler is not audited" in text


def test_elbo_bad_input_exits_2_with_one_line(tmp_path):
    torch.save(torch.nn.Linear(2, 1).state_dict(), tmp_path / "lin.pt")
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8), np.uint8))
    np.save(tmp_path / "bad.npy", np.full((1, 1, 8, 8), 0.3))  # not on the 8-bit grid
    sch = tmp_path / "s"
    diffusers.DDPMScheduler(num_train_timesteps=4).save_config(sch)
    lin = [
        "--module",
        "torch.nn:Linear",
        "--module-kwargs",
        '{"in_features": 2, "out_features": 1}',
    ]
    x = ["--images", tmp_path / "x.npy"]
    for args, needle in (
        ([tmp_path / "lin.pt", *x, "--scheduler", sch], "name its network with --module"),
        ([tmp_path / "lin.pt", *x, *lin], "--scheduler is required"),
        ([tmp_path / "nope", *x], "no such file"),
        ([tmp_path / "lin.pt", *x, "--module", "torch.nn:Conv2d"], "--module torch.nn:Conv2d"),
        (
            [tmp_path / "lin.pt", *lin, "--images", tmp_path / "bad.npy", "--scheduler", sch],
            "8-bit",
        ),
        ([tmp_path / "lin.pt", *x, "--module-kwargs", "[1]"], "--module-kwargs must be a JSON"),
    ):
        result = run("elbo", *args)
        assert result.exit_code == 2, result.output
        assert needle in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
