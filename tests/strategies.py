"""Hypothesis strategies for valid objects: schedules, time steps, Gaussians, shapes.

Validity is built in (bounds, sorted products), not filtered, and edges are drawn
deliberately: alpha_bar near 1 (t = 1 of a fine schedule) and near 0 (t = T), T = 1.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

# alpha_bar strictly inside (0, 1], including the extremes a float32 user meets.
alpha_bars = st.one_of(
    st.floats(1e-6, 1.0, exclude_min=True),
    st.floats(1.0 - 1e-4, 1.0),  # near 1: t = 1 of DDPM-like schedules
    st.floats(1e-12, 1e-4),  # near 0: t = T
)
alphas = st.floats(1e-4, 1.0, exclude_min=True)
reals = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
positives = st.floats(1e-6, 1e6)


@st.composite
def schedules(draw, min_T: int = 1, max_T: int = 4000) -> np.ndarray:
    """alpha_1..alpha_T in (0, 1]; alpha_bar = cumprod is then strictly decreasing when
    every alpha < 1. Returns the float64 alphas."""
    T = draw(st.one_of(st.just(min_T), st.integers(min_T, max_T)))
    kind = draw(st.sampled_from(["linear", "constant", "random"]))
    if kind == "linear":
        beta_start = draw(st.floats(1e-5, 1e-2))
        beta_end = draw(st.floats(beta_start, 0.05))
        betas = np.linspace(beta_start, beta_end, T)
    elif kind == "constant":
        betas = np.full(T, draw(st.floats(1e-5, 0.5)))
    else:
        seed = draw(st.integers(0, 2**32 - 1))
        betas = np.random.default_rng(seed).uniform(1e-5, 0.2, size=T)
    return 1.0 - betas


@st.composite
def gaussians(draw, shape=()):
    """(mean, var) of a diagonal Gaussian with the given shape (scalars by default)."""
    n = int(np.prod(shape)) if shape else 1
    means = draw(st.lists(st.floats(-10, 10), min_size=n, max_size=n))
    vars_ = draw(st.lists(st.floats(1e-4, 1e3), min_size=n, max_size=n))
    return np.reshape(means, shape), np.reshape(vars_, shape)


batch_shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


# --- added for the background section (elbo, vae, hvae; eqs. (1)-(29)) ---------------------
@st.composite
def linear_gaussian_models(draw):
    """(x_0, w, b, var_x) of z ~ N(0, 1), x | z ~ N(w z + b, var_x), incl. w = 0 and tiny noise."""
    return {
        "x_0": draw(st.floats(-20, 20)),
        "w": draw(st.one_of(st.just(0.0), st.floats(-5, 5))),
        "b": draw(st.floats(-5, 5)),
        "var_x": draw(st.floats(1e-3, 1e2)),
    }


encoders_q = st.fixed_dictionaries({"mean_q": st.floats(-10, 10), "var_q": st.floats(1e-3, 1e2)})
