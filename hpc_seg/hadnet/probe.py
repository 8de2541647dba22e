"""Is a tumour region separable from what each role sees? A voxel-wise linear probe.

HAD-Net can only pass on knowledge the teacher has, and the teacher can only learn the enhancing
tumour if its extra input (T1ce) carries it. Before spending GPU hours, this fits one logistic
regression per role (teacher: FLAIR, T1ce, T1, T2; student: FLAIR, T1, T2) on voxel intensities and
their 3x3x3 and 7x7x7 local means, and reports the Dice it reaches per case. A large teacher-student
gap says the data hold privileged information to distil; a small one says the comparison cannot
show the paper's effect. It is a floor for what a network can do, not an estimate of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hpc_seg.errors import InputError
from hpc_seg.hadnet.train.data import Case, load_cases, role_channels
from hpc_seg.hadnet.region_scores import REGIONS


@dataclass(frozen=True)
class ProbeResult:
    """Dice of one role's probe on the ``cases`` evaluation cases that contain the region."""

    role: str
    channels: tuple[int, ...]
    region: str
    cases: int
    dice_mean: float
    dice_std: float


def _features(case: Case, channels: tuple[int, ...]) -> torch.Tensor:
    """``[voxels, 3 * len(channels)]``: intensity, 3x3x3 mean and 7x7x7 mean per channel."""
    x = case.image.float()[list(channels)][None]
    stack = torch.cat([x, F.avg_pool3d(x, 3, 1, 1), F.avg_pool3d(x, 7, 1, 3)], 1)[0]
    return stack.reshape(stack.shape[0], -1).T


def _target(case: Case, region: str) -> torch.Tensor:
    if case.label is None:
        raise InputError(f"probe: case {case.case_id} has no label")
    return torch.isin(case.label.reshape(-1).long(), torch.tensor(REGIONS[region]))


def _fit(cases: list[Case], channels: tuple[int, ...], region: str, max_voxels_per_case: int,
         seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for case in cases:
        inside = case.mask.reshape(-1)
        x, y = _features(case, channels)[inside], _target(case, region)[inside].float()
        if len(y) > max_voxels_per_case:
            # A uniform subsample keeps the class balance, so the balanced loss below is unchanged.
            keep = torch.randperm(len(y), generator=gen)[:max_voxels_per_case]
            x, y = x[keep], y[keep]
        xs.append(x)
        ys.append(y)
    x, y = torch.cat(xs), torch.cat(ys)
    positive = float(y.mean())
    if positive == 0.0:
        raise InputError(f"probe: no {region} voxel in the fitting cases; pick another --fit-split")
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200)
    # Balanced weighting: the region is a few per cent of the brain, and an unweighted fit would
    # predict "never" and say nothing about separability.
    pos_weight = torch.tensor((1.0 - positive) / positive)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(z @ w + b, y, pos_weight=pos_weight)
        loss.backward()
        return loss

    opt.step(closure)
    return mu, sd, w.detach(), b.detach()


def probe_region(pre_dir: str | Path, region: str = "ET", *, fit_split: str = "train",
                 eval_split: str = "test", roles: tuple[str, ...] = ("teacher", "student"),
                 max_voxels_per_case: int = 50_000, seed: int = 0) -> list[ProbeResult]:
    """Fit a probe per role on ``fit_split`` and report its Dice on ``eval_split``.

    Only evaluation cases that contain the region count (an empty-empty Dice of 1 would flatter a
    probe that predicts nothing).
    """
    if region not in REGIONS:
        raise InputError(f"probe: unknown region {region!r}; choose one of {sorted(REGIONS)}")
    fit_cases = load_cases(pre_dir, fit_split)
    eval_cases = [c for c in load_cases(pre_dir, eval_split)
                  if bool((_target(c, region) & c.mask.reshape(-1)).any())]
    if not fit_cases:
        raise InputError(f"probe: {pre_dir} has no case in split {fit_split!r}")
    if not eval_cases:
        raise InputError(f"probe: no case of split {eval_split!r} in {pre_dir} contains {region}")
    results = []
    for role in roles:
        channels = role_channels(role)
        mu, sd, w, b = _fit(fit_cases, channels, region, max_voxels_per_case, seed)
        dice = []
        for case in eval_cases:
            inside = case.mask.reshape(-1)
            truth = _target(case, region) & inside
            pred = ((((_features(case, channels) - mu) / sd) @ w + b) > 0) & inside
            dice.append(2.0 * float((pred & truth).sum()) / float(pred.sum() + truth.sum()))
        results.append(ProbeResult(role, channels, region, len(dice), float(np.mean(dice)),
                                   float(np.std(dice))))
    return results


def probe_table(results: list[ProbeResult]) -> str:
    """A markdown table, one row per role."""
    lines = ["| role | channels | region | cases | probe Dice |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.role} | {list(r.channels)} | {r.region} | {r.cases} | "
                     f"{r.dice_mean:.3f} ± {r.dice_std:.3f} |")
    return "\n".join(lines)
