"""The naming convention: each of the paper's symbols and the one Python name it has everywhere.

This table is the single source of docs/notation.md (written by docs/conf.py on every docs
build; tests/test_docs.py checks that the committed file is current), which README.md links.
Each row: (the symbol as the paper writes it, in LaTeX; the Python name(s); what it is).
"""

from __future__ import annotations

INTRO = """\
Every function in `derivations`, `reference` and `torch_impl` takes the paper's quantities
as keyword arguments with the names below, so code can be read against the page and any
formula called with the paper's names. Indices follow the paper: the data is `x_0`, the
latents are `x_1 .. x_T`, `t` runs from 1 to T, and `alpha_bar_0 = 1`. Code that counts
time steps from 0 (DDPM-style libraries) is converted at the boundary only, never inside the
math (see the DDPM mapping page)."""

SHAPES = """\
Shapes: arguments are scalars or arrays that broadcast; a quantity indexed by time, of shape
`(B,)`, broadcasts against data of shape `(B, ...)`. Any reduction over the data dimensions
is said in the function's name (`..._per_dim`, `..._sum`) or its docstring."""

# (paper symbol in LaTeX, Python names, meaning)
ROWS: list[tuple[str, str, str]] = [
    (r"x, x_0", "`x_0`", "a data sample"),
    (r"z", "`z`", "the latent of a VAE"),
    (
        r"x_t, x_{t-1}, x_{t+1}",
        "`x_t`, `x_prev`, `x_next`",
        "latents of the diffusion chain",
    ),
    (
        r"t, T, s \;(s < t)",
        "`t`, `T`, `s`",
        "time steps: integers in discrete time, reals in [0, 1] in continuous time",
    ),
    (
        r"\alpha_t",
        "`alpha_t`",
        r"forward coefficient: $q(x_t \mid x_{t-1}) = \mathcal{N}(\sqrt{\alpha_t}\, x_{t-1}, (1 - \alpha_t) I)$",
    ),
    (
        r"\bar\alpha_t, \bar\alpha_{t-1}",
        "`alpha_bar_t`, `alpha_bar_prev`",
        r"$\bar\alpha_t = \prod_{i=1}^{t} \alpha_i$, and $\bar\alpha_{t-1}$ one step earlier",
    ),
    (
        r"\beta_t = 1 - \alpha_t",
        "`beta_t`",
        "used only where we meet DDPM-style code; the math is written with alpha",
    ),
    (r"\epsilon, \epsilon_0", "`eps`", "standard normal noise"),
    (
        r"\mu_q(x_t, x_0), \sigma_q^2(t)",
        "`mu_q`, `var_q` (`log_var_q`)",
        r"mean and variance of the posterior $q(x_{t-1} \mid x_t, x_0)$",
    ),
    (
        r"\mu_\theta(x_t, t), \sigma^2",
        "`mu_theta`, `var_theta`",
        r"mean and variance of the learned $p_\theta(x_{t-1} \mid x_t)$",
    ),
    (r"\hat x_\theta(x_t, t)", "`x_0_hat`", "the predicted clean sample"),
    (r"\hat\epsilon_\theta(x_t, t)", "`eps_hat`", "the predicted noise"),
    (
        r"s_\theta(x_t, t), \nabla \log p(x_t)",
        "`score_hat`, `score`",
        "the predicted score and the true score",
    ),
    (
        r"\mathrm{SNR}(t)",
        "`snr`, `snr_t`, `snr_s`",
        r"signal-to-noise ratio $\bar\alpha_t / (1 - \bar\alpha_t)$",
    ),
    (
        r"\omega_\eta(t)",
        "`omega`",
        r"the monotone network of a learned schedule: $\mathrm{SNR}(t) = \exp(-\omega_\eta(t))$",
    ),
    (r"\log \mathrm{SNR}", "`log_snr`", "the parameter preferred inside numerical code"),
    (
        r"\mathcal{N}(x; \mu, \sigma^2 I)",
        "`mean`, `var`, `log_var`",
        "parameters of a Gaussian; a KL between two takes `mean_q, var_q, mean_p, var_p`",
    ),
    (r"\phi, \theta", "`phi`, `theta`", "parameters of the encoder and of the decoder"),
    (
        r"\sigma_1 < \dots < \sigma_L",
        "`sigma`, `sigmas`",
        "noise scales of score-based models",
    ),
    (
        r"\epsilon \text{ (Langevin step)}",
        "`step_size`",
        "the step of Langevin dynamics (never `eps`, which is the noise)",
    ),
    (r"y", "`y`", "what the model is conditioned on (a class label, a text)"),
    (r"\gamma", "`guidance_scale`", "strength of classifier or classifier-free guidance"),
    (
        r"v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1 - \bar\alpha_t}\, x_0",
        "`v`, `v_hat`",
        "the velocity target (Salimans and Ho 2022) and its prediction",
    ),
    (
        r"\eta, \sigma_t \text{ (DDIM)}",
        "`eta`, `sigma_ddim`",
        "DDIM (Song et al. 2021): eta = 1 gives var_q, eta = 0 the deterministic sampler",
    ),
    (
        r"t_1 < \dots < t_k",
        "`timesteps`",
        "a respaced grid of the paper's 1-based t; 0-based (`timestep_index`) only at DDPM-style interfaces",
    ),
    (
        r"\text{reverse-step variance}",
        "`variance`: `small`, `large`, `learned`",
        "var_q, beta_t, or improved-DDPM's exp(v log beta_t + (1 - v) log var_q) with `v_interp`",
    ),
]


def _cell(text: str) -> str:
    return text.replace("|", r"\|")  # a table's column separator; math uses \mid


def markdown() -> str:
    """The notation page (MyST markdown; the symbols are inline math)."""
    lines = [
        "# Notation",
        "",
        "<!-- Generated from udm/notation.py by docs/conf.py: edit that file, not this one. -->",
        "",
        INTRO,
        "",
        "| paper | Python | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| ${_cell(tex)}$ | {_cell(names)} | {_cell(what)} |" for tex, names, what in ROWS]
    lines += ["", SHAPES, ""]
    return "\n".join(lines)


def python_names() -> set[str]:
    """Every Python name in the table (the words in backticks)."""
    out: set[str] = set()
    for _, names, _ in ROWS:
        out.update(names.split("`")[1::2])
    return out
