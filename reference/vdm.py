"""Variational diffusion models (section 2.1, eqs. (30)-(100)): float64 reference.

The closed forms are generated from `derivations.vdm` into `reference._generated.vdm`
and re-exported here, so `reference.vdm.q_sample` is the derivation's result verbatim.
"""

from reference._generated.vdm import kl_normal, q_mean, q_sample, q_var

__all__ = ["kl_normal", "q_mean", "q_sample", "q_var"]
