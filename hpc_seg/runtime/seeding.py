"""One seed for Python, NumPy and torch, so that a run repeats."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices). NumPy takes the seed modulo 2**32 because its
    legacy seeding refuses larger values, which per-rank or per-epoch offsets can reach."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
