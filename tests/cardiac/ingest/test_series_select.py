"""Header-based series selection: a scanner export mixing a cine SAX stack, 2CH/4CH cines,
localisers and a DICOMDIR ingests only the SAX stack and lists the rest in ``issues``."""

from __future__ import annotations

import numpy as np

from hpc_seg.cardiac.dicom.frame import DicomFrame
from hpc_seg.cardiac.ingest.series_select import select_sax
from tests.cardiac.ingest.variant_cohort import (assert_same_stacks, ingest_tables, stacks,
                                                 variant)


def test_export_with_long_axis_localisers_and_dicomdir_ingests_only_sax(original, tmp_path):
    root, want = original
    src = variant(root, tmp_path / "src", layout="export", transfer_syntax="jpeg-lossless",
                  exam=False)
    assert (src / "DICOMDIR").is_file()
    t = ingest_tables(src, tmp_path / "out")
    assert_same_stacks(stacks(t["volumes"]), want)
    issues = t["issues"]
    for pid in ("1", "2"):
        mine = issues[issues["patient_id"] == pid]
        skipped = mine[mine["resolution"] == "series skipped"]
        details = " | ".join(skipped["detail"])
        assert sorted(skipped["problem"]) == ["localiser", "long_axis", "long_axis"], details
        assert "LAX_2Ch" in details and "LAX_4Ch" in details and "localizer" in details
    assert (issues["problem"] == "dicomdir").sum() == 1
    patients = t["patients"].set_index("patient_id")
    assert patients["n_used"].to_dict() == {"1": 24, "2": 24}     # 6 slices x 4 frames, no more
    # every other file is counted as skipped: 2 + 2 long-axis, 3 localisers (+ the DICOMDIR)
    assert patients["n_skipped"].to_dict() == {"1": 8, "2": 7}
    assert (patients["n_used"] + patients["n_skipped"] == patients["n_files"]).all()


def _frame(series: int, pos: float, t: int, iop=(1, 0, 0, 0, 1, 0), study: str = "s1",
           desc: str = "") -> DicomFrame:
    return DicomFrame(file=f"{series}/{pos}/{t}", series_uid=f"uid{series}", series_number=series,
                      series_time_s=0.0, instance_number=t + 1, sop_uid=f"{series}.{pos}.{t}",
                      ipp=np.array([0.0, 0.0, pos]), iop=np.asarray(iop, float),
                      pixel_spacing=(1.0, 1.0), rows=4, cols=4, trigger_time_ms=30.0 * t,
                      slice_thickness=8.0, study_uid=study, series_description=desc)


def test_rule_on_headers_one_series_per_slice_and_a_multislice_series():
    sax = [_frame(10 + k, 8.0 * k, t) for k in range(5) for t in range(3)]      # Kaggle style
    two_ch = [_frame(30, 0.0, t, iop=(0, 1, 0, 0, 0, -1)) for t in range(3)]
    four_ch = [_frame(31, 0.0, t, iop=(0.7071, 0.7071, 0, 0, 0, -1)) for t in range(3)]
    scout = [_frame(1, 0.0, 0, iop=iop) for iop in ((1, 0, 0, 0, 1, 0), (0, 1, 0, 0, 0, -1))]
    single = [_frame(2, 8.0 * k, 0) for k in range(6)]                           # not a cine
    other_study = [_frame(40, 8.0 * k, t, study="s2") for k in range(3) for t in range(3)]
    kept, issues = select_sax("7", sax + two_ch + four_ch + scout + single + other_study)
    assert {f.series_number for f in kept} == set(range(10, 15))
    assert sorted((i.problem, i.file.split("/")[0]) for i in issues) == [
        ("localiser", "1"), ("long_axis", "30"), ("long_axis", "31"), ("not_cine", "2"),
        ("other_stack", "40")]
    multi = [_frame(5, 8.0 * k, t) for k in range(4) for t in range(3)]
    kept, issues = select_sax("7", multi + two_ch)
    assert len(kept) == 12 and [i.problem for i in issues] == ["long_axis"]
