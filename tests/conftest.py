"""Shared pytest setup: headless plotting, quick mode, and nbval options for the notebooks."""
import os

import matplotlib

matplotlib.use("Agg")
os.environ.setdefault("FACESTYLE_QUICK", "1")
