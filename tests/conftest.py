"""Shared pytest setup: headless plotting, quick mode, and one frozen VGG19 for every test file."""
import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("FACESTYLE_QUICK", "1")


@pytest.fixture(scope="session")
def vgg():
    """The frozen VGG19 with the offline weights, built once (it never trains, so tests can share it)."""
    from facestyle_utils.vgg import load_vgg19

    return load_vgg19()
