"""Random draws shared by the training-time image augmentations (bands, coil arrays, remap).

Float32 on the CPU from the ``torch.Generator`` passed in, so a run resumed from a checkpoint
draws what the uninterrupted run drew (``appearance`` draws its own in float64).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def uniform(g: torch.Generator, lo: float, hi: float, *shape: int) -> torch.Tensor:
    """``U(lo, hi)`` of ``shape``."""
    return lo + (hi - lo) * torch.rand(*shape, generator=g)


def apply_to_some(images: torch.Tensor, generator: torch.Generator, p: float,
                  change: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``images [B, ...]`` with each image picked with probability ``p`` replaced by ``change`` of
    the picked ones (``[n, ...]`` in, the same shape out). The picks are drawn first, one per image,
    then ``change`` draws its own; ``p = 0`` draws nothing, and with no image picked ``images``
    itself is returned."""
    if p <= 0:
        return images
    pick = torch.rand(images.shape[0], generator=generator) < p
    if not bool(pick.any()):
        return images
    on = pick.to(images.device)
    out = images.clone()
    out[on] = change(images[on]).to(images.dtype)
    return out
