"""DDIM (Song, Meng, Ermon 2021): float64 reference, generated from derivations/ddim.py."""

from udm.reference._generated.ddim import ddim_posterior_mean, ddim_step, ddim_variance  # noqa: F401
