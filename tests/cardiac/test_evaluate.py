"""EF evaluation against hand-computed values, and the evaluate stage's outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hpc_seg.cardiac.results.ef import ef_summary, ml_per_pixel, patient_ef, stack_ef
from hpc_seg.cardiac.evaluate import evaluate
from hpc_seg.cardiac.train.loop import train_segmenter
from tests.cardiac.cohort import cohort, tiny_config  # noqa: F401 - the fixture is shared

GEOMETRY = pd.DataFrame([
    {"stack_id": "1", "subject_id": "1", "patient_id": "1", "rotated_90": False, "rows": 100,
     "cols": 80, "pixel_spacing_mm": [1.0, 2.0], "slice_spacing_mm": 10.0, "size": 50},
    {"stack_id": "1_rot90", "subject_id": "1", "patient_id": "1", "rotated_90": True, "rows": 80,
     "cols": 100, "pixel_spacing_mm": [2.0, 1.0], "slice_spacing_mm": 10.0, "size": 50},
])


def test_ml_per_pixel_by_hand():
    # max(100, 80)^2 * 1 * 2 * 10 / (1000 * 50^2) = 10000 * 20 / 2.5e6 = 0.08 mL
    assert ml_per_pixel(100, 80, [1.0, 2.0], 10.0, 50) == pytest.approx(0.08)


def test_stack_ef_sums_slices_and_picks_extremes():
    # frames 0..2, two slices each: sums 1500, 700, 1000 -> ED frame 0, ES frame 1
    px = pd.DataFrame({"stack_id": ["1"] * 6, "frame": [0, 0, 1, 1, 2, 2],
                       "lv": [1000, 500, 400, 300, 600, 400]})
    out = stack_ef(px, "lv", GEOMETRY).iloc[0]
    assert (out.ed_frame, out.es_frame) == (0, 1)
    assert out.edv_ml == pytest.approx(120.0) and out.esv_ml == pytest.approx(56.0)
    assert out.ef == pytest.approx(64 / 120)


def test_patient_ef_scores_unrotated_stack_and_missing_counts_as_one():
    px = pd.DataFrame({"stack_id": ["1", "1", "1_rot90", "1_rot90"], "frame": [0, 1, 0, 1],
                       "lv": [1500, 700, 10, 9]})
    truth = pd.DataFrame({"patient_id": ["1", "2"], "systole": [60.0, 50.0], "diastole": [120.0, 100.0]})
    df = patient_ef(px, "lv", GEOMETRY, truth).set_index("patient_id")
    assert df.loc["1", "stack_id"] == "1"
    assert df.loc["1", "abs_diff"] == pytest.approx(abs(0.5 - 64 / 120))
    assert df.loc["2", "abs_diff"] == 1.0 and np.isnan(df.loc["2", "pred_ef"])
    table = ef_summary({"m": df.reset_index()}).iloc[0]
    errs = np.array([abs(0.5 - 64 / 120), 1.0]) * 100
    assert table["mean"] == pytest.approx(errs.mean())
    assert table["sd"] == pytest.approx(errs.std(ddof=1))
    assert table["median"] == pytest.approx(np.median(errs))
    assert table["iqr"] == pytest.approx(np.subtract(*np.percentile(errs, [75, 25])))
    assert table["missing"] == 1


def test_evaluate_writes_tables_and_figures(cohort, tmp_path):  # noqa: F811
    cfg = tiny_config(epochs_frozen=0, epochs_unfrozen=1, augment="none")
    result = train_segmenter(cfg, cohort["slices"], tmp_path / "run")
    out = evaluate({"tiny": result.model_path}, cohort["slices"], cohort["labels"], tmp_path / "eval")
    ef = pd.read_csv(out / "ef_table.csv")
    assert set(ef.method) == {"tiny", "label source (shipped)"}
    assert list(ef.columns[:5]) == ["method", "mean", "sd", "median", "iqr"]
    src = ef.set_index("method").loc["label source (shipped)"]
    assert src["mean"] < 3 and src["n"] == 1  # the masks reproduce the truth up to resizing
    dice = pd.read_csv(out / "dice_table.csv")
    assert dice.method.tolist() == ["tiny"] and 0 <= dice.dice_lv.iloc[0] <= 1
    pred = pd.read_parquet(out / "predictions" / "tiny.parquet")
    assert len(pred) == 18 and {"file", "lv_pixels", "my_pixels"} <= set(pred.columns)
    assert (pred.hd95_lv >= 0).all() and (pred.hd95_my >= 0).all()
    assert dice.hd95_lv_mm.iloc[0] == pytest.approx(pred.hd95_lv.mean(), rel=1e-3)  # %.4g in the CSV
    for name in ("volumes.png", "bland_altman_ef.png", "overlays_tiny.png"):
        assert (out / "figures" / name).read_bytes()[:4] == b"\x89PNG"


def test_hd95_per_image_in_mm_after_the_resize():
    """A 2-pixel shift of the LV is 2 * (mm per resized pixel); an absent MY on both sides is 0."""
    import torch

    from hpc_seg.cardiac.segment import hd95_columns, image_spacing

    # 128 x 96 pixels of 1.5 x 1.25 mm fitted into 64: the longer side halves.
    assert image_spacing(128, 96, [1.5, 1.25], 64) == pytest.approx([3.0, 2.5])
    masks = torch.zeros(1, 64, 64, dtype=torch.uint8)
    masks[0, 20:30, 20:30] = 1
    pred = torch.zeros_like(masks)
    pred[0, 22:32, 20:30] = 1      # shifted 2 pixels along the rows
    geometry = pd.DataFrame({"rows": [128], "cols": [96], "pixel_spacing_mm": [[1.5, 1.25]]})
    got = hd95_columns(pred, masks, geometry, 64)
    assert got["hd95_lv"][0] == pytest.approx(6.0)
    assert got["hd95_my"][0] == 0.0
