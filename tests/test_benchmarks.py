"""The benchmark code on a tiny configuration: it runs, its JSON has the expected
fields, and its mpmath ground truth agrees with independent closed forms. diffusers is not
needed: the peer columns are switched off here."""

from __future__ import annotations

import json
import math

import mpmath
import numpy as np
import pytest
from click.testing import CliRunner

from udm import bench as benchmarks
from udm.bench import accuracy, report, speed
from udm.cli import main as udm_main


@pytest.fixture
def no_peers(monkeypatch):
    monkeypatch.setattr(accuracy, "diffusers_available", lambda: False)


# --- the mpmath truth against closed forms -------------------------------------------------


@pytest.mark.eq(31, 70, 85)
def test_truth_of_a_constant_beta_schedule_is_a_power():
    """alpha_bar_t = (1 - beta)^t exactly; var_q = beta (1 - a^(t-1)) / (1 - a^t), a = 1 - beta."""
    with mpmath.workdps(60):
        beta = mpmath.mpf(3) / 1000
        T = 50
        table = accuracy.true_table([beta] * T)
        a = 1 - beta
        for t in (1, 2, 17, T):
            assert abs(table["alpha_bar_t"][t - 1] / a**t - 1) < mpmath.mpf(10) ** -45
            want_var = beta * (1 - a ** (t - 1)) / (1 - a**t)
            assert abs(table["var_q"][t - 1] - want_var) <= mpmath.mpf(10) ** -45 * want_var
            want_snr = a**t / (1 - a**t)
            assert abs(table["snr"][t - 1] / want_snr - 1) < mpmath.mpf(10) ** -45


@pytest.mark.eq(31, 70)
def test_truth_of_the_cosine_schedule_is_its_alpha_bar_formula():
    """Unclipped, the product of 1 - beta_t telescopes to f(t / T) / f(0)."""
    T = 40
    with mpmath.workdps(60):
        betas = accuracy.true_betas("cosine", T)
        table = accuracy.true_table(betas)
        s = mpmath.mpf("0.008")

        def f(u):
            return mpmath.cos((u + s) / (1 + s) * mpmath.pi / 2) ** 2

        for t in range(1, T):  # beta_T is clipped at 0.999
            want = f(mpmath.mpf(t) / T) / f(0)
            assert abs(table["alpha_bar_t"][t - 1] / want - 1) < mpmath.mpf(10) ** -45
        assert abs(betas[-1] - mpmath.mpf("0.999")) < mpmath.mpf(10) ** -45


@pytest.mark.eq(31)
def test_truth_uses_the_published_decimal_betas():
    lin = accuracy.true_betas("linear", 7)
    sd = accuracy.true_betas("scaled-linear", 7)
    with mpmath.workdps(50):
        assert abs(lin[0] - mpmath.mpf("1e-4")) < mpmath.mpf(10) ** -45
        assert abs(lin[-1] - mpmath.mpf("0.02")) < mpmath.mpf(10) ** -45
        assert abs(sd[-1] - mpmath.mpf("0.012")) < mpmath.mpf(10) ** -45
        assert abs(sd[0] - mpmath.mpf("0.00085")) < mpmath.mpf(10) ** -45


def test_learned_truth_matches_the_float64_module():
    """The mpmath omega(t) of the learned schedule agrees with the module in float64."""
    import torch

    module = accuracy._learned_module(torch.float64)
    ts = [0, 0.25, 1]
    want = module(torch.tensor(ts, dtype=torch.float64)).detach().numpy()
    got = np.array([float(v) for v in accuracy.true_omega(module, [mpmath.mpf(t) for t in ts])])
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


def test_ulps_measure():
    """One float32 step away from the truth is one ulp; the (hi, lo) split carries the tail."""
    true = [mpmath.mpf(1) / 3, mpmath.mpf(2) / 3]
    hi, lo = accuracy._split(true)
    rounded = np.array([np.float32(v) for v in hi], dtype=np.float32)
    up = np.nextafter(rounded, np.float32(1))
    err = accuracy.errors(up.astype(np.float64), (hi, lo), np.float32)
    assert 0.5 <= err["max_ulps"] <= 1.5
    exact = accuracy.errors(hi, (hi, lo), np.float64)
    assert exact["max_ulps"] <= 0.5
    assert accuracy.errors(np.array([0.0]), accuracy._split([mpmath.mpf(0)]))["max_ulps"] == 0


# --- the runs, tiny -------------------------------------------------------------------------


