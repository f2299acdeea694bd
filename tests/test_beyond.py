"""Formulas beyond the paper (udm/catalog_beyond.yaml): the catalog, the registry and the CLI
under string keys, and each formula's torch function against its generated reference."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import udm.reference.ddim as RD
import udm.reference.iddpm as RI
import udm.reference.interpretations as RInt
import udm.reference.vpred as RV
import udm.reference.zt_snr as RZ
import udm.torch_impl.iddpm as TI
import udm.torch_impl.interpretations as I
import udm.torch_impl.sampling as S
import udm.torch_impl.vpred as TV
import udm.torch_impl.zt_snr as TZ
from udm import catalog, registry, status
from udm.cli import main

rng = np.random.default_rng(0)
t = torch.from_numpy


# --- catalog, registry, CLI ------------------------------------------------------------------


def test_beyond_catalog_is_apart_from_the_paper():
    beyond = catalog.load_beyond()
    assert {"ddim.12", "ddim.16", "v.pred", "zt_snr.1", "iddpm.15", "sde.13"} <= set(beyond)
    assert sorted(catalog.load()) == list(range(1, 171))  # the paper's numbers unchanged
    for key, eq in beyond.items():
        assert (
            eq.number == key and eq.source and eq.source_eq and eq.module in catalog.BEYOND_SECTIONS
        )
        assert key.split(".")[0] in (eq.module, "v")
        assert eq.kind in catalog.KINDS and eq.latex
        assert all(d in beyond for d in eq.depends_on)
    assert catalog.lookup("pf_ode") == "sde.13" and catalog.lookup("85") == 85
    with pytest.raises(KeyError):
        catalog.lookup("ddim.99")


def test_every_beyond_formula_is_implemented_and_tested():
    index = registry.index()
    for key in catalog.load_beyond():
        record = index[key]
        layers = [layer for layer in registry.LAYERS if record.implementations[layer]]
        assert layers, key  # a derivation, a reference or a torch function
        if catalog.get(key).kind != "identity" or key == "sde.13":  # a formula people compute
            assert "torch_impl" in layers, key
        assert record.tests, key
        assert status.load_beyond()[key]["status"] != "missing", key


def test_register_accepts_keys_and_refuses_unknown_ones():
    from udm import register

    def fake(doc):
        def f():
            pass

        f.__doc__ = doc
        f.__module__ = "udm.reference.x"
        return f

    register("ddim.12")(fake("DDIM's step, ddim.12."))
    register(85, "ddim.eta1")(fake("eq. (85) and ddim.eta1"))
    with pytest.raises(registry.RegistrationError, match="not a key"):
        register("ddim.99")(fake("ddim.99"))
    with pytest.raises(registry.RegistrationError, match=r"must name ddim\.12"):
        register("ddim.12")(fake("the DDIM step, eq. (12)"))
    with pytest.raises(registry.RegistrationError, match="ints"):
        register("85")(fake("eq. (85)"))  # a number as a string stays refused, as before
    with pytest.raises(registry.RegistrationError, match=r"cite eq\. \(85\)"):
        register(85, "ddim.12")(fake("ddim.12 only"))


def test_udm_eq_takes_keys_like_numbers():
    runner = CliRunner()
    text = runner.invoke(main, ["eq", "ddim.12"]).output
    assert text.startswith("ddim.12  [ddim] Song, Meng, Ermon 2021")
    assert "udm.torch_impl.sampling.ddim_step" in text and "reference/_generated/ddim.py:" in text
    obj = json.loads(runner.invoke(main, ["eq", "ddim.12", "--json"]).output)
    assert obj["number"] == "ddim.12" and obj["source_equation"] == "eq. (12)"
    assert obj["status"] == status.load_beyond()["ddim.12"]["status"] == "symbolic"
    assert obj["derivations"][0]["steps"][-1]["eq"] == "ddim.12"
    assert (
        json.loads(runner.invoke(main, ["eq", "pf_ode", "--json", "--no-steps"]).output)["number"]
        == "sde.13"
    )
    paper = json.loads(runner.invoke(main, ["eq", "85", "--json", "--no-steps"]).output)
    assert paper["number"] == 85 and "source" not in paper and "source_equation" not in paper


@pytest.mark.parametrize("arg", ["ddim.99", "v", "ddim."])
def test_udm_eq_unknown_key_exits_2_with_one_line(arg):
    proc = subprocess.run([sys.executable, "-m", "udm", "eq", arg], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "udm:" in proc.stderr


def test_udm_verify_takes_keys_and_sections():
    runner = CliRunner()
    rows = json.loads(runner.invoke(main, ["verify", "ddim.12", "v.loss", "--json"]).output)
    assert {r["number"] for r in rows} == {"ddim.12", "v.loss"} and all(r["ok"] for r in rows)
    result = runner.invoke(main, ["verify", "--section", "iddpm"])
    assert result.exit_code == 0 and "iddpm.between" in result.output


# --- DDIM --------------------------------------------------------------------------------------


@pytest.mark.eq("ddim.16", "ddim.eta1")
def test_ddim_variance_torch_matches_reference():
    ab_s = rng.uniform(0.01, 0.99, 100)
    alpha = rng.uniform(0.01, 0.99, 100)
    eta = rng.uniform(0, 1, 100)
    ref = RD.ddim_variance(eta=eta, alpha_t=alpha, alpha_bar_prev=ab_s)
    ours = S.ddim_variance(
        eta=t(eta), log_alpha_bar_t=t(np.log(alpha * ab_s)), log_alpha_bar_s=t(np.log(ab_s))
    )
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-12)


@pytest.mark.eq("ddim.7", "ddim.12")
def test_ddim_step_with_the_true_x0_is_the_posterior_mean():
    ab_s = rng.uniform(0.01, 0.99, 100)
    alpha = rng.uniform(0.01, 0.99, 100)
    eta = rng.uniform(0, 1, 100)
    x_t, x_0 = rng.normal(size=(2, 100))
    ref = RD.ddim_posterior_mean(x_t=x_t, x_0=x_0, eta=eta, alpha_t=alpha, alpha_bar_prev=ab_s)
    eps_hat = I.eps_from_x_0(x_t=t(x_t), x_0_hat=t(x_0), alpha_bar_t=t(alpha * ab_s))
    ours = S.ddim_step(
        x_0_hat=t(x_0),
        eps_hat=eps_hat,
        log_alpha_bar_t=t(np.log(alpha * ab_s)),
        log_alpha_bar_s=t(np.log(ab_s)),
        eta=t(eta),
        noise=torch.zeros(100, dtype=torch.float64),
    )
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-9, atol=1e-12)


# --- v-prediction ------------------------------------------------------------------------------


@pytest.mark.eq("v.pred", "v.x0", "v.eps", "v.loss")
def test_v_prediction_target_conversions_and_weights():
    ab = rng.uniform(0.001, 0.999, 200)
    x_0, eps, v_hat = rng.normal(size=(3, 200))
    v = TV.v_target(x_0=t(x_0), eps=t(eps), alpha_bar_t=t(ab))
    np.testing.assert_allclose(v.numpy(), RV.v_target(x_0=x_0, eps=eps, alpha_bar_t=ab), rtol=1e-12)
    lam = torch.log(t(ab)) - torch.log1p(-t(ab))
    torch.testing.assert_close(TV.v_target(x_0=t(x_0), eps=t(eps), log_snr=lam), v)
    x_t = np.sqrt(ab) * x_0 + np.sqrt(1 - ab) * eps
    # v.x0, v.eps: the true v gives back x_0 and eps
    torch.testing.assert_close(I.x_0_from_v(x_t=t(x_t), v_hat=v, alpha_bar_t=t(ab)), t(x_0))
    torch.testing.assert_close(I.eps_from_v(x_t=t(x_t), v_hat=v, alpha_bar_t=t(ab)), t(eps))
    np.testing.assert_allclose(
        RInt.x_0_from_v(x_t=x_t, v_hat=v.numpy(), alpha_bar_t=ab), x_0, atol=1e-12
    )
    # v.loss: the v error as weighted x_0 and eps errors
    x_0_hat = I.x_0_from_v(x_t=t(x_t), v_hat=t(v_hat), alpha_bar_t=t(ab))
    eps_hat = I.eps_from_v(x_t=t(x_t), v_hat=t(v_hat), alpha_bar_t=t(ab))
    err = (v - t(v_hat)) ** 2
    w_x0, w_eps = TV.v_loss_weight_x0(log_snr=lam), TV.v_loss_weight_eps(log_snr=lam)
    torch.testing.assert_close(w_x0 * (t(x_0) - x_0_hat) ** 2, err, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(w_eps * (t(eps) - eps_hat) ** 2, err, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(w_x0.numpy(), RV.v_loss_weight_x0(alpha_bar_t=ab), rtol=1e-9)
    np.testing.assert_allclose(w_eps.numpy(), RV.v_loss_weight_eps(alpha_bar_t=ab), rtol=1e-12)
    np.testing.assert_allclose(w_x0.numpy(), 1 + ab / (1 - ab), rtol=1e-9)  # 1 + SNR


# --- zero terminal SNR -------------------------------------------------------------------------


@pytest.mark.eq("zt_snr.1")
def test_zero_terminal_snr_matches_reference_and_diffusers():
    beta = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    ab = torch.cumprod(1 - beta, 0)
    ours = TZ.zero_terminal_snr(alpha_bar=ab)
    assert ours[-1].item() == 0.0 and ours[0].item() == pytest.approx(ab[0].item(), rel=1e-14)
    assert bool((ours[1:] < ours[:-1]).all())  # still decreasing
    s = ab.sqrt().numpy()
    ref = RZ.zero_terminal_snr_sqrt_alpha_bar(
        sqrt_alpha_bar_t=s[:-1], sqrt_alpha_bar_1=s[0], sqrt_alpha_bar_T=s[-1]
    )
    np.testing.assert_allclose(ours[:-1].sqrt().numpy(), ref, rtol=1e-12)
    diffusers = pytest.importorskip("diffusers")
    from diffusers.schedulers.scheduling_ddim import rescale_zero_terminal_snr

    theirs = torch.cumprod(1 - rescale_zero_terminal_snr(beta.clone()), 0)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-15)
    assert diffusers  # used


# --- iDDPM -------------------------------------------------------------------------------------


@pytest.mark.eq("iddpm.15", "iddpm.between")
def test_interpolated_variance_matches_reference_and_lies_between():
    beta = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    ab = torch.cumprod(1 - beta, 0)
    var_q = beta[1:] * (1 - ab[:-1]) / (1 - ab[1:])
    beta = beta[1:]
    for v in (0.0, 0.25, 0.5, 1.0):
        ours = TI.interpolated_variance(
            v_interp=torch.tensor(v, dtype=torch.float64), beta_t=beta, var_q=var_q
        )
        ref = RI.interpolated_variance(v_interp=v, beta_t=beta.numpy(), var_q=var_q.numpy())
        np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-12)
        assert bool((ours >= var_q * (1 - 1e-12)).all() and (ours <= beta * (1 + 1e-12)).all())
    torch.testing.assert_close(
        TI.interpolated_variance(
            v_interp=torch.tensor(0.0, dtype=torch.float64), beta_t=beta, var_q=var_q
        ),
        var_q,
    )
    torch.testing.assert_close(
        TI.interpolated_variance(
            v_interp=torch.tensor(1.0, dtype=torch.float64), beta_t=beta, var_q=var_q
        ),
        beta,
    )


def test_every_beyond_derivation_checks():
    """Each step of each derivation beyond the paper is proved (what `udm verify` runs)."""
    from udm.derivations import codegen

    for section in catalog.BEYOND_SECTIONS:
        for path, d in codegen.derivations_of(section):
            for check in d.check() + d.check_results():
                assert check.ok, f"{path}: step {check.index} [{check.rule}] {check.detail}"
