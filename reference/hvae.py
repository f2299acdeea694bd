"""Hierarchical VAEs (background, eqs. (23)-(29)): float64 reference.

Closed forms for the two-level linear-Gaussian Markovian HVAE, generated from
`udm.derivations.hvae` into `udm.reference._generated.hvae` and re-exported here.
"""

from udm.reference._generated.hvae import hvae_elbo, log_evidence, posterior_kl  # noqa: F401
