"""``hpc-seg bench ingest`` on a tiny cohort: rows, ratios, repeated rounds and the JSON record."""

from __future__ import annotations

import json

import pytest

from hpc_seg.bench.ingest import BenchRow, median_row
from hpc_seg.cli import main
from tests.cardiac.ingest.dicom_fixtures import write_stack


def test_median_row_picks_the_middle_run_and_notes_the_spread():
    runs = [BenchRow("x", s, 10, 1.0, note="n") for s in (3.0, 1.0, 2.0)]
    row = median_row(runs)
    assert row.seconds == 2.0 and row.note == "median of 3: 1.00-3.00 s; n"
    assert row.extra["seconds_all"] == [3.0, 1.0, 2.0]
    assert median_row([BenchRow("y", 5.0, 1, 1.0)]).note == ""


def test_bench_ingest_times_floor_and_local_engine(tmp_path, capsys):
    for pid in ("1", "2"):
        write_stack(tmp_path / "cohort", pid, "train", n_slices=4, n_frames=6, rows=32, cols=32)
    rc = main(["bench", "ingest", "--src", str(tmp_path / "cohort"), "--out", str(tmp_path / "w"),
               "--engines", "floor,local", "--workers", "2", "--repeat", "2"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "pydicom floor" in out and "local engine (2 workers)" in out and "median of 2" in out
    record = json.loads((tmp_path / "w" / "bench_ingest.json").read_text())
    assert record["files"] == 48 and [r["files"] for r in record["rows"]] == [48, 48]
    local = record["rows"][1]
    assert local["extra"]["stacks"] == 2 and len(local["extra"]["seconds_all"]) == 2
    floor_s = record["rows"][0]["extra"]["seconds_all"]
    by_round = local["extra"]["x_floor_by_round"]
    assert by_round == pytest.approx([f / s for f, s in zip(floor_s, local["extra"]["seconds_all"])])
    assert "local engine (2 workers): x floor round by round" in out


def test_bench_ingest_times_a_compressed_copy_of_the_cohort(tmp_path, capsys):
    import pydicom

    for pid in ("1", "2"):
        write_stack(tmp_path / "cohort", pid, "train", n_slices=4, n_frames=6, rows=32, cols=32)
    args = ["bench", "ingest", "--src", str(tmp_path / "cohort"), "--out", str(tmp_path / "w"),
            "--engines", "floor,local", "--workers", "1", "--repeat", "1",
            "--transfer-syntax", "jpeg-ls"]
    assert main(args) == 0
    record = json.loads((tmp_path / "w" / "bench_ingest.json").read_text())
    assert record["transfer_syntax"] == "jpeg-ls" and record["src"].endswith("cohort-jpeg-ls")
    first = next((tmp_path / "w" / "cohort-jpeg-ls").rglob("*.dcm"))
    assert pydicom.dcmread(first).file_meta.TransferSyntaxUID == pydicom.uid.JPEGLSLossless
    floor, local = record["rows"]
    assert floor["note"] == "48 decoded" and local["extra"]["stacks"] == 2
    assert local["extra"]["files_used"] == 48
    capsys.readouterr()


def test_dcm2niix_finds_the_patients_of_a_flat_cohort(tmp_path, capsys):
    """A cohort without split folders: dcm2niix converts every patient (it once looked only in
    train/validate/test, timed nothing and ended in a ZeroDivisionError that lost the table)."""
    import shutil

    for pid in ("1", "2"):
        write_stack(tmp_path / "staging", pid, "train", n_slices=4, n_frames=6, rows=32, cols=32)
        shutil.move(tmp_path / "staging" / "train" / pid, tmp_path / "flat" / pid)
    assert main(["bench", "ingest", "--src", str(tmp_path / "flat"), "--out", str(tmp_path / "w"),
                 "--engines", "floor,dcm2niix", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    floor, dcm2niix = json.loads((tmp_path / "w" / "bench_ingest.json").read_text())["rows"]
    assert floor["files"] == dcm2niix["files"] == 48 and dcm2niix["files_per_s"] > 0
    assert "dcm2niix -z n" in out and "0 folders with errors" in dcm2niix["note"]
    assert len(list((tmp_path / "w" / "out-dcm2niix").rglob("*.nii"))) >= 2   # one per patient


def test_a_contender_without_files_is_na_not_a_crash():
    from hpc_seg.bench.ingest import format_table

    rows = [BenchRow("pydicom floor (1 process)", 1.0, 10, 1.0, cpu_s=1.0),
            BenchRow("dcm2niix -z n (1 at a time)", 0.1, 0, 0.0, cpu_s=0.1)]
    table = format_table(rows)
    assert "n/a" in table.splitlines()[2]
