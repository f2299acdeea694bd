"""Improved DDPM (Nichol and Dhariwal 2021): float64 reference, generated from derivations/iddpm.py."""

from udm.reference._generated.iddpm import interpolated_variance  # noqa: F401
