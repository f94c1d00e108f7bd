"""The code's habits, checked like behaviour: `ruff check .` and `mypy` pass with pyproject.toml's configuration."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import ROOT


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_passes():
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.slow
def test_mypy_passes():
    result = _run("mypy")  # packages and options from [tool.mypy]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
