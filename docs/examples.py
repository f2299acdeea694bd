"""One worked example per paper section: a few lines a teacher can paste into a lecture.

`docs/gen_sections.py` puts each on its section's page; tests/test_docs.py runs every one,
so the printed numbers in the docs are the numbers the code gives.
"""

EXAMPLES = {
    "elbo": """\
import reference.elbo as E

# z ~ N(0, 1), x | z ~ N(2 z + 1, 0.5): the ELBO of any q(z | x) = N(m, v) plus its KL to the
# true posterior is log p(x), eqs. (9)-(16)
args = dict(x_0=0.3, w=2.0, b=1.0, var_x=0.5)
for m, v in [(0.0, 1.0), (-0.2, 0.1)]:
    gap = E.log_evidence(**args) - E.elbo(**args, mean_q=m, var_q=v)
    print(round(float(gap), 12) == round(float(E.kl_to_posterior(**args, mean_q=m, var_q=v)), 12))
""",
    "vae": """\
import reference.vae as VAE

# prior-matching term of eq. (19): KL(N(mu, sigma^2) || N(0, 1)) per latent coordinate
print(VAE.kl_standard_normal(mean_q=[0.0, 1.0, 0.0], var_q=[1.0, 1.0, 0.25]))
""",
    "hvae": """\
import reference.hvae as H

# two-level linear-Gaussian HVAE: the Markovian ELBO of eq. (29) never exceeds log p(x)
model = dict(x_0=0.7, w_1=1.5, b_1=0.0, var_1=0.3, w_2=0.8, b_2=0.1, var_2=0.5)
elbo = H.hvae_elbo(**model, mean_q1=0.2, var_q1=0.4, a_2=0.5, c_2=0.0, var_q2=0.6)
print(bool(elbo <= H.log_evidence(**model)))
""",
    "vdm": """\
import reference.vdm as V

# eq. (85) at three numbers, and q(x_t | x_0) of eq. (70) on DDPM's linear schedule
print(V.var_q(alpha_t=0.98, alpha_bar_t=0.5, alpha_bar_prev=0.5 / 0.98))
s = V.linear_schedule(T=1000)
print(s.alpha_bar_t[999], V.q_var(alpha_bar_t=s.alpha_bar_t[999]))
""",
    "noise_params": """\
import reference.noise_params as N

# the x_0-loss weight of eq. (99) is half the SNR drop, eq. (108)
a_prev, a_t = 0.9, 0.9 * 0.95
print(N.x0_loss_weight(alpha_t=0.95, alpha_bar_prev=a_prev),
      N.x0_loss_weight_snr(snr_s=N.snr(alpha_bar_t=a_prev), snr_t=N.snr(alpha_bar_t=a_t)))
""",
    "interpretations": """\
import reference.interpretations as I

# one noisy point, three equivalent predictions: x_0 (eq. (115)), eps, score (eq. (151))
x_t, eps, ab = 0.4, -1.2, 0.6
x_0 = I.x_0_from_eps(x_t=x_t, eps_hat=eps, alpha_bar_t=ab)
score = I.score_from_eps(eps_hat=eps, alpha_bar_t=ab)
print(x_0, I.x_0_from_score(x_t=x_t, score_hat=score, alpha_bar_t=ab))
""",
    "score": """\
import numpy as np
import reference.score as S

# Langevin dynamics, eq. (158), with the exact score of N(2, 1): samples settle near N(2, 1)
rng = np.random.default_rng(0)
x = S.langevin_sample(score_fn=lambda x: -(x - 2.0), x=np.zeros(20000), step_size=0.01,
                      n_steps=2000, rng=rng)
print(round(float(x.mean()), 1), round(float(x.var()), 1))
""",
    "guidance": """\
import reference.guidance as G

# classifier-free guidance, eq. (170): gamma = 1 is the conditional score, gamma = 0 the
# unconditional one, gamma = 3 extrapolates past the conditional
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
