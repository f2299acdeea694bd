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
# Monte Carlo: |estimate - exact| <= MC_SIGMAS standard errors (false alarm ~ 6e-5 per test,
# all tests seeded so a run is repeatable).
MC_SIGMAS = 4.0

# --- added for the background section (elbo, vae, hvae) ---
# float32 torch vs float64 reference for ELBO-type sums of O(10) terms (logs, squares,
# quotients): 64 ulps of the largest term's magnitude; cancellation between terms makes a
# bound relative to the result meaningless.
F32_SUM_ULPS = 64
# Training a linear VAE for a few hundred Adam steps on 500 pPCA points: the average ELBO
# gets within this many nats per data point of the analytic optimum (measured: ~0.015).
LINEAR_VAE_NATS = 0.05
