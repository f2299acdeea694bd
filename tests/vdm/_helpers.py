"""Shared by the VDM test files: a value as a tensor on a device, float64 eps, a schedule with
a time step (Hypothesis), and the reference and torch schedules of the same alphas."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

import udm.reference.vdm as ref
import udm.torch_impl.vdm as tim
from tests.strategies import schedules


def _t(value, dtype, device):
    return torch.as_tensor(np.asarray(value), dtype=dtype, device=device)


F64_EPS = float(np.finfo(np.float64).eps)


@st.composite
def schedule_and_t(draw, max_T: int = 4000):
    """(alphas, t): a generated schedule and a time step in 1..T, edges pinned often."""
    alphas = draw(schedules(max_T=max_T))
    T = alphas.size
    t = draw(st.one_of(st.just(1), st.just(T), st.integers(1, T)))
    return alphas, t


def _both(alphas):
    """The reference schedule and the torch schedule (float64) of the same alphas."""
    return ref.schedule_from_alphas(alphas), tim.schedule_from_alphas(alphas, dtype=torch.float64)
