"""Shared test setup."""
import matplotlib.pyplot as plt
import pytest

import bnlib


@pytest.fixture(autouse=True)
def _close_figures():
    """Dashboards create pyplot figures, which pyplot keeps until closed: close them per test."""
    yield
    plt.close("all")


@pytest.fixture(autouse=True)
def _english_afterwards():
    """A test that switches bnlib to Japanese must not leave the next test in Japanese."""
    yield
    bnlib.set_language("en")
