"""Voxel-wise uncertainty of a HAD-Net segmentation, per BraTS region, scaled to [0, 100].

The network's softmax gives class probabilities p0..p3 (background, NCR/NET, ED, ET); a region's
probability is the sum over its classes (WT = p1 + p2 + p3, TC = p1 + p3, ET = p3). Its
uncertainty is the binary entropy of that probability, in bits, times 100: 0 where the network is
sure either way, 100 where it says 50 %.

- ``entropy``: one deterministic pass (dropout off), the entropy of its region probabilities.
- ``mcdropout:N``: N passes with every Dropout3d active (the rest of the network in eval mode),
  the entropy of the *mean* region probability over the passes (the predictive entropy). Passes
  are batched (the input repeated along the batch axis: Dropout3d draws its channel mask per
  sample and InstanceNorm normalises per sample, so a batch of b copies is b independent passes).

The label map always comes from the deterministic pass, so Dice and HD95 do not depend on the
uncertainty method. MC dropout is seeded per case (from the run seed and the case id, not the
case's position), inside a forked RNG so the caller's random state is left alone: the same seed
gives the same map, on any number of cases and in any order.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hpc_seg.errors import ConfigError
from hpc_seg.hadnet.region_scores import REGIONS
from hpc_seg.runtime.device import autocast


@dataclass(frozen=True)
class UncertaintyMethod:
    """``entropy`` (one pass) or ``mcdropout`` with ``passes`` stochastic passes."""

    kind: str
    passes: int = 1

    @classmethod
    def parse(cls, text: str) -> UncertaintyMethod:
        """``entropy``, ``mcdropout`` (20 passes) or ``mcdropout:N``."""
        m = re.fullmatch(r"(entropy|mcdropout)(?::(\d+))?", text.strip())
        if not m or (m.group(1) == "entropy" and m.group(2)):
            raise ConfigError(f"--uncertainty {text!r}: expected entropy, mcdropout or mcdropout:N")
        if m.group(1) == "entropy":
            return cls("entropy")
        passes = int(m.group(2) or 20)
        if passes < 2:
            raise ConfigError(f"--uncertainty {text!r}: MC dropout needs at least 2 passes")
        return cls("mcdropout", passes)

    def __str__(self) -> str:
        return self.kind if self.kind == "entropy" else f"{self.kind}:{self.passes}"


def region_probabilities(probs: torch.Tensor) -> torch.Tensor:
    """``[B, 4, *spatial]`` class probabilities -> ``[B, 3, *spatial]`` (WT, TC, ET)."""
    return torch.stack([probs[:, list(c)].sum(1) for c in REGIONS.values()], dim=1)


def entropy_percent(p: torch.Tensor) -> torch.Tensor:
    """Binary entropy of probabilities ``p`` in bits x 100, in [0, 100]."""
    p = p.double().clamp(0.0, 1.0)
    q = 1.0 - p
    h = -(torch.xlogy(p, p) + torch.xlogy(q, q)) / math.log(2.0)
    return (h * 100.0).clamp(0.0, 100.0)


@contextmanager
def dropout_active(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode except its dropout layers; restores every module's mode after."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.train()
    try:
        yield model
    finally:
        for m, mode in modes.items():
            m.train(mode)


def case_seed(seed: int, case_id: str) -> int:
    """A 63-bit seed for one case's dropout masks (independent of case order)."""
    digest = hashlib.sha256(f"{seed}:mcdropout:{case_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _softmax(model: nn.Module, x: torch.Tensor, amp: bool) -> torch.Tensor:
    with autocast(x.device, amp):
        logits, _ = model(x)
    return torch.softmax(logits.float(), dim=1)


@torch.no_grad()
def mc_dropout_probabilities(model: nn.Module, x: torch.Tensor, passes: int, *, seed: int,
                             batch_size: int = 4, amp: bool = True,
                             on_batch: Callable[[int], None] | None = None) -> torch.Tensor:
    """Mean region probabilities ``[3, *spatial]`` over ``passes`` dropout passes of ``x`` [1, C, ...].

    ``on_batch(n)`` is called after each batch of ``n`` passes (progress display).
    """
    devices = [x.device] if x.device.type == "cuda" else []
    total = torch.zeros((3, *x.shape[2:]), dtype=torch.float64, device=x.device)
    with torch.random.fork_rng(devices=devices), dropout_active(model):
        torch.manual_seed(seed)
        done = 0
        while done < passes:
            b = min(batch_size, passes - done)
            probs = _softmax(model, x.expand(b, *x.shape[1:]), amp)
            total += region_probabilities(probs).double().sum(0)
            done += b
            if on_batch is not None:
                on_batch(b)
    return (total / passes).float()


@torch.no_grad()
def predict_with_uncertainty(model: nn.Module, x: torch.Tensor,
                             method: UncertaintyMethod | None, *, seed: int = 0,
                             case_id: str = "", batch_size: int = 4, amp: bool = True,
                             on_batch: Callable[[int], None] | None = None
                             ) -> tuple[np.ndarray, np.ndarray | None]:
    """``(classes [D, H, W] uint8, maps [3, D, H, W] float32 in [0, 100] | None)`` for ``x`` [1, C, ...].

    The classes are the argmax of a deterministic pass; ``maps`` is ``None`` when ``method`` is.
    """
    was_training = model.training
    model.eval()
    try:
        probs = _softmax(model, x, amp)
        classes = probs.argmax(1)[0].to(torch.uint8).cpu().numpy()
        if method is None:
            return classes, None
        if method.kind == "entropy":
            region = region_probabilities(probs)[0]
        else:
            region = mc_dropout_probabilities(model, x, method.passes,
                                              seed=case_seed(seed, case_id),
                                              batch_size=batch_size, amp=amp, on_batch=on_batch)
        return classes, entropy_percent(region).float().cpu().numpy()
    finally:
        model.train(was_training)
