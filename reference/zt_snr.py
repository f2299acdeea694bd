"""Zero terminal SNR (Lin et al. 2023): float64 reference, generated from derivations/zt_snr.py."""

from udm.reference._generated.zt_snr import zero_terminal_snr_sqrt_alpha_bar  # noqa: F401
