"""Variational diffusion models (section 2.1, eqs. (30)-(100)): float64 reference.

The closed forms are generated from `derivations.vdm` into `reference._generated.vdm`
and re-exported here, so `reference.vdm.q_sample` is the derivation's result verbatim.
"""

# q(x_t | x_0), eqs. (69)-(70), and the Gaussian KL, eq. (86)
from reference._generated.vdm import kl_normal, q_mean, q_sample, q_var  # noqa: F401

# --- (region: VDM ELBO, eqs. (30)-(58)) ---


# --- (region: VDM posterior, schedules, denoising objective, eqs. (71)-(100)) ---
