"""The BraTS 2019 uncertainty score (QU) of one region of one case.

An uncertainty map ``u`` in [0, 100] (100 = most uncertain) is judged by filtering out the voxels
with ``u > tau`` for thresholds ``tau`` from 100 down to 0 in ``n_steps`` equal steps (BraTS: 40
steps of 2.5, i.e. 41 thresholds including both ends) and following three curves:

- ``dice``: Dice of prediction and truth on the voxels that remain (both-empty = 1, hpc-seg's
  convention, which is also what an empty remainder means: nothing left to get wrong);
- ``ftp``: filtered-true-positive ratio, (TP before - TP left) / TP before;
- ``ftn``: filtered-true-negative ratio, the same for TN counted inside the brain mask.

A ratio whose count before filtering is 0 is 0 (nothing could be filtered). Each curve becomes an
AUC (trapezoids over tau, divided by 100); the score is
``(AUC_dice + (1 - AUC_ftp) + (1 - AUC_ftn)) / 3``. A good map removes errors first: Dice rises
while FTP and FTN stay low.

Every voxel's count at every threshold comes from one sort per confusion class (``searchsorted``),
not one pass over the volume per threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BRATS_STEPS = 40


@dataclass(frozen=True)
class QUResult:
    """Curves (one value per threshold, thresholds descending) and the score of one region."""

    thresholds: np.ndarray
    dice: np.ndarray
    ftp: np.ndarray
    ftn: np.ndarray
    auc_dice: float
    auc_ftp: float
    auc_ftn: float

    @property
    def score(self) -> float:
        """``(AUC_dice + (1 - AUC_ftp) + (1 - AUC_ftn)) / 3``."""
        return (self.auc_dice + (1.0 - self.auc_ftp) + (1.0 - self.auc_ftn)) / 3.0


def thresholds(n_steps: int = BRATS_STEPS) -> np.ndarray:
    """``tau`` from 100 down to 0 in ``n_steps`` equal steps (``n_steps + 1`` values)."""
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, but got {n_steps}")
    return np.linspace(100.0, 0.0, n_steps + 1)


def curve_auc(values: np.ndarray, taus: np.ndarray) -> float:
    """Area under ``values(tau)`` by trapezoids, divided by the tau range (100)."""
    order = np.argsort(taus)
    return float(np.trapezoid(np.asarray(values, np.float64)[order], taus[order]) / 100.0)


def _kept(u: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Number of values of ``u`` that are <= each tau (the voxels that stay)."""
    return np.searchsorted(np.sort(u, kind="stable"), taus, side="right").astype(np.float64)


def qu_score(pred: np.ndarray, target: np.ndarray, uncertainty: np.ndarray,
             brain_mask: np.ndarray | None = None, n_steps: int = BRATS_STEPS) -> QUResult:
    """QU curves, AUCs and score of one region (binary ``pred`` and ``target``, map in [0, 100])."""
    pred, target = np.asarray(pred) != 0, np.asarray(target) != 0
    u = np.asarray(uncertainty, np.float64)
    if not (pred.shape == target.shape == u.shape):
        raise ValueError(f"shapes differ: prediction {pred.shape}, truth {target.shape}, "
                         f"uncertainty {u.shape}")
    if u.size and (np.nanmin(u) < 0 or np.nanmax(u) > 100 or np.isnan(u).any()):
        raise ValueError(f"uncertainty must lie in [0, 100], but spans [{np.nanmin(u)}, "
                         f"{np.nanmax(u)}]{' with NaN' if np.isnan(u).any() else ''}")
    brain = np.ones_like(pred) if brain_mask is None else np.asarray(brain_mask) != 0
    taus = thresholds(n_steps)
    tp = _kept(u[pred & target], taus)
    fp = _kept(u[pred & ~target], taus)
    fn = _kept(u[~pred & target], taus)
    tn = _kept(u[~pred & ~target & brain], taus)
    den = 2 * tp + fp + fn
    dice = np.where(den > 0, 2 * tp / np.maximum(den, 1), 1.0)
    tp0, tn0 = tp[0], tn[0]  # tau = 100 keeps everything
    ftp = (tp0 - tp) / tp0 if tp0 > 0 else np.zeros_like(tp)
    ftn = (tn0 - tn) / tn0 if tn0 > 0 else np.zeros_like(tn)
    return QUResult(thresholds=taus, dice=dice, ftp=ftp, ftn=ftn, auc_dice=curve_auc(dice, taus),
                    auc_ftp=curve_auc(ftp, taus), auc_ftn=curve_auc(ftn, taus))
