"""The three published losses for the 2D U-Nets (cross-entropy, focal and generalised soft Dice),
and nnU-Net's Dice + cross-entropy.

All take logits ``[B, C, H, W]`` and integer targets ``[B, H, W]`` and return a scalar, computed in
float32 even under bf16 autocast (the softmax/log of small probabilities needs the precision).

- ``ce``: mean pixel cross-entropy (torch).
- ``focal``: mean over pixels of ``-(1 - p_t)^gamma * log p_t`` with gamma 2 and no alpha: MONAI's
  ``FocalLoss`` (softmax) summed over classes (only the true class contributes) and averaged over
  pixels; MONAI's own ``mean`` would also divide by the number of classes.
- ``softdice``: generalised Dice (Sudre et al. 2017) over the whole batch, background included,
  class weights ``w_c = 1 / (sum g_c)^2`` and eps 1e-5:
  ``1 - 2 * sum_c w_c sum(p_c g_c) / (sum_c w_c sum(p_c + g_c) + eps)``: MONAI's
  ``GeneralizedDiceLoss`` with ``batch=True``, ``smooth_nr=0`` and ``smooth_dr=eps``. A class
  absent from the batch (``sum g_c = 0``, infinite weight) gets the largest finite weight of the
  batch, MONAI's rule, so an empty class neither dominates nor divides by zero.
- ``dicece``: nnU-Net's default, cross-entropy plus the mean over the foreground classes of
  ``1 - batch soft Dice`` (no class weights): MONAI's ``DiceCELoss`` with ``include_background=False``,
  ``batch=True`` and smooth terms 1e-5. Why it is offered: the generalised Dice weights a class by
  ``1 / (its pixels)^2``, so a pixel the image does not decide goes to the smaller class (a test
  shows it); the cross-entropy term is unbiased in volume (Bertels et al., Medical Image Analysis
  2021). Measured in ``bench generalise`` (README): it lowered hybrid training's within-generator
  errors but not its cross-generator end-systolic over-segmentation, which has another cause.

The MONAI losses replaced hand-written ones that gave the same values (to float rounding); the
tests keep those hand values. MONAI is imported on first use: importing it takes seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import torch
import torch.nn.functional as F

EPS = 1e-5
FOCAL_GAMMA = 2.0


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), target.long())


@cache
def _focal(gamma: float) -> torch.nn.Module:
    from monai.losses import FocalLoss

    return FocalLoss(include_background=True, to_onehot_y=True, gamma=gamma, use_softmax=True,
                     reduction="none")


@cache
def _generalised_dice(eps: float) -> torch.nn.Module:
    from monai.losses import GeneralizedDiceLoss

    return GeneralizedDiceLoss(include_background=True, to_onehot_y=True, softmax=True,
                               w_type="square", batch=True, smooth_nr=0.0, smooth_dr=eps)


@cache
def _dice_ce(eps: float) -> torch.nn.Module:
    from monai.losses import DiceCELoss

    return DiceCELoss(include_background=False, to_onehot_y=True, softmax=True, batch=True,
                      smooth_nr=eps, smooth_dr=eps)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = FOCAL_GAMMA) -> torch.Tensor:
    per_class = _focal(float(gamma))(logits.float(), target.long().unsqueeze(1))
    return per_class.sum(1).mean()


def generalised_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    return _generalised_dice(float(eps))(logits.float(), target.long().unsqueeze(1))


def dice_ce_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    return _dice_ce(float(eps))(logits.float(), target.long().unsqueeze(1))


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ce": cross_entropy,
    "focal": focal_loss,
    "softdice": generalised_dice_loss,
    "dicece": dice_ce_loss,
}
