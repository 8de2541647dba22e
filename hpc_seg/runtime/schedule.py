"""The one-cycle learning-rate schedule (fastai's ``fit_one_cycle``, which the published runs used).

Warm-up for ``pct_start`` of the steps from ``max_lr / div`` to ``max_lr`` with a cosine, then a
cosine down to ``max_lr / final_div`` (fastai v2 defaults: div 25, final_div 1e5, pct_start
0.25); Adam's beta1 moves the opposite way between 0.95 and 0.85. The schedule is a pure
function of the step, so a resumed run only needs the step count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class OneCycle:
    max_lr: float
    total_steps: int
    pct_start: float = 0.25
    div: float = 25.0
    final_div: float = 1e5
    moms: tuple[float, float] = (0.95, 0.85)

    def at(self, step: int) -> tuple[float, float]:
        """(lr, beta1) for 0-based ``step``; steps past the end stay at the final values."""
        total = max(self.total_steps, 1)
        pos = min(step, total - 1) / max(total - 1, 1)
        lo, hi, end = self.max_lr / self.div, self.max_lr, self.max_lr / self.final_div
        if pos < self.pct_start:
            t = pos / self.pct_start
            return _cos(lo, hi, t), _cos(self.moms[0], self.moms[1], t)
        t = (pos - self.pct_start) / max(1.0 - self.pct_start, 1e-12)
        return _cos(hi, end, t), _cos(self.moms[1], self.moms[0], t)

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        lr, beta1 = self.at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
            if "betas" in group:
                group["betas"] = (beta1, group["betas"][1])
        return lr


def _cos(start: float, end: float, t: float) -> float:
    return end + (start - end) * (1 + math.cos(math.pi * t)) / 2
