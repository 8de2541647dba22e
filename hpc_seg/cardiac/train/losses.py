"""The three published losses for the 2D U-Nets: cross-entropy, focal and generalised soft Dice.

All take logits ``[B, C, H, W]`` and integer targets ``[B, H, W]`` and return a scalar, computed in
float32 even under bf16 autocast (the softmax/log of small probabilities needs the precision).

- ``ce``: mean pixel cross-entropy.
- ``focal``: mean over pixels of ``-(1 - p_t)^gamma * log p_t`` with gamma 2 and no alpha.
- ``softdice``: generalised Dice (Sudre et al. 2017) over the whole batch, background included,
  class weights ``w_c = 1 / (sum g_c)^2`` and eps 1e-5:
  ``1 - 2 * sum_c w_c sum(p_c g_c) / (sum_c w_c sum(p_c + g_c) + eps)``.
  A class absent from the batch has ``sum g_c = 0`` and an infinite weight; like the common
  implementations (MONAI's ``GeneralizedDiceLoss``) we give such a class the largest finite
  weight of the batch instead, so an empty class neither dominates nor divides by zero.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

EPS = 1e-5
FOCAL_GAMMA = 2.0


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), target.long())


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = FOCAL_GAMMA) -> torch.Tensor:
    logp = F.log_softmax(logits.float(), dim=1)
    logp_t = logp.gather(1, target.long().unsqueeze(1)).squeeze(1)
    p_t = logp_t.exp()
    return (-(1.0 - p_t) ** gamma * logp_t).mean()


def generalised_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    probs = F.softmax(logits.float(), dim=1)
    onehot = F.one_hot(target.long(), probs.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
    dims = (0, 2, 3)
    g_sum = onehot.sum(dims)
    w = 1.0 / (g_sum * g_sum)
    finite = torch.isfinite(w)
    w = torch.where(finite, w, w[finite].max() if finite.any() else torch.ones_like(w))
    intersect = (w * (probs * onehot).sum(dims)).sum()
    denom = (w * (probs + onehot).sum(dims)).sum()
    return 1.0 - 2.0 * intersect / (denom + eps)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ce": cross_entropy,
    "focal": focal_loss,
    "softdice": generalised_dice_loss,
}