@pytest.mark.eq(70, 85, 130, 148)
def test_accuracy_rows_tiny_and_our_float32_tables_meet_the_target(no_peers):
    rows = accuracy.run(Ts=(10,), peers=False)
    fields = {"kind", "schedule", "T", "quantity", "impl", "dtype", "max_rel", "max_ulps"}
    assert rows and all(fields <= set(r) for r in rows)
    assert {r["schedule"] for r in rows} == set(accuracy.SCHEDULES)
    assert not any(r["impl"].startswith("diffusers") for r in rows)
    # float32 tables with the 1-ulp target (not the learned schedule's float32-network column)
    ours32 = [r for r in rows if r["kind"] == "table" and "target_ulps" in r]
    assert {r["impl"] for r in ours32} == {"ours-f32", "ours-f64->f32", "numpy-f64->f32"}
    assert {r["quantity"] for r in ours32} >= set(accuracy.TABLE_QUANTITIES)
    bad = [(r["schedule"], r["quantity"], r["impl"], r["max_ulps"]) for r in ours32 if not r["ok"]]
    assert not bad, bad  # the target: float32 tables within 1 ulp of the truth
    funcs = [r for r in rows if r["kind"] == "function"]
    assert funcs and all("max_ulps_scale" in r for r in funcs)
    assert max(r["max_ulps_scale"] for r in funcs) <= 8


def test_speed_elbo_tiny_loop_and_vectorized_agree():
    row = speed.elbo(6, batch=2, dim=3, repeats=1)
    assert {"ours_s", "peer_s", "ratio", "target", "ok", "max_abs_diff_bpd"} <= set(row)
    assert row["max_abs_diff_bpd"] < 1e-4
    assert row["ratio"] > 0


def test_proof_timings_tiny():
    rows = speed.proof_timings(["guidance"], top=3)
    assert 1 <= len(rows) <= 3
    assert all(r["ok"] and r["proof"].startswith("udm.derivations.guidance.") for r in rows)
    assert rows == sorted(rows, key=lambda r: -r["seconds"])


def test_run_json_render_and_compare(no_peers, tmp_path):
    result = benchmarks.run("accuracy", (10,))
    assert set(result) >= {"schema", "machine", "config", "accuracy"}
    assert set(result["machine"]) >= {"cpu", "cores", "torch", "numpy", "diffusers"}
    assert result["config"]["peers"] is False
    path = tmp_path / "b.json"
    report.write_json(result, path)
    again = json.loads(path.read_text())
    assert len(again["accuracy"]) == len(result["accuracy"])
    text = report.render(again)
    assert "ours-f32" in text and "alpha_bar_t" in text
    worse = json.loads(path.read_text())
    worse["accuracy"][0]["max_ulps"] += 1
    assert "1 row(s) changed" in report.compare(worse, again)
    with pytest.raises(ValueError, match="part"):
        benchmarks.run("fastest")


def test_udm_bench_command(no_peers, tmp_path):
    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        udm_main, ["bench", "--part", "accuracy", "--T", "10", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "schedule tables" in result.output
    data = json.loads(out.read_text())
    assert data["config"]["Ts"] == [10]
    compared = CliRunner().invoke(
        udm_main, ["bench", "--part", "accuracy", "--T", "10", "--compare", str(out)]
    )
    assert compared.exit_code == 0 and "0 row(s) changed" in compared.output
    bad = CliRunner().invoke(udm_main, ["bench", "--T", "ten"])
    assert bad.exit_code == 2 and "--T" in bad.output


def test_speed_skips_peers_without_diffusers(no_peers, monkeypatch):
    monkeypatch.setattr(speed, "verify_wall", lambda sections=None: {"wall_s": 0.0})
    monkeypatch.setattr(speed, "proof_timings", lambda sections=None: [])
    monkeypatch.setattr(speed, "elbo", lambda T, **kw: {"name": "elbo", "T": T})
    out = speed.run(5, quick=True)
    assert [r["name"] for r in out["rows"] if "diffusers" in r["name"]] == []
    assert out["threads"] >= 1 and math.isfinite(out["verify"]["wall_s"])


@pytest.mark.eq(84, 85, 94, 115)
def test_speed_sampling_tiny_agrees_with_diffusers():
    """Ancestral sampling with our Schedule and with diffusers' DDPMScheduler.step, same
    network and same noise stream: the final samples agree (float32 rounding only)."""
    pytest.importorskip("diffusers")
    row = speed.sampling(6, batch=4, dim=3, repeats=1)
    fields = {"ours_s", "peer_s", "ratio", "samples_per_s_ours", "samples_per_s_peer"}
    assert fields <= set(row) and row["ratio"] > 0
    assert row["max_abs_diff"] < 1e-4
