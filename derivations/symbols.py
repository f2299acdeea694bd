"""SymPy symbols named as in shared NOTATION.md, with the assumptions the paper makes.

Symbol names are the Python names (so generated code reads `alpha_bar_t`); `tex()` renders
them as the paper typesets them.
"""

from __future__ import annotations

import sympy as sp

positive = {"positive": True}
real = {"real": True}

# schedule (0 < alpha <= 1 is enforced by the reference layer; SymPy only needs > 0)
alpha_t, alpha_bar_t, alpha_bar_prev = sp.symbols("alpha_t alpha_bar_t alpha_bar_prev", **positive)
alpha_prev = sp.Symbol("alpha_prev", **positive)  # alpha_{t-1}
var_q, var_theta, snr_t, snr_s = sp.symbols("var_q var_theta snr_t snr_s", **positive)
# data and latents (one coordinate: every formula acts elementwise)
x_0, x_t, x_prev, x_next, z, eps = sp.symbols("x_0 x_t x_prev x_next z eps", **real)
x_0_hat, eps_hat, score, score_hat = sp.symbols("x_0_hat eps_hat score score_hat", **real)
# generic Gaussian parameters (KL arguments as NOTATION fixes them)
mean, mean_q, mean_p = sp.symbols("mean mean_q mean_p", **real)
var, var_p = sp.symbols("var var_p", **positive)
log_snr, omega = sp.symbols("log_snr omega", **real)
guidance_scale = sp.Symbol("guidance_scale", **real)
step_size, sigma = sp.symbols("step_size sigma", **positive)

LATEX_NAMES = {
    alpha_t: r"\alpha_t",
    alpha_prev: r"\alpha_{t-1}",
    alpha_bar_t: r"\bar\alpha_t",
    alpha_bar_prev: r"\bar\alpha_{t-1}",
    var_q: r"\sigma_q^2",
    var_theta: r"\sigma_\theta^2",
    snr_t: r"\mathrm{SNR}(t)",
    snr_s: r"\mathrm{SNR}(s)",
    x_0: "x_0",
    x_t: "x_t",
    x_prev: "x_{t-1}",
    x_next: "x_{t+1}",
    eps: r"\epsilon_0",
    x_0_hat: r"\hat x_\theta(x_t, t)",
    eps_hat: r"\hat\epsilon_\theta(x_t, t)",
    score: r"\nabla\log p(x_t)",
    score_hat: r"s_\theta(x_t, t)",
    mean_q: r"\mu_q",
    mean_p: r"\mu_p",
    var_p: r"\sigma_p^2",
    var: r"\sigma^2",
    mean: r"\mu",
    log_snr: r"\log\mathrm{SNR}",
    omega: r"\omega_\eta(t)",
    guidance_scale: r"\gamma",
    step_size: "c",
    sigma: r"\sigma",
}


def tex(expr, names: dict | None = None) -> str:
    """LaTeX of `expr` in the paper's typography (`names`: extra symbol -> LaTeX)."""
    return sp.latex(expr, symbol_names={**LATEX_NAMES, **(names or {})})


# --- additions (noise_params, interpretations) ---------------------------------------------
# v-prediction (Salimans & Ho 2022): v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0
v, v_hat = sp.symbols("v v_hat", **real)
# not the paper's: v-prediction (Salimans & Ho 2022) is defined in derivations, not in the paper
BEYOND_PAPER = {v, v_hat}
# the squared error ||x_hat_theta(x_t, t) - x_0||^2 that the loss weights multiply
sq_err = sp.Symbol("sq_err", nonnegative=True)
LATEX_NAMES.update(
    {
        v: "v",
        v_hat: r"\hat v_\theta(x_t, t)",
        sq_err: r"\left\lVert\hat{x}_{\theta}(x_t, t) - x_0\right\rVert_2^2",
    }
)

# --- added for the background section (elbo, vae, hvae; eqs. (1)-(29)) ---------------------
# Linear-Gaussian latent model: z ~ N(0, 1), x | z ~ N(w z + b, var_x); q(z | x) = N(mean_q, var_q).
w, b = sp.symbols("w b", **real)  # decoder weight and bias
var_x = sp.Symbol("var_x", **positive)  # decoder (observation) noise variance s^2
LATEX_NAMES.update({w: "w", b: "b", var_x: "s^2", z: "z"})

# --- schedules in log space (the reference's and torch's Schedule tables) --------------------
# Not the paper's symbols: beta_t = 1 - alpha_t (DDPM's name, NOTATION.md) and the logs of the
# cumulative products, in which a schedule's coefficients are computed without cancellation.
beta_t = sp.Symbol("beta_t", **positive)
log_alpha_bar_t = sp.Symbol("log_alpha_bar_t", negative=True)  # alpha_bar_t < 1
log_alpha_bar_prev = sp.Symbol("log_alpha_bar_prev", nonpositive=True)  # alpha_bar_0 = 1
BEYOND_PAPER |= {beta_t, log_alpha_bar_t, log_alpha_bar_prev}
LATEX_NAMES.update(
    {
        beta_t: r"\beta_t",
        log_alpha_bar_t: r"\log\bar\alpha_t",
        log_alpha_bar_prev: r"\log\bar\alpha_{t-1}",
    }
)
