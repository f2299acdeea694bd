"""Speed benchmark: each number a ratio of two timings taken in the same run.

* ``elbo``: the full-T negative ELBO of a batch in bits/dim, vectorized over t
  (`udm.torch_impl.vdm.nll_bits_per_dim`, the denoiser called once on T * B inputs) against a
  Python loop over t evaluating one t at a time with `vb_term` (DDPM's ``calc_bpd_loop``
  style). Target: >= 10x at T = 1000 on CPU.
* ``q_sample`` and ``train_step``: the forward sample alone, and a training step (q_sample +
  network + eps-MSE loss + backward), with our `Schedule` against the same network with
  diffusers' ``DDPMScheduler.add_noise``. Target: ratio ours / diffusers <= 1.0.
* ``sampling``: ancestral sampling (T network calls on a batch, x_0_hat from the eps
  prediction by eq. (115), then the posterior mean and variance of eqs. (84), (85), (94)) with
  our `Schedule`, against the same network driven by diffusers' ``DDPMScheduler.step``; both
  draw their noise from one seeded generator, so the two final samples must agree. Reported
  as samples/s each and the time ratio ours / diffusers (target <= 1.0).
* ``verify``: ``python -m udm verify --json`` in a subprocess (wall time, total and per
  section), and the slowest proofs (each derivation built, its steps checked and its closed
  forms compared with the generated reference, timed one by one in this process).

Timings are medians of several repeats, alternating the two sides of each ratio.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]  # the repository (udm/bench/speed.py)
ELBO_TARGET = 10.0
STEP_TARGET = 1.0
VERIFY_TARGET_S = 60.0


def threads() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


class _MLP(torch.nn.Module):
    """A small denoiser: x_t and t / T in, a prediction of x_t's shape out."""

    def __init__(self, dim: int, T: int, hidden: int = 64):
        super().__init__()
        self.T = T
        self.net = torch.nn.Sequential(
            torch.nn.Linear(dim + 1, hidden),
            torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.SiLU(),
            torch.nn.Linear(hidden, dim),
        )

    def forward(self, x_t, t):
        return self.net(torch.cat([x_t, (t.to(x_t.dtype) / self.T)[:, None]], dim=1))


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _ratio_row(name, device, ours, peer, target, *, higher_is_better: bool, extra=None):
    """Row with medians; ratio = peer / ours when higher is better (a speed-up), else ours / peer."""
    o, p = statistics.median(ours), statistics.median(peer)
    ratio = p / o if higher_is_better else o / p
    row = {
        "name": name,
        "device": str(device),
        "ours_s": o,
        "peer_s": p,
        "ratio": ratio,
        "ratio_is": "peer / ours (speed-up)" if higher_is_better else "ours / peer",
        "target": target,
        "ok": bool(ratio >= target if higher_is_better else ratio <= target),
        "repeats": len(ours),
    }
    row.update(extra or {})
    return row


def elbo(T: int = 1000, *, batch: int = 8, dim: int = 32, repeats: int = 5, device="cpu"):
    """Vectorized full-T bits/dim vs a per-t loop of `vb_term` (same eps, same network)."""
    from udm.torch_impl import vdm

    gen = torch.Generator().manual_seed(0)
    sched = vdm.linear_schedule(T)
    torch.manual_seed(0)
    net = _MLP(dim, T).to(device)
    x_0 = (torch.randint(0, 256, (batch, dim), generator=gen) / 127.5 - 1).to(device)
    eps = torch.randn(T, batch, dim, generator=gen).to(device)

    def vectorized():
        return vdm.nll_bits_per_dim(sched, net, x_0, eps=eps, levels=256)

    def loop():  # DDPM's calc_bpd_loop: one t at a time
        total = vdm._prior(sched, x_0)
        for t in range(1, T + 1):
            tt = torch.full((batch,), t, device=device)
            x_t = sched.q_sample(x_0=x_0, t=tt, eps=eps[t - 1])
            total = total + vdm.vb_term(
                sched, x_0=x_0, x_t=x_t, x_0_hat=net(x_t, tt), t=tt, levels=256
            )
        return total / (dim * math.log(2))

    with torch.no_grad():
        a, b = vectorized(), loop()  # warm-up, and the two must agree
        agree = float((a - b).abs().max())
        ours, peer = [], []
        for _ in range(repeats):
            ours.append(_timed(vectorized, device))
            peer.append(_timed(loop, device))
    return _ratio_row(
        f"elbo T={T}: vectorized vs per-t loop",
        device,
        ours,
        peer,
        ELBO_TARGET,
        higher_is_better=True,
        extra={"T": T, "batch": batch, "dim": dim, "max_abs_diff_bpd": agree},
    )


