"""Worked examples, every one executed: by the docs build and by tests/test_docs.py.

* EXAMPLES: one per paper section, a few lines a teacher can paste into a lecture
  (`docs/gen_sections.py` puts each on its section's page);
* TORCH_EXAMPLES: the PyTorch layer (docs/pytorch.md, written by docs/gen_pages.py);
* TUTORIAL: writing a derivation for the engine (docs/derivation_tutorial.md).

So the printed numbers in the docs are the numbers the code gives. Code lines stay within
76 characters, the width of a code box on a 1280 px screen (tests/test_docs.py checks).
"""

EXAMPLES = {
    "elbo": """\
import udm.reference.elbo as E

# z ~ N(0, 1), x | z ~ N(2 z + 1, 0.5): the ELBO of any q(z | x) = N(m, v)
# plus its KL to the true posterior is log p(x), eqs. (9)-(16)
args = dict(x_0=0.3, w=2.0, b=1.0, var_x=0.5)
for m, v in [(0.0, 1.0), (-0.2, 0.1)]:
    gap = E.log_evidence(**args) - E.elbo(**args, mean_q=m, var_q=v)
    kl = E.kl_to_posterior(**args, mean_q=m, var_q=v)
    print(round(float(gap), 12) == round(float(kl), 12))
""",
    "vae": """\
import udm.reference.vae as VAE

# prior-matching term of eq. (19): KL(N(mu, sigma^2) || N(0, 1)),
# per latent coordinate
print(VAE.kl_standard_normal(mean_q=[0.0, 1.0, 0.0],
                             var_q=[1.0, 1.0, 0.25]))
""",
    "hvae": """\
import udm.reference.hvae as H

# two-level linear-Gaussian HVAE: the Markovian ELBO of eq. (29)
# never exceeds log p(x)
model = dict(x_0=0.7, w_1=1.5, b_1=0.0, var_1=0.3,
             w_2=0.8, b_2=0.1, var_2=0.5)
elbo = H.hvae_elbo(**model, mean_q1=0.2, var_q1=0.4,
                   a_2=0.5, c_2=0.0, var_q2=0.6)
print(bool(elbo <= H.log_evidence(**model)))
""",
    "vdm": """\
import udm.reference.vdm as V

# eq. (85) at three numbers, and q(x_t | x_0) of eq. (70)
# on DDPM's linear schedule
print(V.var_q(alpha_t=0.98, alpha_bar_t=0.5, alpha_bar_prev=0.5 / 0.98))
s = V.linear_schedule(T=1000)
print(s.alpha_bar_t[999], V.q_var(alpha_bar_t=s.alpha_bar_t[999]))
""",
    "noise_params": """\
import udm.reference.noise_params as N
import udm.reference.vdm as V

# the x_0-loss weight of eq. (99) is half the SNR drop, eq. (108)
a_prev, a_t = 0.9, 0.9 * 0.95
snr_s, snr_t = N.snr(alpha_bar_t=a_prev), N.snr(alpha_bar_t=a_t)
w = V.x_0_loss_weight(alpha_t=0.95, alpha_bar_t=a_t, alpha_bar_prev=a_prev)
print(w, N.x0_loss_weight_snr(snr_s=snr_s, snr_t=snr_t))
""",
    "interpretations": """\
import udm.reference.interpretations as I

# one noisy point, three equivalent predictions:
# x_0 (eq. (115)), eps, score (eq. (151))
x_t, eps, ab = 0.4, -1.2, 0.6
x_0 = I.x_0_from_eps(x_t=x_t, eps_hat=eps, alpha_bar_t=ab)
score = I.score_from_eps(eps_hat=eps, alpha_bar_t=ab)
print(x_0, I.x_0_from_score(x_t=x_t, score_hat=score, alpha_bar_t=ab))
""",
    "score": """\
import numpy as np
import udm.reference.score as S

# Langevin dynamics, eq. (158), with the exact score of N(2, 1):
# the samples settle near N(2, 1)
rng = np.random.default_rng(0)
x = S.langevin_sample(score_fn=lambda x: -(x - 2.0), x=np.zeros(20000),
                      step_size=0.01, n_steps=2000, rng=rng)
print(round(float(x.mean()), 1), round(float(x.var()), 1))
""",
    "guidance": """\
import udm.reference.guidance as G

# classifier-free guidance, eq. (170): gamma = 1 is the conditional
# score, gamma = 0 the unconditional one, gamma = 3 extrapolates past
# the conditional
for gamma in (0.0, 1.0, 3.0):
    print(G.cfg_score(score=-1.0, score_cond=0.5, guidance_scale=gamma))
""",
}

