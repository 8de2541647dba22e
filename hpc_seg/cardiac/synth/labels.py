"""Label masks of the synthetic cohort: truth volumes, and the deliberately imperfect label source.

The shipped masks play the part of the ukbb_cardiac output in the study: mostly good, sometimes
eroded, dilated or missing the basal slice, so that the label-vs-truth confidence score spreads
over patients. The truth (``truth.csv``) is measured on the undegraded masks of the acquired slices
with the modal slice spacing, so that a perfect segmentation of the curated stack scores ~0.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_dilation, binary_erosion

from hpc_seg.cardiac.synth.phantom import LV_CAVITY, LV_MYO
from hpc_seg.cardiac.synth.plan import PatientPlan
from hpc_seg.cardiac.synth.quirks import ExpectedSlice

MaskKey = tuple[int, int]          # (SeriesNumber, frame index)


def lv_volumes_ml(slices: list[ExpectedSlice], masks: dict[MaskKey, np.ndarray], n_frames: int,
                  spacing_mm: float, *, curated: bool) -> np.ndarray:
    """LV cavity volume per frame (mL): pixel count x pixel area x modal slice spacing.

    ``curated=False`` measures the true anatomy (a filled gap uses the unwritten slice, all frames
    exist). ``curated=True`` measures what a curated stack holds: a gap repeats its neighbour and a
    missing or unreadable frame repeats the previous frame.
    """
    vols = np.zeros(n_frames)
    for e in slices:
        sp = e.series if curated else e.truth_series
        present = set(sp.frames) - set(sp.corrupt) if curated else set(range(n_frames))
        area = sp.geom.ps_row * sp.geom.ps_col
        last = None
        for f in range(n_frames):
            if f in present:
                last = f
            if last is not None:
                vols[f] += np.count_nonzero(masks[(sp.series_number, last)] == LV_CAVITY) * area
    return vols * spacing_mm / 1000.0


def confidence_score(vols_ml: np.ndarray, systole: float, diastole: float) -> float:
    """max(|ESV - Systole|/Systole, |EDV - Diastole|/Diastole); ED = frame 0, ES = minimum."""
    return float(max(abs(vols_ml.min() - systole) / systole,
                     abs(vols_ml[0] - diastole) / diastole))


def degrade_masks(masks: dict[MaskKey, np.ndarray], plan: PatientPlan, kind: str,
                  rng: np.random.Generator) -> dict[MaskKey, np.ndarray]:
    """A degraded copy of ``masks`` (the label source shipped with the cohort)."""
    out = {k: m.copy() for k, m in masks.items()}
    if kind in ("erode", "dilate"):
        share = float(rng.uniform(0.3, 1.0))      # fraction of images affected
        for key in sorted(out):
            if rng.random() >= share:
                continue
            m = out[key]
            cavity = m == LV_CAVITY
            if kind == "erode":
                m[cavity & ~binary_erosion(cavity)] = LV_MYO
            else:
                m[binary_dilation(cavity) & (m == LV_MYO)] = LV_CAVITY
    elif kind == "drop_basal":
        by_sn = {sp.series_number: sp for sp in plan.series + plan.dropped}
        with_lv = sorted(by_sn[sn].slice_index for (sn, f), m in out.items()
                         if f == 0 and by_sn[sn].slice_index >= 0 and (m == LV_CAVITY).any())
        if with_lv:
            basal = with_lv[0]
            for (sn, _), m in out.items():
                if by_sn[sn].slice_index == basal:
                    m[(m == LV_CAVITY) | (m == LV_MYO)] = 0
    return out