def _scheduler_pair(T: int, device):
    from diffusers import DDPMScheduler

    from udm.torch_impl import vdm

    return vdm.linear_schedule(T), DDPMScheduler(num_train_timesteps=T, beta_schedule="linear")


def q_sample(
    T: int = 1000,
    *,
    batch: int = 128,
    dim: int = 32,
    repeats: int = 7,
    inner: int = 200,
    device="cpu",
):
    """Our Schedule.q_sample vs diffusers' add_noise, `inner` calls per timing."""
    sched, sch = _scheduler_pair(T, device)
    gen = torch.Generator().manual_seed(0)
    x_0 = torch.randn(batch, dim, generator=gen).to(device)
    eps = torch.randn(batch, dim, generator=gen).to(device)
    t = torch.randint(1, T + 1, (batch,), generator=gen).to(device)

    def ours_fn():
        for _ in range(inner):
            sched.q_sample(x_0=x_0, t=t, eps=eps)

    def peer_fn():
        for _ in range(inner):
            sch.add_noise(x_0, eps, t - 1)

    ours_fn(), peer_fn()
    ours, peer = [], []
    for _ in range(repeats):
        ours.append(_timed(ours_fn, device) / inner)
        peer.append(_timed(peer_fn, device) / inner)
    diff = float(
        (sched.q_sample(x_0=x_0, t=t, eps=eps) - sch.add_noise(x_0, eps, t - 1)).abs().max()
    )
    return _ratio_row(
        f"q_sample T={T}: Schedule vs diffusers add_noise",
        device,
        ours,
        peer,
        STEP_TARGET,
        higher_is_better=False,
        extra={"batch": batch, "dim": dim, "max_abs_diff": diff},
    )


def train_step(
    T: int = 1000,
    *,
    batch: int = 128,
    dim: int = 32,
    repeats: int = 7,
    inner: int = 50,
    device="cpu",
):
    """One training step (q_sample + network + eps-MSE + backward), ours vs diffusers."""
    sched, sch = _scheduler_pair(T, device)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = _MLP(dim, T).to(device)
    x_0 = torch.randn(batch, dim, generator=gen).to(device)
    eps = torch.randn(batch, dim, generator=gen).to(device)
    t = torch.randint(1, T + 1, (batch,), generator=gen).to(device)

    def step(noisy):
        def run():
            for _ in range(inner):
                net.zero_grad(set_to_none=True)
                x_t = noisy()
                loss = torch.nn.functional.mse_loss(net(x_t, t), eps)
                loss.backward()

        return run

    ours_fn = step(lambda: sched.q_sample(x_0=x_0, t=t, eps=eps))
    peer_fn = step(lambda: sch.add_noise(x_0, eps, t - 1))
    ours_fn(), peer_fn()
    ours, peer = [], []
    for _ in range(repeats):
        ours.append(_timed(ours_fn, device) / inner)
        peer.append(_timed(peer_fn, device) / inner)
    return _ratio_row(
        f"train step T={T}: Schedule vs diffusers add_noise",
        device,
        ours,
        peer,
        STEP_TARGET,
        higher_is_better=False,
        extra={"batch": batch, "dim": dim},
    )


def sampling(
    T: int = 1000,
    *,
    batch: int = 256,
    dim: int = 32,
    repeats: int = 3,
    device="cpu",
    validate_args: bool = False,
):
    """Ancestral sampling of `batch` samples (T steps), ours vs diffusers' DDPMScheduler.step.
    validate_args=False: our argument checks off inside the loop (udm.checks), as a sampler
    with known-good inputs runs; True measures their cost."""
    from diffusers import DDPMScheduler

    import udm.torch_impl.interpretations as I
    from udm import checks
    from udm.torch_impl import vdm

    sched = vdm.linear_schedule(T)
    sch = DDPMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False)
    sch.set_timesteps(T)
    torch.manual_seed(0)
    net = _MLP(dim, T).to(device)
    x_T = torch.randn(batch, dim, generator=torch.Generator().manual_seed(0)).to(device)

    def ours_fn():
        gen = torch.Generator(device).manual_seed(1)
        x = x_T
        for t_val in range(T, 0, -1):
            t = torch.full((batch,), t_val, device=device)
            ab = sched.gather("alpha_bar_t", t, x)
            x_0_hat = I.x_0_from_eps(x_t=x, eps_hat=net(x, t), alpha_bar_t=ab)
            x = sched.p_mean(x_t=x, x_0_hat=x_0_hat, t=t)
            if t_val > 1:
                noise = torch.randn(x.shape, generator=gen, device=device, dtype=x.dtype)
                x = x + sched.posterior_var(t, x).sqrt() * noise
        return x

    def peer_fn():
        gen = torch.Generator(device).manual_seed(1)
        x = x_T
        for t0 in sch.timesteps:  # T - 1, ..., 0 (0-based)
            t = torch.full((batch,), int(t0) + 1, device=device)
            x = sch.step(net(x, t), t0, x, generator=gen).prev_sample
        return x

    with torch.no_grad(), checks.validate_args(validate_args):
        diff = float((ours_fn() - peer_fn()).abs().max())  # warm-up, and they must agree
        ours, peer = [], []
        for _ in range(repeats):
            ours.append(_timed(ours_fn, device))
            peer.append(_timed(peer_fn, device))
    return _ratio_row(
        f"sampling T={T}, batch {batch}, checks {'on' if validate_args else 'off'}: "
        "Schedule vs diffusers step",
        device,
        ours,
        peer,
        STEP_TARGET,
        higher_is_better=False,
        extra={
            "batch": batch,
            "validate_args": validate_args,
            "dim": dim,
            "samples_per_s_ours": batch / statistics.median(ours),
            "samples_per_s_peer": batch / statistics.median(peer),
            "max_abs_diff": diff,
        },
    )


