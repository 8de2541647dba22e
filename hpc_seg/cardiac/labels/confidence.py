"""LV volumes per frame, ED/ES, and the label confidence score.

- LV volume per frame = LV-cavity voxel count x voxel volume (mL).
- ED is frame 0 in the published study (``ed_rule="first"``, the default); ``"max"`` takes the
  frame with the largest LV volume instead. ES is the frame with the smallest LV volume.
- score = max(|ESV - Systole| / Systole, |EDV - Diastole| / Diastole) against ``truth.csv``.
- The 5 / 10 / 15 % confidence sets keep the patients with score <= 0.05 / 0.10 / 0.15.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

LV, MY, RV = 1, 2, 3
CONFIDENCE_LEVELS = {"p05": 0.05, "p10": 0.10, "p15": 0.15}
EdRule = Literal["first", "max"]


def voxel_ml(pixel_spacing_mm: list[float], slice_spacing_mm: float) -> float:
    """Volume of one voxel in mL."""
    return float(pixel_spacing_mm[0]) * float(pixel_spacing_mm[1]) * float(slice_spacing_mm) / 1000.0


def class_volumes(mask: np.ndarray, label: int, voxel_volume_ml: float) -> np.ndarray:
    """Per-frame volume (mL) of ``label`` in a ``[frames, slices, rows, cols]`` mask."""
    counts = (mask == label).reshape(mask.shape[0], -1).sum(1)
    return counts.astype(np.float64) * voxel_volume_ml


def ed_es_frames(lv_ml: np.ndarray, ed_rule: EdRule = "first") -> tuple[int, int]:
    """(ED frame, ES frame) from per-frame LV volumes; NaN volumes (frames left out) are never
    chosen ("first" then means the first measured frame)."""
    lv_ml = np.asarray(lv_ml, dtype=np.float64)
    measured = np.flatnonzero(np.isfinite(lv_ml))
    if measured.size == 0:
        raise ValueError("no frame has a measured LV volume")
    ed = int(measured[0]) if ed_rule == "first" else int(np.nanargmax(lv_ml))
    return ed, int(np.nanargmin(lv_ml))


def confidence_score(edv: float, esv: float, diastole: float, systole: float) -> float:
    """max(|ESV - Systole|/Systole, |EDV - Diastole|/Diastole); NaN without a valid truth."""
    if not (np.isfinite(systole) and np.isfinite(diastole)) or systole <= 0 or diastole <= 0:
        return float("nan")
    return float(max(abs(esv - systole) / systole, abs(edv - diastole) / diastole))


def set_membership(score: float) -> dict[str, bool]:
    """``{"in_p05": ..., "in_p10": ..., "in_p15": ...}``; a NaN score is in no set."""
    return {f"in_{name}": bool(np.isfinite(score) and score <= level)
            for name, level in CONFIDENCE_LEVELS.items()}


def set_counts(stacks: pd.DataFrame) -> pd.DataFrame:
    """Patients per confidence set and split (rows p05/p10/p15/all, columns splits + total).

    ``stacks`` has one row per stack with ``patient_id``, ``split`` and ``in_p05``... columns. A
    patient counts in a set when any of its stacks does (repeat acquisitions share the truth).
    """
    patients = stacks.groupby(["patient_id", "split"], as_index=False)[
        [f"in_{k}" for k in CONFIDENCE_LEVELS]].any()
    rows = {}
    for name in [*CONFIDENCE_LEVELS, "all"]:
        sel = patients if name == "all" else patients[patients[f"in_{name}"]]
        rows[name] = sel.groupby("split").size()
    table = pd.DataFrame(rows).T.fillna(0).astype(int)
    for split in ("train", "validate", "test"):
        if split not in table.columns:
            table[split] = 0
    table = table[["train", "validate", "test", *[c for c in table.columns
                                                  if c not in ("train", "validate", "test")]]]
    table["total"] = table.sum(axis=1)
    table.index.name = "set"
    return table
