"""Variational autoencoders (background, eqs. (17)-(22)): float64 reference.

Generated from `udm.derivations.vae`: the reconstruction term of the linear-Gaussian decoder,
the prior-matching KL to N(0, 1) and the reparameterization. Hand-written (no closed form
to generate from a scalar derivation): the full-covariance Gaussian KL, the vector linear
VAE's ELBO, and its analytic optimum, probabilistic PCA (Tipping & Bishop 1999).
"""

from __future__ import annotations

import numpy as np

from udm import checks, register
from udm.reference._args import as_float64
from udm.reference._generated.vae import (  # noqa: F401
    kl_standard_normal,
    reconstruction_term,
    reparameterize,
)


def _spd(name: str, cov: np.ndarray) -> np.ndarray:
    """Cholesky factor of a symmetric positive-definite [..., k, k] matrix, or a ValueError."""
    if cov.ndim < 2 or cov.shape[-1] != cov.shape[-2]:
        raise ValueError(f"{name} must be a [..., k, k] covariance matrix, got {cov.shape}")
    if not np.allclose(cov, np.swapaxes(cov, -1, -2), rtol=1e-12, atol=0):
        raise ValueError(f"{name} must be symmetric")
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError(f"{name} must be positive definite") from None


@register(19, 22)
def kl_gaussians_full(*, mean_q, cov_q, mean_p, cov_p):
    r"""KL(N(mean_q, cov_q) || N(mean_p, cov_p)) for full covariances: the prior-matching
    term of eqs. (19), (22) for a full-covariance encoder (cov_p = I for p(z) of eq. (21)).

    .. math:: \tfrac12\left[\operatorname{tr}(\Sigma_p^{-1}\Sigma_q) + (\mu_p - \mu_q)^T
       \Sigma_p^{-1}(\mu_p - \mu_q) - k + \log\frac{\det\Sigma_p}{\det\Sigma_q}\right]

    Shapes: means [..., k], covariances [..., k, k] (symmetric positive definite); batch
    dimensions broadcast. Returns [...] float64. Computed with Cholesky factors.
    """
    mean_q = as_float64("mean_q", mean_q)
    mean_p = as_float64("mean_p", mean_p)
    cov_q = as_float64("cov_q", cov_q)
    cov_p = as_float64("cov_p", cov_p)
    lq, lp = _spd("cov_q", cov_q), _spd("cov_p", cov_p)
    k = mean_q.shape[-1] if mean_q.ndim else 0
    for name, arr in (("mean_p", mean_p), ("cov_q", cov_q), ("cov_p", cov_p)):
        if arr.shape[-1] != k:
            raise ValueError(f"{name} has last dimension {arr.shape[-1]}, mean_q has {k}")
    checks.broadcastable(
        {
            "mean_q": mean_q.shape[:-1],
            "mean_p": mean_p.shape[:-1],
            "cov_q": cov_q.shape[:-2],
            "cov_p": cov_p.shape[:-2],
        }
    )
    batch = np.broadcast_shapes(lq.shape, lp.shape)
    lq, lp = np.broadcast_to(lq, batch), np.broadcast_to(lp, batch)
    # tr(Sp^-1 Sq) = ||Lp^-1 Lq||_F^2 ; Mahalanobis term = ||Lp^-1 (mu_p - mu_q)||^2
    a = np.linalg.solve(lp, lq)
    diff = np.broadcast_to(mean_p - mean_q, batch[:-1])[..., None]
    m = np.linalg.solve(lp, diff)[..., 0]
    log_det = 2 * (
        np.log(np.diagonal(lp, axis1=-2, axis2=-1)).sum(-1)
        - np.log(np.diagonal(lq, axis1=-2, axis2=-1)).sum(-1)
    )
    return 0.5 * ((a**2).sum((-2, -1)) + (m**2).sum(-1) - k + log_det)


def _linear_model_args(x_0, w, b, var_x):
    x_0 = as_float64("x_0", x_0)
    w = as_float64("w", w)
    b = as_float64("b", b)
    var_x = as_float64("var_x", var_x, "positive")
    if x_0.ndim != 2 or w.ndim != 2 or x_0.shape[1] != w.shape[0]:
        raise ValueError(f"need x_0 [N, d] and w [d, k]; got x_0{x_0.shape}, w{w.shape}")
    checks.broadcastable({"x_0": x_0.shape, "b": b.shape})
    if var_x.ndim:
        raise ValueError("var_x must be a scalar (isotropic decoder noise)")
    return x_0, w, b, var_x


