"""What a test cohort asks of a model: one pixel of border, and whether the border is visible."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hpc_seg.bench.cohort_difficulty import (border_contrast, border_sensitivity, contrast_line,
                                             unseen_border)
from hpc_seg.bench.generalise import format_summary, visible_border_scores


def test_one_pixel_of_border_is_scored_on_the_true_masks(tmp_path):
    """ED: a 10 x 10 LV (100 px), grown by one pixel 4-connected: 140; ES: 6 x 6 (36) -> 60."""
    def square(n: int) -> bytes:
        m = np.zeros((32, 32), np.uint8)
        m[8:8 + n, 8:8 + n] = 1
        m[0, 0] = 2                                   # myocardium is not LV
        return m.tobytes()

    rows = [{"patient_id": p, "is_ed": ed, "is_es": not ed, "mask": square(10 if ed else 6),
             "shape": [32, 32]} for p in ("1", "2") for ed in (True, False)]
    rows.append({"patient_id": "3", "is_ed": True, "is_es": False, "mask": square(0),
                 "shape": [32, 32]})                    # no LV at all: left out
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "part-0.parquet")
    b = border_sensitivity(tmp_path)
    assert b["edv_pct"] == pytest.approx(40.0) and b["esv_pct"] == pytest.approx(60 / 36 * 100 - 100)
    assert b["ef"] == pytest.approx(abs((1 - 60 / 140) - (1 - 36 / 100)) * 100)
    line = format_summary(pd.DataFrame(), {"image_size": 32, **b}).splitlines()[-1]
    assert line.endswith("at 32 px: EF 6.9, EDV 40.0 %, ESV 66.7 %.")


def _slice(pid: str, ed: bool, blood: float, muscle: float, seed: int) -> dict:
    """A 32 x 32 slice: a 10 x 10 LV cavity of grey ``blood`` in a 3-pixel myocardial ring of grey
    ``muscle``, both with noise of sd 4."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 2
    mask[11:21, 11:21] = 1
    img = np.where(mask == 1, blood, np.where(mask == 2, muscle, 10.0)) + rng.normal(0, 4, (32, 32))
    return {"patient_id": pid, "is_ed": ed, "is_es": not ed, "shape": [32, 32],
            "image": np.clip(img, 0, 255).astype(np.uint8).tobytes(), "mask": mask.tobytes()}


def test_a_cavity_with_the_myocardiums_grey_value_has_no_visible_border(tmp_path):
    """Patient 1: bright blood at ED and ES (contrast 100 / 4 = 25); patient 2: dark blood, still
    visible (either sign counts); patient 3: its ES blood as grey as the muscle."""
    rows = [_slice("1", True, 200, 100, 0), _slice("1", False, 200, 100, 1),
            _slice("2", True, 40, 120, 2), _slice("2", False, 40, 120, 3),
            _slice("3", True, 200, 100, 4), _slice("3", False, 101, 100, 5)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "part-0.parquet")
    c = border_contrast(tmp_path).set_index("patient_id")
    assert c.loc["1", "ed_cnr"] == pytest.approx(25, rel=0.15)
    assert c.loc["2", "es_cnr"] == pytest.approx(20, rel=0.15)
    assert c.loc["3", "ed_cnr"] > 20 and c.loc["3", "es_cnr"] < 1
    low = unseen_border(c.reset_index())
    assert low.patient_id.tolist() == ["3"]
    line = contrast_line({"held_out": c.reset_index().iloc[:2], "cross": c.reset_index()})
    assert re.search(r"below 1 at ED or ES.*: held_out none; cross 3 \(ED 2\d\.\d, ES 0\.\d\)\.$", line)


def test_visible_border_scores_leave_out_only_the_named_patients():
    rows = pd.DataFrame({"patient_id": ["1", "2", "3", "3"], "method": ["model"] * 3 + ["labels"],
                         "true_edv_ml": [100.0] * 4, "pred_edv_ml": [110.0, 90.0, 200.0, 100.0],
                         "true_esv_ml": [50.0] * 4, "pred_esv_ml": [50.0, 50.0, 100.0, 50.0],
                         "abs_diff": [0.02, 0.04, 0.5, 0.0], "pred_ef": [0.5] * 4})
    s = visible_border_scores(rows, {"3"})
    assert s["n"] == 2 and s["edv_err_pct"] == pytest.approx(10.0)
    assert s["ef_err"] == pytest.approx(3.0) and s["esv_err_pct"] == pytest.approx(0.0)
    assert visible_border_scores(rows, set()) is None          # nobody to leave out
    assert visible_border_scores(rows, {"9"}) is None          # not in this cohort


def test_the_summary_shows_the_visible_border_column_only_when_someone_is_left_out():
    row = {"training cohort": "variety", "recipe": "hybrid", "augment": "normal",
           "appearance": "hybrid", "loss": "dicece", "budget": "1+1 epochs x 8 images",
           "images trained": 16, "within floor EF/EDV/ESV": "0/0/0", "cross floor EF/EDV/ESV": "0/0/0",
           "train wall min": 1.0, "load mean": 1.0, "load max": 1.0, "aim met": False,
           **{f"{c} {k}": 1.0 for c in ("within", "cross", "own test") for k in ("EF", "EDV %", "ESV %")}}
    plain = format_summary(pd.DataFrame([row]))
    assert "visible border" not in plain
    wide = format_summary(pd.DataFrame([{**row, "cross visible EF": 0.5, "cross visible EDV %": 2.0,
                                         "cross visible ESV %": 3.0}]))
    header, rule, line = wide.splitlines()[:3]
    assert "cross, visible border" in header
    assert header.count("|") == rule.count("|") == line.count("|")
    assert "| 0.50 / 2.0 / 3.0 |" in line