FIGURES = {
    "noise_params": (
        "noise_schedules.png",
        "log-SNR and SNR of the linear, cosine, scaled-linear "
        "and a learned schedule; the three optimal predictions side by side",
    ),
    "score": (
        "score_guidance.png",
        "annealed Langevin trajectories on a 2-D mixture and "
        "samples at several classifier-free guidance scales",
    ),
}


# --- The PyTorch layer (docs/pytorch.md, written by docs/gen_pages.py) ---------------------
# Each: (anchor, title, what it shows, code). Executed on every docs build and by
# tests/test_docs.py; the page shows what each printed.
TORCH_EXAMPLES = [
    (
        "posterior",
        "The posterior q(x_{t-1} | x_t, x_0), eqs. (84)-(85)",
        "A `Schedule` holds every coefficient of a noise schedule as a table indexed by the "
        "paper's t (1..T), computed once in float64. `posterior_mean` and `posterior_var` "
        "read them for a batch of time steps; the formula functions `mu_q` and `var_q` take "
        "the same quantities as keyword arguments named as in the notation table, and agree.",
        """\
import torch
from udm.torch_impl import vdm

torch.manual_seed(0)
f64 = torch.float64
# DDPM's linear schedule, T = 1000: float64 tables indexed by the paper's t
s = vdm.linear_schedule(T=1000, dtype=f64)
t = torch.tensor([2, 10, 500, 1000])           # one time step per batch row
x_t, x_0 = torch.randn(4, 3, dtype=f64), torch.zeros(4, 3, dtype=f64)

mean = s.posterior_mean(x_t=x_t, x_0=x_0, t=t)  # mu_q(x_t, x_0), eq. (84)
var = s.posterior_var(t, x_t)                   # sigma_q^2(t), eq. (85)

# the same from the formulas, called with the paper's names
a, ab, ab_prev = (s.gather(k, t, x_t)
                  for k in ("alpha_t", "alpha_bar_t", "alpha_bar_prev"))
mu = vdm.mu_q(x_t=x_t, x_0=x_0, alpha_t=a, alpha_bar_t=ab,
              alpha_bar_prev=ab_prev)
print(torch.allclose(mean, mu))
print(var.flatten())
var_q = vdm.var_q(alpha_t=a, alpha_bar_t=ab, alpha_bar_prev=ab_prev)
print(var_q.flatten())
""",
    ),
    (
        "elbo-bits-per-dim",
        "The ELBO in bits per dimension, eq. (58), all T terms at once",
        "`nll_bits_per_dim` evaluates the negative ELBO of eq. (58) for each sample with one "
        "denoiser call on T x B inputs (no Python loop over t) and converts nats to bits per "
        "dimension. On N(0, I) data both the true likelihood and the best denoiser are known "
        "in closed form, so the bound can be seen to hold, and to be loose for a bad denoiser.",
        """\
import math

import torch
from udm.torch_impl import vdm

# Data x_0 ~ N(0, I) in 2 dimensions: its true -log2 p(x_0) is known, and
# so is the best denoiser: E[x_0 | x_t] = sqrt(alpha_bar_t) x_t, eq. (70)
torch.manual_seed(0)
s = vdm.cosine_schedule(T=1000, dtype=torch.float64)
x_0 = torch.randn(256, 2, dtype=torch.float64)


def best(x_t, t):                      # x_0_hat(x_t, t)
    return s.gather("sqrt_alpha_bar_t", t, x_t) * x_t


def lazy(x_t, t):                      # predicts the mean, 0, always
    return torch.zeros_like(x_t)


# eq. (58) per sample, all T terms in one batched call;
# levels=None: continuous data (a density, not 8-bit pixels)
for name, denoiser in (("best", best), ("lazy", lazy)):
    bpd = vdm.nll_bits_per_dim(s, denoiser, x_0, levels=None)
    print(f"{name}: -ELBO = {bpd.mean():.3f} bits/dim")
nats = (0.5 * x_0**2 + 0.5 * math.log(2 * math.pi)).mean()  # exact
print(f"true -log2 p(x_0) = {nats / math.log(2):.3f} bits/dim")
""",
    ),
    (
        "training-loop",
        "A training loop in about 30 lines",
        "A small network learns to predict the noise (DDPM's simple loss) on a 2-D mixture, "
        "with nothing but `torch` and `torch_impl`: `Schedule.q_sample` draws x_t (eq. (69)), "
        "`x_0_from_eps` turns the noise prediction into the x_0 prediction (eq. (115)) that "
        "`nll_bits_per_dim` bounds. The -ELBO before and after training shows what was learnt "
        "(`udm train` is the full version: checkpoints, sampling, figures).",
        """\
import torch
from torch import nn
from udm.torch_impl import interpretations as I
from udm.torch_impl import vdm

torch.manual_seed(0)
# data: a 2-D mixture of four Gaussians; T = 100 steps, cosine schedule
centers = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [2.0, -2.0], [-2.0, -2.0]])
def data(n):
    return centers[torch.randint(0, 4, (n,))] + 0.3 * torch.randn(n, 2)
s = vdm.cosine_schedule(T=100)
net = nn.Sequential(nn.Linear(3, 64), nn.SiLU(), nn.Linear(64, 64),
                    nn.SiLU(), nn.Linear(64, 2))
def eps_hat(x_t, t):                    # predicts the noise, eq. (130)
    return net(torch.cat([x_t, (t.float() / s.T)[:, None]], dim=1))
def x_0_hat(x_t, t):                    # read as x_0_hat, eq. (115)
    ab = s.gather("alpha_bar_t", t, x_t)
    return I.x_0_from_eps(x_t=x_t, eps_hat=eps_hat(x_t, t), alpha_bar_t=ab)
def bound(x):                           # -ELBO, eq. (58), in bits/dim
    return vdm.nll_bits_per_dim(s, x_0_hat, x, levels=None).mean()

x_test = data(500)
print(f"before: -ELBO = {bound(x_test):.2f} bits/dim")
opt = torch.optim.Adam(net.parameters(), lr=2e-3)
for step in range(400):
    x_0, eps = data(128), torch.randn(128, 2)
    t = torch.randint(1, s.T + 1, (128,))        # t ~ U{1..T}
    x_t = s.q_sample(x_0=x_0, t=t, eps=eps)      # eq. (69)
    loss = ((eps_hat(x_t, t) - eps) ** 2).mean() # DDPM's simple loss
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 100 == 0:
        print(f"step {step}: loss {loss.item():.3f}")
with torch.no_grad():
    print(f"after:  -ELBO = {bound(x_test):.2f} bits/dim")
""",
    ),
]

