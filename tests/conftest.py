"""Shared test setup."""
import matplotlib.pyplot as plt
import pytest


@pytest.fixture(autouse=True)
def _close_figures():
    """Dashboards create pyplot figures, which pyplot keeps until closed: close them per test."""
    yield
    plt.close("all")
