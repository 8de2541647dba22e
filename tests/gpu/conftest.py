"""The device of the ``gpu`` tests: CUDA, or CPU under ``HPC_SEG_GPU_TESTS_DEVICE=cpu`` (the dry
run of ``hpc-seg bench gpu``, which checks the tests' own code at toy sizes)."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture
def device() -> torch.device:
    if os.environ.get("HPC_SEG_GPU_TESTS_DEVICE") == "cpu":
        return torch.device("cpu")
    return torch.device("cuda", 0)
