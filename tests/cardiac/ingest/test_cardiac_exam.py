"""A whole cardiac exam as each vendor's scanner exports it: only the short-axis cine becomes a
stack; every other series is an ``issues`` row with its own reason; the cine written one series
per slice gives the same stack as the cine written as one series; the user's series choice
overrides the headers and re-does the patients it changes."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pyarrow.parquet as pq
import pydicom
import pytest

from hpc_seg.cardiac.ingest.run import IngestConfig, ingest
from hpc_seg.cli import main
from hpc_seg.config import from_dict
from hpc_seg.errors import ConfigError
from tests.cardiac.ingest.variant_cohort import (LOCAL, assert_same_stacks, ingest_tables, stacks,
                                                 variant)

#: series left out of each vendor's exam, by reason (the vendors write flow and PSIR in one
#: series or two); the file-level rows (DICOMDIR, screenshot, PDF) are counted apart
SERIES_SKIPPED = {
    "siemens": {"localiser": 1, "long_axis": 2, "realtime": 1, "perfusion": 1, "flow": 2,
                "mapping": 2, "lge": 2},
    "philips": {"localiser": 1, "long_axis": 2, "realtime": 1, "perfusion": 1, "flow": 1,
                "mapping": 2, "lge": 1},
    "ge": {"localiser": 1, "long_axis": 2, "realtime": 1, "perfusion": 1, "flow": 1,
           "mapping": 2, "lge": 2},
    "canon": {"localiser": 1, "long_axis": 2, "realtime": 1, "perfusion": 1, "flow": 1,
              "mapping": 2, "lge": 2},
}
#: the vendor habits each kind of series must be recognised by (words of the issue's detail)
WHY = {"siemens": {"flow": "velocity-encoded sequence", "realtime": "48 ms apart"},
       "philips": {"flow": "image type", "realtime": "48 ms apart"},
       "ge": {"flow": "phase images", "realtime": "not ECG-gated (HeartRate 0)"},
       "canon": {"flow": "phase images", "realtime": "48 ms apart"}}


def _sax_series(src) -> set[str]:
    found = set()
    for path in src.glob("PT*/**/*"):           # the File-set's image files
        if path.is_file():
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            if str(ds.get("SeriesDescription", "")).startswith("CINE_segmented_SAX"):
                found.add(str(ds.SeriesInstanceUID))
    return found


@pytest.mark.parametrize("vendor,encoding", [
    *[(v, {}) for v in sorted(SERIES_SKIPPED)],
    ("siemens", {"multiframe": True, "transfer_syntax": "jpeg-ls"}),      # enhanced MR files
    ("ge", {"multiframe": True, "transfer_syntax": "implicit"})])
def test_each_vendors_exam_ingests_only_the_short_axis_cine(original, vendor, encoding, tmp_path):
    root, want = original
    src = variant(root, tmp_path / "src", layout="export", vendor=vendor, **encoding)
    t = ingest_tables(src, tmp_path / "out")
    assert_same_stacks(stacks(t["volumes"]), want)
    issues = t["issues"]
    for pid in ("1", "2"):
        mine = issues[issues["patient_id"] == pid]
        series = mine[mine["resolution"] == "series skipped"]
        assert dict(Counter(series["problem"])) == SERIES_SKIPPED[vendor], " | ".join(series["detail"])
        for kind, words in WHY[vendor].items() if not encoding else ():
            assert words in " ".join(series[series["problem"] == kind]["detail"]), kind
        files = Counter(mine[mine["resolution"] == "file skipped"]["problem"])
        assert files["secondary_capture"] == 1 and files["not_image"] == 1
        assert "decode_error" not in files and "pydicom_log" not in set(mine["problem"])
    assert (issues["problem"] == "dicomdir").sum() == 1
    patients = t["patients"].set_index("patient_id")
    # 6 slices x 4 frames; enhanced MR: one file per series (Siemens: per slice, GE: one)
    used = {"siemens": 6, "ge": 1}[vendor] if encoding.get("multiframe") else 24
    assert patients["n_used"].to_dict() == {"1": used, "2": used}
    assert (patients["n_used"] + patients["n_skipped"] == patients["n_files"]).all()
    if vendor == "ge":       # field strength written in gauss comes out in tesla
        subjects = pd.read_parquet(tmp_path / "out" / "subjects")
        assert set(subjects["field_strength_t"]) == {"1.5"}


@pytest.mark.parametrize("vendor", ["siemens", "philips"])
def test_one_series_per_slice_and_one_series_give_the_same_stack(original, vendor, tmp_path):
    root, want = original
    got = {}
    for form in ("per-slice", "single"):
        src = variant(root, tmp_path / form, layout="export", vendor=vendor, sax_series=form,
                      transfer_syntax="implicit")
        # the two forms really differ: 6 series of one slice, or one of 6 slices, per patient
        assert len(_sax_series(src)) == (12 if form == "per-slice" else 2)
        got[form] = stacks(ingest_tables(src, tmp_path / f"{form}-out")["volumes"])
        assert_same_stacks(got[form], want)


def test_a_forced_series_and_an_excluded_one_and_their_rerun(original, tmp_path):
    root, _want = original
    src = variant(root, tmp_path / "src", layout="export", vendor="siemens")
    out = tmp_path / "out"
    ingest(src, out, LOCAL)
    assert len(pd.read_parquet(out / "volumes")) == 2
    # Leave out the short-axis cine (a description pattern, any case): no stack, and a re-run
    # with the other choice re-does both patients.
    summary = ingest(src, out, IngestConfig(engine="local", workers=1, progress=False,
                                            exclude_series=["cine_segmented_sax*"]))
    assert summary.patients == 2 and summary.patients_skipped_done == 0
    issues = pd.read_parquet(out / "issues")
    assert (issues["problem"] == "excluded").sum() == 2 * 6           # the 6 SAX series
    assert not any(pq.read_metadata(p).num_rows for p in (out / "volumes").glob("*.parquet"))
    # Force the real-time cine by number: it becomes the stack (3 positions of 24 images).
    out2 = tmp_path / "forced"
    assert main(["ingest", str(src), str(out2), "--workers", "1", "--engine", "local",
                 "--series", "100"]) == 0
    volumes = pd.read_parquet(out2 / "volumes")
    assert len(volumes) == 2
    for frames, slices, rows, cols in volumes["shape"]:
        assert (frames, rows, cols) == (24, 64, 52) and slices >= 2   # (uneven gaps: curated)
    chosen = pd.read_parquet(out2 / "issues")
    assert (chosen["problem"] == "not_chosen").sum() > 0
    assert not (chosen["problem"] == "realtime").any()


def test_series_choice_in_the_ingest_table():
    cfg = from_dict(IngestConfig, {"series": [12, "1.2.840.1"], "exclude_series": ["*lge*"]},
                    "[ingest]")
    assert cfg.series == ["12", "1.2.840.1"] and cfg.exclude_series == ["*lge*"]
    with pytest.raises(ConfigError, match="series"):
        IngestConfig(series="12")
