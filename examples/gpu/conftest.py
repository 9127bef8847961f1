"""Imported first in every process. With ``exp_gpus = auto`` each xdist worker already sees only
its own GPUs here, before anything (PyTorch included) can initialise CUDA."""

from __future__ import annotations

import os

import pytest

AT_IMPORT = os.environ.get("CUDA_VISIBLE_DEVICES")
OWNED = os.environ.get("PYTEST_EXP_GPUS")  # set with it by pytest-exp: the physical ids
print(f"conftest.py: CUDA_VISIBLE_DEVICES={AT_IMPORT!r} (pytest-exp: {OWNED!r})")


@pytest.fixture
def visible_at_import() -> str | None:
    return AT_IMPORT
