"""Every quirk of the synthetic cine cohort shows in the files, and the manifest predicts it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.errors import InvalidDicomError

from hpc_seg.cardiac.synth import quirks as cine_quirks
from hpc_seg.cardiac.synth.cohort import generate_cine_cohort
from hpc_seg.cardiac.synth.config import GUARANTEED, QUIRKS, CineSynthConfig
from hpc_seg.cardiac.synth.plan import build_plan
from tests.cardiac.synth.helpers import (TINY, curated_lv_volumes, load_manifest,
                                                read_patient, score, truth_rows)

PID = {q: i + 1 for i, q in enumerate(QUIRKS)}        # quirk -> the one patient that has it
CLEAN = len(QUIRKS) + 1


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("quirks") / "cohort"
    cfg = CineSynthConfig(no_random_quirks=True, force_quirks={q: [p] for q, p in PID.items()},
                          **TINY)
    generate_cine_cohort(root, CLEAN, 11, cfg)
    return root, load_manifest(root)


def _sax(cohort, quirk: str) -> tuple[dict, dict]:
    root, manifest = cohort
    pid = str(PID[quirk])
    return manifest["patients"][pid], read_patient(root, pid, manifest)


def _positions(series: dict) -> list[tuple[float, int]]:
    return sorted((imgs[0].position, sn) for sn, imgs in series.items())


def test_each_patient_has_exactly_its_forced_quirk(cohort):
    _, manifest = cohort
    for quirk, pid in PID.items():
        assert manifest["patients"][str(pid)]["quirks"] == [quirk]
    assert manifest["patients"][str(CLEAN)]["quirks"] == []


def test_fewer_phases(cohort):
    entry, series = _sax(cohort, "fewer_phases")
    counts = {sn: len(imgs) for sn, imgs in series.items()}
    short = [sn for sn, c in counts.items() if c < TINY["n_frames"]]
    assert len(short) == 1 and Counter(counts.values()).most_common(1)[0][0] == TINY["n_frames"]
    assert series[short[0]][0].ds.CardiacNumberOfImages == counts[short[0]]
    assert entry["expected_stacks"][0]["shape"][0] == TINY["n_frames"]


def test_other_geometry_keeps_the_field_of_view(cohort):
    entry, series = _sax(cohort, "other_geometry")
    geo = {sn: (imgs[0].ds.Rows, imgs[0].ds.Columns, tuple(map(float, imgs[0].ds.PixelSpacing)))
           for sn, imgs in series.items()}
    common, n = Counter(geo.values()).most_common(1)[0]
    odd = [g for g in geo.values() if g != common]
    assert n == len(geo) - 1 and len(odd) == 1
    (r, c, ps), (r0, c0, ps0) = odd[0], common
    assert r != r0 and ps[0] != ps0[0]
    assert r * ps[0] == pytest.approx(r0 * ps0[0], rel=1e-3)
    assert c * ps[1] == pytest.approx(c0 * ps0[1], rel=2e-2)
    stack = entry["expected_stacks"][0]
    assert stack["shape"][2:] == [r0, c0] and stack["pixel_spacing_mm"] == list(ps0)


def test_inplane_rotated_slice_has_a_parallel_normal_and_rotated_pixels(cohort):
    entry, series = _sax(cohort, "inplane_rotated")
    iops = {sn: tuple(np.round(np.asarray(imgs[0].ds.ImageOrientationPatient, float), 4))
            for sn, imgs in series.items()}
    common = Counter(iops.values()).most_common(1)[0][0]
    odd = [sn for sn, iop in iops.items() if iop != common]
    assert len(odd) == 1
    rot, ref = series[odd[0]][0], series[next(sn for sn in iops if iops[sn] == common)][0]
    assert rot.normal @ ref.normal == pytest.approx(1.0, abs=1e-5)
    assert abs(np.dot(rot.ds.ImageOrientationPatient[:3], ref.ds.ImageOrientationPatient[:3])) < 1e-5
    assert (rot.ds.Rows, rot.ds.Columns) == (ref.ds.Columns, ref.ds.Rows)
    # The body outline sits where the geometry says: the air mask of the rotated slice, moved to
    # LPS and projected into the reference slice, matches the reference's air mask.
    pr = pydicom.dcmread(rot.path).pixel_array
    pf = pydicom.dcmread(ref.path).pixel_array
    rr, cc = np.nonzero(np.ones_like(pr, bool))
    lps = rot.lps(rr, cc)
    iop = np.asarray(ref.ds.ImageOrientationPatient, float)
    ps = np.asarray(ref.ds.PixelSpacing, float)
    d = lps - np.asarray(ref.ds.ImagePositionPatient, float)
    col = np.rint(d @ iop[:3] / ps[1]).astype(int)
    row = np.rint(d @ iop[3:] / ps[0]).astype(int)
    ok = (row >= 0) & (row < pf.shape[0]) & (col >= 0) & (col < pf.shape[1])
    a = pr[rr[ok], cc[ok]].astype(float)
    b = pf[row[ok], col[ok]].astype(float)
    assert np.corrcoef(a, b)[0, 1] > 0.8
    assert entry["expected_stacks"][0]["kept_series_by_position"] == [sn for _, sn in
                                                                      _positions(series)]


def test_rows_lt_cols_gives_two_expected_stacks(cohort):
    entry, series = _sax(cohort, "rows_lt_cols")
    assert all(im.ds.Rows < im.ds.Columns for imgs in series.values() for im in imgs)
    plain, rotated = entry["expected_stacks"]
    assert not plain["rotated_90"] and rotated["rotated_90"]
    t, s, r, c = plain["shape"]
    assert r < c and rotated["shape"] == [t, s, c, r]
    assert rotated["pixel_spacing_mm"] == plain["pixel_spacing_mm"][::-1]


def test_repeated_location_keeps_the_later_series(cohort):
    entry, series = _sax(cohort, "repeated_location")
    pos = _positions(series)
    close = [(a, b) for a, b in zip(pos, pos[1:]) if b[0] - a[0] < 1.0]
    assert len(close) == 1
    (pa, sa), (pb, sb) = close[0]
    later = max(sa, sb)
    assert later == max(series)
    assert series[later][0].ds.SeriesTime > series[min(sa, sb)][0].ds.SeriesTime
    stack = entry["expected_stacks"][0]
    assert later in stack["kept_series_by_position"]
    assert min(sa, sb) not in stack["kept_series_by_position"]
    assert len(stack["slice_positions_mm"]) == len(series) - 1
    a = pydicom.dcmread(series[sa][0].path).pixel_array
    b = pydicom.dcmread(series[sb][0].path).pixel_array
    assert not np.array_equal(a, b) and np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.8


def test_complete_repeat_in_the_same_folders(cohort):
    entry, series = _sax(cohort, "complete_repeat")
    folders = Counter(imgs[0].path.parent.name for imgs in series.values())
    assert set(folders.values()) == {2}
    a, b = entry["expected_stacks"]
    assert (a["subject_id"], b["subject_id"]) == (f"{PID['complete_repeat']}_a",
                                                  f"{PID['complete_repeat']}_b")
    assert set(a["kept_series_by_position"]).isdisjoint(b["kept_series_by_position"])
    assert set(a["kept_series_by_position"]) | set(b["kept_series_by_position"]) == set(series)
    assert max(series[sn][0].ds.SeriesTime for sn in a["kept_series_by_position"]) \
        < min(series[sn][0].ds.SeriesTime for sn in b["kept_series_by_position"])
    assert np.allclose(a["slice_positions_mm"], b["slice_positions_mm"], atol=0.05)


def test_nonuniform_spacing_leaves_one_double_gap_that_the_manifest_fills(cohort):
    entry, series = _sax(cohort, "nonuniform_spacing")
    pos = [p for p, _ in _positions(series)]
    gaps = np.diff(pos)
    spacing = entry["expected_stacks"][0]["slice_spacing_mm"]
    assert sorted(np.round(gaps / spacing, 2))[-1] == pytest.approx(2.0, abs=0.01)
    assert np.sum(np.abs(gaps / spacing - 1) < 0.01) == len(gaps) - 1
    stack = entry["expected_stacks"][0]
    assert len(stack["slice_positions_mm"]) == len(pos) + 1
    assert np.allclose(np.diff(stack["slice_positions_mm"]), spacing, atol=0.05)
    kept = stack["kept_series_by_position"]
    assert len(set(kept)) == len(kept) - 1         # the filled gap repeats its neighbour


def test_outlier_slice_is_expected_to_be_removed(cohort):
    entry, series = _sax(cohort, "outlier_slice")
    pos = _positions(series)
    spacing = entry["expected_stacks"][0]["slice_spacing_mm"]
    assert (pos[1][0] - pos[0][0]) / spacing > 2.5
    assert pos[0][1] not in entry["expected_stacks"][0]["kept_series_by_position"]
    assert len(entry["expected_stacks"][0]["slice_positions_mm"]) == len(pos) - 1


@pytest.mark.parametrize("quirk,reason", [("truncated_file", "truncated"),
                                          ("not_dicom", "not_dicom"),
                                          ("no_pixel_data", "no_pixel_data")])
def test_broken_files_fail_the_way_the_manifest_says(cohort, quirk, reason):
    root, manifest = cohort
    entry = manifest["patients"][str(PID[quirk])]
    assert [s["reason"] for s in entry["skipped_files"]] == [reason]
    path = root / entry["skipped_files"][0]["file"]
    assert path.exists() and path.suffix == ".dcm"
    if reason == "not_dicom":
        with pytest.raises(InvalidDicomError):
            pydicom.dcmread(path)
        return
    ds = pydicom.dcmread(path)
    assert ds.Rows > 0 and "SOPInstanceUID" in ds and "ImagePositionPatient" in ds
    if reason == "truncated":
        assert "PixelData" in ds
        with pytest.raises(ValueError):
            ds.pixel_array
    else:
        assert "PixelData" not in ds
    for other, e in manifest["patients"].items():
        if other != str(PID[quirk]) and not e["quirks"]:
            assert e["skipped_files"] == []


def test_truth_holds_for_every_quirk(cohort):
    root, manifest = cohort
    truth = truth_rows(root)
    for pid, entry in manifest["patients"].items():
        for stack in entry["expected_stacks"]:
            if stack["rotated_90"]:
                continue
            vols = curated_lv_volumes(root, pid, manifest, stack)
            assert score(vols, *truth[pid]) < 0.02, (pid, entry["quirks"])


def test_default_rates_and_the_guarantee_cover_every_quirk_in_20_patients():
    cfg = CineSynthConfig()
    seen = set()
    for pid in range(1, 21):
        seen |= set(cine_quirks.choose_quirks(0, pid, cfg))
    assert seen >= set(GUARANTEED)
    clean = [pid for pid in range(1, 21) if not cine_quirks.choose_quirks(0, pid, cfg)]
    assert len(clean) >= 3            # most odd patients carry no quirk
    assert cine_quirks.choose_quirks(0, 4, CineSynthConfig(no_random_quirks=True)) == []


def test_large_matrices_are_expected_downscaled_to_256():
    """Plan-level (nothing rendered): a 512x416 acquisition with Rows < Columns."""
    cfg = CineSynthConfig(matrices=[[512, 416]], matrix_weights=[1.0], n_frames=30,
                          no_random_quirks=True)
    plan = build_plan(5, 1, 1, cfg)
    cine_quirks.apply_quirks(plan, ["rows_lt_cols"], 5, cfg)
    plain, rotated = cine_quirks.expected_stacks(plan)
    ps = plan.sax(0)[0].plane.ps_row
    assert plain["scale_factor"] == 0.5
    assert plain["shape"][2:] == [208, 256] and rotated["shape"][2:] == [256, 208]
    assert plain["pixel_spacing_mm"] == pytest.approx([2 * ps, 2 * ps], abs=1e-4)
