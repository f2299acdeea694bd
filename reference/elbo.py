"""Evidence lower bound (background, eqs. (1)-(16)): float64 reference.

Closed forms for the linear-Gaussian latent model z ~ N(0, 1), x | z ~ N(w z + b, var_x)
with q(z | x) = N(mean_q, var_q), generated from `udm.derivations.elbo` into
`udm.reference._generated.elbo` and re-exported here.
"""

# log p(x) (eq. (1)), the true posterior (eq. (2)), the ELBO (eq. (3)), KL to the posterior
from udm.reference._generated.elbo import (  # noqa: F401
    elbo,
    kl_to_posterior,
    log_evidence,
    posterior_mean,
    posterior_var,
)
