"""The house style holds: ruff (configured in pyproject.toml) finds nothing.

It checks the package, tools, benchmarks and tests.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from facestyle_utils.runtime import project_root

ROOT = project_root()


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the dev extra: pip install -e '.[dev]')")
    result = subprocess.run([ruff, "check", "--no-cache", "facestyle_utils", "tools", "benchmarks", "tests"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
