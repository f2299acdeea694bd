"""Hypothesis profiles and shared fixtures.

HYPOTHESIS_PROFILE=ci (default): derandomized, bounded, no deadline -- fast and repeatable.
HYPOTHESIS_PROFILE=dev: many examples, random seeds, for hunting bugs locally.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=40,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=1000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(items):
    """Every `eq` marker must name catalogued equations (a typo would silently drop a test)."""
    from udm import catalog

    known = catalog.load_all()  # the paper's numbers and the keys beyond it ('ddim.12')
    for item in items:
        for mark in item.iter_markers("eq"):
            bad = [n for n in mark.args if n not in known]
            if bad or not mark.args:
                raise pytest.UsageError(f"{item.nodeid}: eq marker with unknown numbers {bad}")


@pytest.fixture
def one_thread():
    """Run torch single-threaded: the small tensors of these tests gain nothing from intra-op
    threads, and on a shared 2-core machine the thread pool slows them ~20x."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
