"""Fixtures shared by the 2D training tests: one tiny labelled cohort and its slices dataset."""

from __future__ import annotations

import torch

from tests.cardiac.cohort import cohort, tiny_config  # noqa: F401 - shared fixture and helper

torch.set_num_threads(1)