def verify_wall(sections=None) -> dict:
    """`python -m udm verify --json` in a subprocess: wall seconds, total and per section."""
    from udm import catalog

    cmd = [sys.executable, "-m", "udm", "verify", "--json"]
    if sections and len(sections) == 1:
        cmd += ["--section", sections[0]]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    try:
        rows = json.loads(proc.stdout)
    except json.JSONDecodeError:
        rows = []
    per_section: dict[str, float] = {}
    for row in rows:
        section = catalog.get(row["number"]).module
        per_section[section] = per_section.get(section, 0.0) + row["seconds"]
    return {
        "command": " ".join(["python", *cmd[1:]]),
        "wall_s": wall,
        "returncode": proc.returncode,
        "all_ok": proc.returncode == 0 and all(r["ok"] for r in rows),
        "equations": len(rows),
        "sections_s": per_section,
        "target_s": VERIFY_TARGET_S,
        "ok": bool(wall <= VERIFY_TARGET_S and proc.returncode == 0),
    }


def proof_timings(sections=None, top: int = 10) -> list[dict]:
    """Seconds per derivation (build + step checks + reference check), slowest first."""
    from udm import catalog, registry, verify

    rng = random.Random(0)
    out = []
    for section in sections or catalog.SECTIONS:
        try:
            module = importlib.import_module(f"udm.derivations.{section}")
        except ModuleNotFoundError:
            continue
        for reg in registry.runtime_registrations():
            if reg.layer != "derivations" or not reg.path.startswith(module.__name__ + "."):
                continue
            start = time.perf_counter()
            derivation = getattr(module, reg.path.rsplit(".", 1)[1])()
            ok = all(check.ok for check in derivation.check())
            for cf in derivation.results:
                ok = ok and verify._reference_check(cf, reg.path, section, rng) is None
            out.append(
                {
                    "proof": reg.path,
                    "section": section,
                    "equations": list(derivation.equations),
                    "steps": len(derivation.steps),
                    "seconds": time.perf_counter() - start,
                    "ok": ok,
                }
            )
    out.sort(key=lambda r: -r["seconds"])
    return out[:top]


def run(
    T: int = 1000, *, quick: bool = False, peers: bool | None = None, verify_sections=None, log=None
):
    """All speed rows (CPU, and CUDA when available) and the verify timings."""
    from udm.bench.accuracy import diffusers_available

    if peers is None:
        peers = diffusers_available()
    n = threads()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    reps = {"repeats": 3} if quick else {}
    rows = []
    for device in devices:
        if log:
            log(f"speed: elbo on {device}")
        rows.append(elbo(T, device=device, **reps))
        if peers:
            if log:
                log(f"speed: q_sample and train step on {device}")
            small = {"inner": 20} if quick else {}
            rows.append(q_sample(T, device=device, **reps, **small))
            rows.append(train_step(T, device=device, **reps, **({"inner": 5} if quick else {})))
            if log:
                log(f"speed: ancestral sampling on {device}")
            for batch in (64,) if quick else (256, 1024):
                rows.append(sampling(T, device=device, batch=batch, **reps))
    if log:
        log("speed: udm verify")
    verify = verify_wall(verify_sections)
    verify["slowest"] = proof_timings(verify_sections)
    return {"threads": n, "devices": devices, "rows": rows, "verify": verify}
