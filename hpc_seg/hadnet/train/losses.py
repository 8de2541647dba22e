"""HAD-Net losses: weighted CE with per-epoch weight decay, LSGAN terms, the discriminator gate.

- Pre-training CE weights start at [1, 59.45, 23.32, 71.85] and are multiplied by 0.98 each epoch
  after the first, never below 1 (``class_weights_at``).
- L_G = wCE(student, labels) + lambda * MSE(D(fake), 1); L_D = MSE(D(real), 1) + MSE(D(fake), 0).
- The discriminator steps only while its accuracy, the mean of [D(real) >= 0.5] and
  [D(fake) <= 0.5] over all patch scores, is at most the threshold (0.8). Under DDP the counts are
  summed over ranks *before* deciding, so every rank takes the same branch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F


def class_weights_at(base: Sequence[float], epoch: int, decay: float = 0.98,
                     floor: float = 1.0) -> list[float]:
    """CE class weights for 0-based ``epoch``: ``max(w * decay**epoch, floor)``.

    A weight that starts below ``floor`` is left as it is (the floor only stops the decay).
    """
    return [w if w <= floor else max(w * decay ** epoch, floor) for w in base]


def weighted_ce(logits: torch.Tensor, target: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    """Class-weighted cross-entropy, mean over voxels normalised by the weights (torch's convention).

    Computed in float32 even under bf16 autocast.
    """
    w = torch.as_tensor(weights, dtype=torch.float32, device=logits.device)
    return F.cross_entropy(logits.float(), target, weight=w)


def lsgan_generator_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """MSE(D(student), 1): the student wants its outputs scored as the teacher's."""
    d_fake = d_fake.float()
    return F.mse_loss(d_fake, torch.ones_like(d_fake))


def lsgan_discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """MSE(D(teacher), 1) + MSE(D(student), 0)."""
    d_real, d_fake = d_real.float(), d_fake.float()
    return F.mse_loss(d_real, torch.ones_like(d_real)) + F.mse_loss(d_fake, torch.zeros_like(d_fake))


@dataclass
class GateCounts:
    """Correct-decision counts of the discriminator, accumulated over micro-batches (and ranks)."""

    real_correct: float = 0.0
    real_total: float = 0.0
    fake_correct: float = 0.0
    fake_total: float = 0.0

    def add(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> None:
        """Count [D(real) >= 0.5] and [D(fake) <= 0.5] of one micro-batch."""
        self.real_correct += float((d_real.detach() >= 0.5).sum())
        self.real_total += d_real.numel()
        self.fake_correct += float((d_fake.detach() <= 0.5).sum())
        self.fake_total += d_fake.numel()

    def all_reduce(self, device: torch.device | str = "cpu") -> GateCounts:
        """Sum the counts over the ranks of the default process group (no-op without one).

        ``device`` must be the rank's GPU under NCCL (which cannot reduce CPU tensors).
        """
        if not (dist.is_available() and dist.is_initialized()):
            return self
        t = torch.tensor([self.real_correct, self.real_total, self.fake_correct, self.fake_total],
                         dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return GateCounts(*t.tolist())

    @property
    def accuracy(self) -> float:
        """Mean of the real-side and fake-side accuracies."""
        if self.real_total == 0 or self.fake_total == 0:
            return 0.0
        return 0.5 * (self.real_correct / self.real_total + self.fake_correct / self.fake_total)


def discriminator_should_update(accuracy: float, threshold: float = 0.8) -> bool:
    """The published gate: update D while its accuracy is at most ``threshold``."""
    return accuracy <= threshold
