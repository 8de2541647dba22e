"""QMass .con: round trip against the 7T generator's truth, malformed files, missing slices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hpc_seg.cardiac.ingest.con_layout import scan_images, volunteer_masks
from hpc_seg.cardiac.ingest.qmass_con import (LV_ENDO, LV_EPI, Contour, contours_to_mask,
                                              dicom_slice, fill_polygon, mask_outline, read_con,
                                              write_con)
from hpc_seg.cardiac.synth.domain_7t import Synth7TConfig, generate_7t_cohort
from hpc_seg.errors import InputError

TINY = dict(volunteers=2, second_observer=1, max_matrix=96, slices=(6, 7), frames=(4, 5),
            voids=(1, 2))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("c7t") / "cohort"
    generate_7t_cohort(out, Synth7TConfig(**TINY))
    return out


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else 2.0 * (a & b).sum() / s


def test_round_trip_matches_truth_on_every_labelled_image(cohort):
    manifest = json.loads((cohort / "manifest.json").read_text())
    checked = 0
    for vid in manifest["volunteers"]:
        refs = scan_images(cohort / vid)
        masks, issues = volunteer_masks(vid, cohort / vid / f"{vid}.con", refs, "reversed")
        assert issues == []
        truth = np.load(cohort / "truth_masks" / f"{vid}.npz")
        assert set(masks) == set(truth.files)          # every image gets a mask (empty if no contour)
        for uid, m in masks.items():
            t = truth[uid]
            assert m.shape == t.shape                  # rasterised on the image's own grid
            for label in (1, 2):
                if (t == label).any():
                    assert _dice(m == label, t == label) >= 0.98, (vid, uid, label)
                    checked += 1
    assert checked > 20


def test_wrong_slice_order_is_visibly_wrong(cohort):
    vid = next(iter(json.loads((cohort / "manifest.json").read_text())["volunteers"]))
    refs = scan_images(cohort / vid)
    right, _ = volunteer_masks(vid, cohort / vid / f"{vid}.con", refs, "reversed")
    wrong, _ = volunteer_masks(vid, cohort / vid / f"{vid}.con", refs, "dicom")
    truth = np.load(cohort / "truth_masks" / f"{vid}.npz")
    err = lambda ms: sum(int((ms[u] != truth[u]).sum()) for u in ms)  # noqa: E731
    assert err(right) < err(wrong) / 10


def test_second_observer_differs_about_as_published(cohort):
    manifest = json.loads((cohort / "manifest.json").read_text())
    (vid,) = manifest["second_observer"]
    refs = scan_images(cohort / vid)
    o1, _ = volunteer_masks(vid, cohort / vid / f"{vid}.con", refs, "reversed")
    o2, _ = volunteer_masks(vid, cohort / vid / f"{vid}_observer2.con", refs, "reversed")
    lv = [_dice(o1[u] == 1, o2[u] == 1) for u in o1 if (o1[u] == 1).any()]
    my = [_dice(o1[u] == 2, o2[u] == 2) for u in o1 if (o1[u] == 2).any()]
    assert 0.85 < np.mean(lv) < 0.99 and 0.65 < np.mean(my) < 0.93


def test_outline_fill_is_exact_for_one_piece():
    yy, xx = np.mgrid[:40, :50]
    region = ((xx - 20) / 12.0) ** 2 + ((yy - 18) / 7.0) ** 2 < 1
    pts = mask_outline(region)
    assert np.array_equal(fill_polygon(pts, 40, 50), region)
    assert mask_outline(np.zeros((5, 5), bool)) is None


def test_write_read_round_trip_and_crlf(tmp_path):
    square = np.array([[1.5, 1.5], [6.5, 1.5], [6.5, 5.5], [1.5, 5.5]])
    inner = np.array([[2.5, 2.5], [4.5, 2.5], [4.5, 3.5], [2.5, 3.5]])
    path = write_con(tmp_path / "a.con", [Contour(0, 1, LV_EPI, square), Contour(0, 1, LV_ENDO, inner)],
                     {"Patient_id": "7", "Image_resolution": "8x8"})
    assert b"\r\n" in path.read_bytes()
    con = read_con(path)
    assert con.header["Patient_id"] == "7" and con.image_resolution() == (8, 8)
    assert [(c.slice, c.phase, c.type) for c in con.contours] == [(0, 1, 1), (0, 1, 0)]
    mask = contours_to_mask(con.contours, 8, 8)
    # pixel centres (c, r) inside: epicardium 5 x 4 = 20, endocardium 2 x 1 = 2
    assert (mask == 1).sum() == 2 and (mask == 2).sum() == 20 - 2
    assert dicom_slice(0, 10) == 9 and dicom_slice(0, 10, "dicom") == 0


@pytest.mark.parametrize("body, line, reason", [
    ("[XYCONTOUR]\r\n0 x 0 1.0\r\n3\r\n", 2, "must be integers"),
    ("[XYCONTOUR]\r\n0 0 0 1.0\r\nthree\r\n", 3, "number of points must be an integer"),
    ("[XYCONTOUR]\r\n0 0 0 1.0\r\n3\r\n1 2\r\n3 4\r\n", 5, "file ends after 2 of 3 points"),
    ("[XYCONTOUR]\r\n0 0 0 1.0\r\n3\r\n1 2\r\n3 oops\r\n5 6\r\n", 5, "expected 'x y'"),
    ("[XYCONTOUR]\r\n0 0\r\n", 2, "expected 'slice phase type 1.0'"),
    ("[XYCONTOUR\r\n", 1, "unterminated section"),
])
def test_malformed_con_is_one_line_error_with_file_line_reason(tmp_path, body, line, reason):
    path = tmp_path / "bad.con"
    path.write_bytes(("Patient_id=1\r\n" + body).encode())
    with pytest.raises(InputError) as err:
        read_con(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: line {line + 1}: ") and reason in msg


def test_contour_for_missing_slice_or_phase_is_an_issue_and_skipped(cohort, tmp_path):
    vid = next(iter(json.loads((cohort / "manifest.json").read_text())["volunteers"]))
    refs = scan_images(cohort / vid)
    con = read_con(cohort / vid / f"{vid}.con")
    n = max(r.slice for r in refs) + 1
    extra = [Contour(n + 2, 0, LV_ENDO, np.array([[1.0, 1], [5, 1], [5, 5]])),
             Contour(0, 99, LV_EPI, np.array([[1.0, 1], [5, 1], [5, 5]]))]
    path = write_con(tmp_path / f"{vid}.con", con.contours + extra, con.header)
    masks, issues = volunteer_masks(vid, path, refs, "reversed")
    good, _ = volunteer_masks(vid, cohort / vid / f"{vid}.con", refs, "reversed")
    assert [i["problem"] for i in issues] == ["contour_without_image"] * 2
    assert all(i["resolution"] == "contour skipped" and i["file"] == str(path) for i in issues)
    assert f"slice {n + 2} phase 0" in issues[0]["detail"] and "phase 99" in issues[1]["detail"]
    assert all(np.array_equal(masks[u], good[u]) for u in good)   # the rest is kept
