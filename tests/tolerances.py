"""Named tolerances, each with the reason it is as wide as it is. Import; never inline."""

import numpy as np

# float64 closed form vs the same closed form evaluated another way (reference vs torch,
# generated code vs SymPy): a handful of roundings, each <= 2^-53 relative.
F64 = {"rtol": 1e-12, "atol": 1e-300}
# float64 vs an independent numerical route (scipy quadrature, torch.distributions' own
# formula): quadrature is asked for 1e-11 relative; the absolute floor covers KL ~ 0.
F64_VS_QUADRATURE = {"rtol": 1e-9, "atol": 1e-11}
# float32 torch vs float64 reference for a few multiplications/sqrt: <= 4 ulps of float32
# relative to the result (2^-23 ~ 1.19e-7 per ulp), plus an absolute floor of 4 ulps of the
# largest input magnitude where cancellation makes a relative bound meaningless.
F32_ULPS = 4
F32_EPS = float(np.finfo(np.float32).eps)
F32 = {"rtol": F32_ULPS * F32_EPS, "atol": F32_ULPS * F32_EPS}
# float32's smallest subnormal, 2^-149: below 2^-126 a rounding errs by up to half of it in
# absolute terms, however small the result, so a bound relative to the result needs this floor.
F32_SUBNORMAL = float(np.finfo(np.float32).smallest_subnormal)
# Monte Carlo: |estimate - exact| <= MC_SIGMAS standard errors (false alarm ~ 6e-5 per test,
# all tests seeded so a run is repeatable).
MC_SIGMAS = 4.0

# --- additions (noise_params, interpretations) ---------------------------------------------
# Prediction conversions (x_0 / eps / score / v) vs a 50-digit mpmath value at the same
# (rounded) inputs: the error is measured in ulps of the formula's condition scale, the sum of
# the absolute values of its terms divided by its divisor (a sum of two rounded products can
# not do better). Measured worst over 300 random draws per function and dtype, alpha_bar from
# 1e-12 to 1 - 1e-15: 1.5 ulps via alpha_bar_t, 4.7 ulps via log_snr (exp(logsigmoid / 2)
# turns the absolute error of logsigmoid into a relative one). Bound: 8.
CONVERSION_ULPS = 8
# Round trips through three conversions, relative to the same kind of scale: three of the
# above in sequence (each scale <= the next's by construction of x_t): 4 * CONVERSION_ULPS.
ROUND_TRIP_ULPS = 4 * CONVERSION_ULPS
# 1-D Gauss-Kronrod quadrature of E[x_0 | x_t] asked for 1e-12 relative: ratio of two
# integrals, both with relative error ~1e-12 -> 1e-9 leaves a margin of 100x.
QUADRATURE_RATIO = {"rtol": 1e-9, "atol": 1e-9}

# --- added for the background section (elbo, vae, hvae) ---
# float32 torch vs float64 reference for ELBO-type sums of O(10) terms (logs, squares,
# quotients): 64 ulps of the largest term's magnitude; cancellation between terms makes a
# bound relative to the result meaningless.
F32_SUM_ULPS = 64
# Training a linear VAE for a few hundred Adam steps on 500 pPCA points: the average ELBO
# gets within this many nats per data point of the analytic optimum (measured: ~0.015).
LINEAR_VAE_NATS = 0.05
