"""EDV/ESV/SV/EF/mass arithmetic and the QC flag on hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest

from hpc_seg.cardiac.inference.measures import mid_slices, summary_row

ROW = {"stack_id": "s", "subject_id": "s", "patient_id": "p", "pixel_spacing_mm": [2.0, 2.0],
       "slice_spacing_mm": 10.0}          # 0.04 mL per voxel


def heart(frames: int = 3, slices: int = 8, lv: tuple[int, ...] = (1000, 600, 400)) -> np.ndarray:
    mask = np.zeros((frames, slices, 40, 40), np.uint8)
    for t, n in enumerate(lv):
        per = n // slices
        for k in range(slices):
            mask[t, k].flat[:per] = 1           # LV cavity
            mask[t, k].flat[per:per + 50] = 2   # myocardium, 50 voxels per slice
    return mask


def test_summary_arithmetic() -> None:
    r = summary_row(ROW, heart())
    assert (r["ed_frame"], r["es_frame"]) == (0, 2)
    assert r["edv_ml"] == pytest.approx(1000 * 0.04)
    assert r["esv_ml"] == pytest.approx(400 * 0.04)
    assert r["sv_ml"] == pytest.approx(600 * 0.04)
    assert r["ef_pct"] == pytest.approx(60.0)
    assert r["lv_mass_g"] == pytest.approx(8 * 50 * 0.04 * 1.05)
    assert not r["qc_flag"] and r["qc_reasons"] == ""


def test_qc_flags() -> None:
    few = summary_row(ROW, heart(slices=4))
    assert few["qc_flag"] and "few slices" in few["qc_reasons"]
    flat = summary_row(ROW, heart(lv=(1000, 990, 980)))
    assert flat["qc_flag"] and "implausible EF" in flat["qc_reasons"]
    hole = heart()
    mid = mid_slices(hole)
    assert mid and 0 not in mid and 7 not in mid
    hole[2, mid[0]][hole[2, mid[0]] == 1] = 0
    r = summary_row(ROW, hole)
    assert r["qc_flag"] and f"[{mid[0]}] at ES" in r["qc_reasons"]
    empty = summary_row(ROW, np.zeros((3, 8, 10, 10), np.uint8))
    assert empty["qc_flag"] and "no LV" in empty["qc_reasons"]
