"""Which device a model runs on, and the mixed precision used there (both studies)."""

from __future__ import annotations

import contextlib

import torch

from hpc_seg.errors import InputError


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> the first GPU when there is one, else CPU; a named GPU must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but CUDA is not available on this machine")
    return torch.device(name)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when ``enabled``; a no-op on CPU (bf16 matmuls on CPU are slower than
    fp32 here)."""
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
