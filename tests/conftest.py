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



@pytest.fixture(scope="module")
def content_and_style():
    """The Gatys tests' pair, each (1, 3, 32, 32) in [0, 1]: a content image of smooth colour ramps and a
    style image of noise (a very different texture). Seeds torch with 0 first, once per test module."""
    import torch

    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    content = torch.stack([xx, yy, 1 - xx * yy]).unsqueeze(0)
    style = torch.rand(1, 3, 32, 32)
    return content, style
