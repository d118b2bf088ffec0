"""Shared test fixtures: ngspice availability (skip locally, fail under CI=true)."""

import os
import shutil

import pytest


def _ngspice_path():
    return shutil.which("ngspice")


@pytest.fixture
def ngspice():
    """Path to the ngspice binary; skips the test when absent, fails it when CI=true."""
    path = _ngspice_path()
    if path is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("ngspice is required under CI=true but was not found on PATH")
        pytest.skip("ngspice not installed")
    return path