# --- Writing a derivation (docs/derivation_tutorial.md) ------------------------------------
# Cells run in order in one namespace; each: (text before it, code).
TUTORIAL = [
    (
        "A derivation is a list of `Step`s. The first introduces an expression; each next "
        "one is a new form of it together with the *rule* that licenses the move "
        "(`udm.derivations.core.RULES` lists them). `facts` are substitutions the checker may "
        "use, each naming where it is proved (a `lemma`) or which definition it is; here "
        "eq. (70) one step back, proved by `udm.derivations.vdm.forward.alpha_bar_recursion`. A bare "
        "substitution is refused. `verify()` checks every step against the one "
        "before it: a numeric probe at random rational points first, then a symbolic proof "
        "(`expand`, `cancel`, `simplify`). Here it proves that the posterior's precision is "
        "the sum of the two precisions it came from:",
        """\
from udm.derivations.core import Derivation, Step, lemma
from udm.derivations.symbols import alpha_bar_prev, alpha_bar_t, alpha_t

# Claim: the posterior's precision is a sum of two precisions,
#   1 / sigma_q^2(t) = alpha_t / (1 - alpha_t) + 1 / (1 - alpha_bar_{t-1}),
# with sigma_q^2(t) of eq. (85).
var_q = (1 - alpha_t) * (1 - alpha_bar_prev) / (1 - alpha_bar_t)
d = Derivation(
    title="the posterior precision is a sum of precisions",
    equations=(85,),  # in a @register(85) builder: supplied, not typed
    facts=(lemma(alpha_bar_t, alpha_t * alpha_bar_prev,  # eq. (70)
                 "udm.derivations.vdm.forward.alpha_bar_recursion"),),
    steps=[
        Step(1 / var_q, "definition", "the inverse of eq. (85)"),
        Step((1 - alpha_t * alpha_bar_prev)
             / ((1 - alpha_t) * (1 - alpha_bar_prev)),
             "substitute", "alpha_bar_t = alpha_t alpha_bar_{t-1}"),
        Step(alpha_t / (1 - alpha_t) + 1 / (1 - alpha_bar_prev),
             "algebra", "partial fractions"),
    ],
)
for check in d.verify():
    print(check.index, check.rule, check.detail)
""",
    ),
    (
        "Now a deliberate mistake in the last line. The numeric probe refutes it at once and "
        "the error names the derivation, the step, its rule, by how much the two sides differ "
        "and where:",
        """\
from udm.derivations.core import DerivationError

# The same derivation with a slip in the last line:
# 1 / alpha_bar_{t-1} where 1 / (1 - alpha_bar_{t-1}) belongs
slip = Step(alpha_t / (1 - alpha_t) + 1 / alpha_bar_prev, "algebra")
wrong = Derivation(
    title="the posterior precision, with a slip",
    equations=(85,),
    facts=d.facts,
    steps=[*d.steps[:2], slip],
)
try:
    wrong.verify()
except DerivationError as error:
    print(error)
""",
    ),
]
