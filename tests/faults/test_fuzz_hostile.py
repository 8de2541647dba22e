"""Property-based fuzzing of hostile DICOM headers and QMass contour files (Hypothesis).

Every example writes a small scanner export (3 slices x 3 frames of 16 x 16 pixels, one of them
RLE-compressed) whose headers carry random values: PatientID, UIDs and descriptions (any text,
``..``, ``/``, 5,000 characters, bytes that are not UTF-8), numbers ('1.5', 'abc', 'inf'),
geometry (NaN, infinity, 1e300, missing values) and sizes (Rows/Columns up to 65535,
NumberOfFrames up to 10**9, BitsAllocated, cut pixel data). ``hpc-seg ingest`` (or, for about
one example in four, ``hpc-seg predict``) runs on it in this process, and must:

- exit 0 or 2 (``predict``: 1 when some stacks are listed in failed.csv), never raise;
- on exit 2 print exactly one error line; every ``issues`` row is one line;
- write nothing outside OUT;
- stay under the decoded-size budget: Python/numpy allocations (tracemalloc) and the process's
  peak RSS grow by no more than the budget plus a fixed allowance for the tables.

Contour files get the same treatment through the staging of a DICOM + ``.con`` volunteer: random
headers, counts, coordinates (NaN, 1e300, negative) and random bytes give either staged masks
with a positive, finite truth volume, or ``con_issues`` rows, never an exception.

The budget is fixed (``HPC_SEG_FUZZ_EXAMPLES``, default 60 DICOM and 180 contour examples;
derandomised, so a CI run is reproducible; ``HPC_SEG_FUZZ_RANDOM=1`` explores new examples each
run); the number of examples tried is printed in pytest's summary.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import shutil
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataelem import RawDataElement
from pydicom.datadict import tag_for_keyword
from pydicom.tag import Tag
from pydicom.uid import RLELossless

from hpc_seg.cli import main
from tests.cardiac.ingest.dicom_fixtures import write_slice

# a fixed number of examples, not a fixed time: a loaded machine may need longer than the default
pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(1800)]
EXAMPLES = int(os.environ.get("HPC_SEG_FUZZ_EXAMPLES", "60"))
#: HPC_SEG_FUZZ_RANDOM=1: new examples every run (exploration) instead of CI's fixed ones
FIXED = not os.environ.get("HPC_SEG_FUZZ_RANDOM")
BUDGET_MB = 24.0
#: what a run may allocate besides one decoded file (tables, curation copies; for predict the
#: model and its activations), measured on the unmodified export after a warm-up run
ALLOWANCE_MB = {"ingest": 64.0, "predict": 256.0}
RSS_ALLOWANCE_MB = 400.0
#: examples tried and their outcomes, printed by tests/faults/conftest.py's summary hook
REPORT: dict[str, dict[str, int]] = {}

TEXT = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["..", ".", "", "/", "../../outside", "a/b", "-rf", "A" * 300, "A" * 5000,
                     "line\nbreak", "\x00", "é" * 10, "\\", "CON", "*?<>|"]))
NUMBER = st.one_of(
    st.text(alphabet="0123456789.-+eEinfaN \\", max_size=24),
    st.sampled_from(["1.5", "abc", "inf", "-inf", "nan", "-1", "0", "1e400",
                     "99999999999999999999", "1\\2"]),
    st.integers(-10, 10**9).map(str))
FLOAT = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                  st.sampled_from([0.0, -1.0, 1e300, -1e300, 1e-300]))


def _ds_values(n: int) -> st.SearchStrategy[str]:
    return st.lists(FLOAT, min_size=max(0, n - 1), max_size=n + 1).map(
        lambda vs: "\\".join(repr(v) for v in vs))


FIELDS: dict[str, tuple[str, st.SearchStrategy]] = {
    "PatientID": ("LO", TEXT), "StudyInstanceUID": ("UI", TEXT),
    "SeriesInstanceUID": ("UI", TEXT), "SOPInstanceUID": ("UI", TEXT),
    "SeriesDescription": ("LO", TEXT), "SeriesNumber": ("IS", NUMBER),
    "InstanceNumber": ("IS", NUMBER), "TriggerTime": ("DS", NUMBER),
    "CardiacNumberOfImages": ("IS", NUMBER), "SliceThickness": ("DS", NUMBER),
    "RescaleSlope": ("DS", NUMBER), "RescaleIntercept": ("DS", NUMBER),
    "ImagePositionPatient": ("DS", _ds_values(3)), "ImageOrientationPatient": ("DS", _ds_values(6)),
    "PixelSpacing": ("DS", _ds_values(2)),
    "Rows": ("US", st.integers(0, 65535)), "Columns": ("US", st.integers(0, 65535)),
    "BitsAllocated": ("US", st.one_of(st.sampled_from([0, 1, 8, 12, 16, 32, 64]),
                                      st.integers(0, 65535))),
    "NumberOfFrames": ("IS", NUMBER),
    "cut": ("", st.floats(0.0, 0.99)),         # keep only this share of the file's bytes
}
N_FILES = 9


def _mutation(kw: str) -> st.SearchStrategy:
    # file index -1: every file (a PatientID or SeriesNumber of a whole export)
    return st.tuples(st.just(kw), FIELDS[kw][1], st.integers(-1, N_FILES - 1))


MUTATIONS = st.lists(st.sampled_from(sorted(FIELDS)).flatmap(_mutation), min_size=1, max_size=4)


def _raw(vr: str, value) -> bytes:
    if vr == "US":
        return int(value).to_bytes(2, "little")
    data = str(value).encode("utf-8", "surrogatepass")[:6000]
    return data + b" " if len(data) % 2 else data


def _apply(path: Path, kw: str, value) -> None:
    if kw == "cut":
        data = path.read_bytes()
        path.write_bytes(data[:max(132, int(len(data) * value))])
        return
    ds = pydicom.dcmread(path)
    tag = Tag(tag_for_keyword(kw))
    vr = FIELDS[kw][0]
    raw = _raw(vr, value)
    ds._dict[tag] = RawDataElement(tag, vr, len(raw), raw, 0, False, True)
    ds.save_as(path)


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> tuple[Path, list[str]]:
    """A scanner-export folder (no ``sax`` names: PatientIDs group the files) of 9 images."""
    root = tmp_path_factory.mktemp("export")
    for k in range(3):
        write_slice(root, f"PT0/SE{k + 1}", pid="7", series=k + 1, ipp=(0.0, 0.0, 8.0 * k),
                    iop=(1, 0, 0, 0, 1, 0), spacing=(1.5, 1.5), rows=16, cols=16, n_frames=3)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.dcm"))
    first = pydicom.dcmread(root / files[0])
    first.compress(RLELossless)                  # decoders allocate what Rows x Columns claim
    first.save_as(root / files[0])
    return root, files


@pytest.fixture(scope="module")
def warm(export, model, tmp_path_factory) -> dict[str, float]:
    """Both commands once on the unmodified export, so that imports and one-time set-up are
    not counted against an example; returns their traced peaks (MB)."""
    base, _files = export
    peaks = {}
    for command in ("ingest", "predict"):
        out = tmp_path_factory.mktemp("warm") / "out"
        argv = _argv(command, base, out, model)
        assert main(argv) == 0
        shutil.rmtree(out)
        peaks[command] = _run(argv)[2]
    return peaks


def _argv(command: str, src: Path, out: Path, model: Path) -> list[str]:
    budget = ["--max-decoded-mb", str(BUDGET_MB), "--workers", "1"]
    return (["ingest", str(src), str(out), *budget] if command == "ingest"
            else ["predict", str(model), str(src), str(out), *budget, "--batch-size", "16"])


def _tree(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


def _run(argv: list[str]) -> tuple[int, str, float, float]:
    """``main(argv)`` in this process: (exit code, stderr, tracemalloc peak MB, RSS growth MB)."""
    err = io.StringIO()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(argv)
        peak = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    return rc, err.getvalue(), peak, grown


def _one_line_issues(out: Path) -> None:
    import pyarrow.parquet as pq

    for table in (out / "issues", out / "ingest" / "issues"):
        files = sorted(table.glob("*.parquet")) if table.is_dir() else []
        for f in files:
            for row in pq.read_table(f).to_pylist():
                for key in ("problem", "resolution", "file", "detail"):
                    assert "\n" not in str(row.get(key) or ""), (key, row)


def _count(name: str, outcome: str) -> None:
    REPORT.setdefault(name, {})
    REPORT[name][outcome] = REPORT[name].get(outcome, 0) + 1


@settings(max_examples=EXAMPLES, deadline=None, derandomize=FIXED, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(mutations=MUTATIONS, command=st.sampled_from(["ingest", "ingest", "ingest", "predict"]))
def test_hostile_dicom_headers(export, model, warm, mutations, command) -> None:
    base, files = export
    work = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        src = work / "in" / "src"
        shutil.copytree(base, src)
        for kw, value, index in mutations:
            for rel in (files if index < 0 else [files[index]]):
                _apply(src / rel, kw, value)
        out = work / "a" / "b" / "out"       # '..' twice from OUT is still inside work/
        out.parent.mkdir(parents=True)
        before = _tree(work)
        rc, err, peak_mb, rss_mb = _run(_argv(command, src, out, model))
        allowed = {0, 2} | ({1} if command == "predict" and (out / "failed.csv").is_file() else set())
        assert rc in allowed, (rc, err[-2000:])
        if rc == 2:
            lines = [ln for ln in err.splitlines() if ln.strip()]
            assert len(lines) == 1 and lines[0].startswith("hpc-seg: error: "), err[-2000:]
        outside = sorted(p for p in _tree(work) - before if not p.startswith(str(out)))
        assert outside == [], outside
        _one_line_issues(out)
        assert peak_mb < BUDGET_MB + ALLOWANCE_MB[command], \
            f"{peak_mb:.0f} MB traced (the unmodified export: {warm[command]:.0f} MB)"
        assert rss_mb < BUDGET_MB + RSS_ALLOWANCE_MB, f"peak RSS grew {rss_mb:.0f} MB"
        _count(f"dicom headers ({command})", f"exit {rc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- contour files -----------------------------------------------------------------------------

COORD = st.one_of(st.floats(-100, 100), FLOAT)
CONTOUR = st.tuples(st.integers(-2, 5), st.integers(-2, 5), st.sampled_from([0, 1, 2, 5, 7]),
                    st.lists(st.tuples(COORD, COORD), min_size=0, max_size=8),
                    st.integers(-3, 12))        # declared point count (may not match)
CON_TEXT = st.one_of(
    st.lists(CONTOUR, max_size=6).map(lambda cs: _con_text(cs)),
    st.binary(max_size=400).map(lambda b: b.decode("latin-1")),
    st.text(max_size=300))


def _con_text(contours) -> str:
    lines = ["[PATIENT_INFO]", "Patient_id=1", "Image_resolution=16x16"]
    for s, p, t, pts, n in contours:
        lines += ["[XYCONTOUR]", f"{s} {p} {t} 1.0", str(n)]
        lines += [f"{x!r} {y!r}" for x, y in pts]
    lines.append("[POINT]")
    return "\r\n".join(lines) + "\r\n"


@pytest.fixture(scope="module")
def volunteer(tmp_path_factory) -> Path:
    """One volunteer folder: 3 slices x 3 phases of DICOM and a valid contour file."""
    from hpc_seg.cardiac.ingest.qmass_con import LV_ENDO, Contour, write_con

    root = tmp_path_factory.mktemp("con")
    for k in range(3):
        write_slice(root, f"1/dicom/s{k}", pid="1", series=k + 1, ipp=(0.0, 0.0, 8.0 * k),
                    iop=(1, 0, 0, 0, 1, 0), spacing=(1.5, 1.5), rows=16, cols=16, n_frames=3)
    square = np.array([[4.5, 4.5], [10.5, 4.5], [10.5, 10.5], [4.5, 10.5]])
    write_con(root / "1" / "1.con", [Contour(s, p, LV_ENDO, square * (1 - 0.1 * p))
                                     for s in range(3) for p in range(3)],
              {"Patient_id": "1", "Image_resolution": "16x16"})
    return root


@settings(max_examples=3 * EXAMPLES, deadline=None, derandomize=FIXED, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=CON_TEXT, keep_valid=st.booleans())
def test_hostile_contour_files(volunteer, text, keep_valid) -> None:
    from hpc_seg.cardiac.ingest.con_layout import stage_con_cohort

    work = Path(tempfile.mkdtemp(prefix="fuzz-con-"))
    try:
        src = work / "src"
        shutil.copytree(volunteer, src, symlinks=True)
        con = src / "1" / "1.con"
        con.write_bytes((con.read_text() + text if keep_valid else text).encode("latin-1", "replace"))
        stage = work / "stage"
        before = _tree(work)
        issues = stage_con_cohort(src, stage, {"1": "train"})
        outside = sorted(p for p in _tree(work) - before if not p.startswith(str(stage)))
        assert outside == [], outside
        for row in issues:
            assert all("\n" not in str(v) for v in row.values()), row
        truth = (stage / "truth.csv").read_text().splitlines()[1:]
        for line in truth:              # a staged volunteer has a real, positive volume
            esv, edv = (float(v) for v in line.split(",")[1:])
            assert np.isfinite([esv, edv]).all() and 0 < esv <= edv, line
        assert truth or any(r["problem"] in ("not_a_contour_file", "no_usable_contours")
                            for r in issues), issues
        _count("contour files", "staged" if truth else "reported")
    finally:
        shutil.rmtree(work, ignore_errors=True)
