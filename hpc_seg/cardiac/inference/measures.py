"""Per-frame LV cavity and myocardium volumes, the clinical summary, and the QC flag.

Volumes, ED and ES come from the same functions the ``labels`` stage uses
(:mod:`hpc_seg.cardiac.labels.confidence`), so ``predict`` and ``labels --source model:`` agree
to the last bit on the same model and stack.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hpc_seg.cardiac.finite import frames_text
from hpc_seg.cardiac.labels.confidence import LV, MY, EdRule, class_volumes, ed_es_frames, voxel_ml

#: myocardial tissue density (g/mL) used for LV mass, the usual CMR convention
MYOCARDIUM_DENSITY_G_PER_ML = 1.05
#: EF outside this range (%) is physiologically implausible for a cine SAX study -> QC flag
PLAUSIBLE_EF_PCT = (10.0, 85.0)
#: fewer short-axis slices than this cannot cover the LV from base to apex -> QC flag
MIN_SLICES = 5

SUMMARY_COLUMNS = ["stack_id", "subject_id", "patient_id", "frames", "slices", "ed_frame",
                   "es_frame", "edv_ml", "esv_ml", "sv_ml", "ef_pct", "lv_mass_g", "qc_flag",
                   "qc_reasons"]


def frame_volumes(mask: np.ndarray, row: dict[str, Any],
                  left_out: list[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """(LV cavity mL, myocardium mL) per frame of a ``[frames, slices, rows, cols]`` label mask;
    NaN for the frames ``left_out`` (their pixels were not finite, nothing was segmented)."""
    vox = voxel_ml(row["pixel_spacing_mm"], row["slice_spacing_mm"])
    lv, my = class_volumes(mask, LV, vox), class_volumes(mask, MY, vox)
    lv[list(left_out)] = np.nan
    my[list(left_out)] = np.nan
    return lv, my


def mid_slices(mask: np.ndarray) -> list[int]:
    """The middle third of the slices where the heart (LV or myocardium) appears in any frame."""
    heart = np.flatnonzero(((mask == LV) | (mask == MY)).any(axis=(0, 2, 3)))
    if heart.size == 0:
        return []
    lo, hi = int(heart[0]), int(heart[-1])
    third = (hi - lo + 1) / 3.0
    return list(range(int(np.floor(lo + third)), int(np.ceil(hi - third + 1))))


def qc_reasons(mask: np.ndarray, ed: int, es: int, ef_pct: float) -> list[str]:
    """Why a user must look at this subject (empty when nothing stands out)."""
    reasons = []
    slices = mask.shape[1]
    if slices < MIN_SLICES:
        reasons.append(f"few slices ({slices} < {MIN_SLICES})")
    mids = mid_slices(mask)
    if not mids:
        reasons.append("no LV or myocardium found")
    else:
        for name, t in (("ED", ed), ("ES", es)):
            empty = [k for k in mids if not (mask[t, k] == LV).any()]
            if empty:
                reasons.append(f"LV missing on mid-ventricular slice(s) {empty} at {name}")
    lo, hi = PLAUSIBLE_EF_PCT
    if not (np.isfinite(ef_pct) and lo <= ef_pct <= hi):
        reasons.append(f"implausible EF {ef_pct:.1f} % (outside {lo:.0f}-{hi:.0f} %)")
    return reasons


def summary_row(row: dict[str, Any], mask: np.ndarray, ed_rule: EdRule = "first",
                left_out: list[int] = ()) -> dict[str, Any]:
    """EDV, ESV, SV, EF and LV mass at ED, plus the QC flag, for one stack; ``left_out``: frames
    without a segmentation (non-finite pixels), never ED or ES, and always a QC reason."""
    lv, my = frame_volumes(mask, row, left_out)
    ed, es = ed_es_frames(lv, ed_rule)
    edv, esv = float(lv[ed]), float(lv[es])
    sv = edv - esv
    ef = 100.0 * sv / edv if edv > 0 else float("nan")
    reasons = qc_reasons(mask, ed, es, ef)
    if len(left_out):
        reasons.append(f"non-finite pixels in frame(s) {frames_text(list(left_out))}: "
                       "not segmented, ED/ES chosen among the other frames")
    return {"stack_id": row["stack_id"], "subject_id": row["subject_id"],
            "patient_id": row["patient_id"], "frames": int(mask.shape[0]),
            "slices": int(mask.shape[1]), "ed_frame": ed, "es_frame": es, "edv_ml": edv,
            "esv_ml": esv, "sv_ml": sv, "ef_pct": ef,
            "lv_mass_g": float(my[ed]) * MYOCARDIUM_DENSITY_G_PER_ML,
            "qc_flag": bool(reasons), "qc_reasons": "; ".join(reasons)}