@register(19)
def linear_vae_elbo(*, x_0, w, b, var_x, mean_q, var_q):
    r"""ELBO of a linear Gaussian VAE with a diagonal encoder, eq. (19), per data point.

    Decoder p(x | z) = N(w z + b, var_x I), prior N(0, I), encoder N(mean_q, diag(var_q)):
    reconstruction E_q[log p(x|z)] = -d/2 log(2 pi var_x) - (||x - w mean_q - b||^2 +
    sum_j var_q_j ||w_{:, j}||^2) / (2 var_x), minus KL(q || N(0, I)) (eq. (19)).

    Shapes: x_0 [N, d], w [d, k], b [d], var_x scalar, mean_q [N, k], var_q [N, k] or [k].
    Returns [N] float64.
    """
    x_0, w, b, var_x = _linear_model_args(x_0, w, b, var_x)
    mean_q = as_float64("mean_q", mean_q)
    var_q = as_float64("var_q", var_q, "positive")
    k = w.shape[1]
    if mean_q.shape[-1] != k or var_q.shape[-1] != k:
        raise ValueError(f"mean_q and var_q need last dimension k = {k}")
    checks.broadcastable({"mean_q": mean_q.shape, "var_q": var_q.shape})
    d = x_0.shape[1]
    resid = x_0 - mean_q @ w.T - b
    col_norms = (w**2).sum(0)
    recon = -0.5 * d * np.log(2 * np.pi * var_x) - (
        (resid**2).sum(-1) + (var_q * col_norms).sum(-1)
    ) / (2 * var_x)
    kl = kl_standard_normal(mean_q=mean_q, var_q=np.broadcast_to(var_q, mean_q.shape)).sum(-1)
    return recon - kl


@register(1, 19)
def ppca_log_likelihood(*, x_0, w, b, var_x):
    r"""Exact log-evidence log p(x) (eq. (1)) of the linear Gaussian VAE's generative model,
    the upper bound of its ELBO (eq. (19)): x ~ N(b, w w^T + var_x I).

    Shapes: x_0 [N, d], w [d, k], b [d], var_x scalar. Returns [N] float64.
    """
    x_0, w, b, var_x = _linear_model_args(x_0, w, b, var_x)
    d = x_0.shape[1]
    cov = w @ w.T + var_x * np.eye(d)
    chol = np.linalg.cholesky(cov)
    sol = np.linalg.solve(chol, (x_0 - b).T)
    return -0.5 * (d * np.log(2 * np.pi) + 2 * np.log(np.diag(chol)).sum() + (sol**2).sum(0))


@register(19, 22)
def linear_vae_optimum(*, x_0, latent_dim: int):
    r"""Analytic global optimum of the linear VAE objective (eqs. (19), (22)): probabilistic PCA.

    Tipping & Bishop (1999): with sample covariance eigenvalues l_1 >= ... >= l_d and
    eigenvectors U, the maximum-likelihood var_x = mean(l_{k+1..d}), w = U_k (L_k - var_x I)^{1/2}
    (columns orthogonal, so w^T w is diagonal), b = mean of the data. The exact posterior
    N(M^{-1} w^T (x - b), var_x M^{-1}), M = w^T w + var_x I, is then diagonal, so a
    diagonal-Gaussian encoder attains ELBO = log-likelihood: the optimum's ELBO equals the pPCA
    log-likelihood (Lucas et al. 2019).

    Returns a dict: w [d, k], b [d], var_x, enc_w [k, d], enc_b [k] (encoder mean
    enc_w x + enc_b), var_q [k], and elbo [N] (equal to `ppca_log_likelihood`).
    """
    x_0 = as_float64("x_0", x_0)
    if x_0.ndim != 2:
        raise ValueError(f"x_0 must be [N, d], got {x_0.shape}")
    n, d = x_0.shape
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or not 1 <= latent_dim < d:
        raise ValueError(f"latent_dim must be an int with 1 <= latent_dim < d = {d}")
    b = x_0.mean(0)
    cov = (x_0 - b).T @ (x_0 - b) / n
    evals, evecs = np.linalg.eigh(cov)
    evals, evecs = evals[::-1], evecs[:, ::-1]
    var_x = evals[latent_dim:].mean()
    w = evecs[:, :latent_dim] * np.sqrt(np.maximum(evals[:latent_dim] - var_x, 0.0))
    m_diag = (w**2).sum(0) + var_x
    enc_w = w.T / m_diag[:, None]
    enc_b = -enc_w @ b
    var_q = var_x / m_diag
    mean_q = x_0 @ enc_w.T + enc_b
    elbo = linear_vae_elbo(x_0=x_0, w=w, b=b, var_x=var_x, mean_q=mean_q, var_q=var_q)
    return {
        "w": w,
        "b": b,
        "var_x": var_x,
        "enc_w": enc_w,
        "enc_b": enc_b,
        "var_q": var_q,
        "elbo": elbo,
    }
