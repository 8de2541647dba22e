"""Re-runs over changed inputs and damaged outputs.

A changed input is re-done, never silently kept; a damaged Parquet file of ingest's own is
re-done too; a damaged file read by a later stage is one line naming the file.
"""

from __future__ import annotations

import logging
import shutil

import pandas as pd
import pytest

from hpc_seg.cli import main
from hpc_seg.cardiac.ingest.run import ingest
from tests.cardiac.ingest.test_ingest import LOCAL, make_cohort, tables


def _rows(out, table, pid):
    df = tables(out)[table]
    return df[df.patient_id == pid] if "patient_id" in df else df


def test_changed_patient_is_redone_and_a_new_cohort_replaces_the_old(tmp_path, caplog):
    src, out = tmp_path / "src", tmp_path / "out"
    make_cohort(src)
    ingest(src, out, LOCAL)
    clean = tables(out)
    caplog.set_level(logging.INFO, logger="hpc_seg.cardiac.ingest")

    # one file of patient 2 rewritten (another pixel value, same name): patient 2 is re-done
    f = src / "train/2/study/sax_1/IM-0001-0001.dcm"
    data = bytearray(f.read_bytes())
    data[-2:] = b"\xff\x0f"
    f.write_bytes(bytes(data))
    s = ingest(src, out, LOCAL)
    assert s.patients == 1 and s.patients_skipped_done == 2
    assert "changed since they were ingested" in caplog.text and ": 2" in caplog.text
    again = tables(out)
    for name in ("volumes", "issues", "files", "subjects", "patients"):
        assert len(again[name]) == len(clean[name]), name          # no duplicated rows
    v0 = clean["volumes"].set_index("stack_id").loc["2", "pixels"]
    assert again["volumes"].set_index("stack_id").loc["2", "pixels"] != v0

    # a different cohort into the same output: nothing of the old one is kept
    caplog.clear()
    other = tmp_path / "other"
    make_cohort(other)
    shutil.rmtree(other / "train" / "1")
    (other / "test" / "3").rename(other / "test" / "7")
    (other / "truth.csv").write_text("Id,Systole,Diastole\n2,41.0,101.0\n7,45,110\n")
    s = ingest(other, out, LOCAL)
    assert "no longer in SRC" in caplog.text
    now = tables(out)
    assert sorted(now["patients"].patient_id) == ["2", "7"]
    assert sorted(now["volumes"].patient_id) == ["2", "7"]
    assert set(now["subjects"].Systole) == {41.0, 45.0}             # truth changed: re-done
    assert not now["files"].subject_id.isin(["1", "3"]).any()
    assert s.patients == 2


def _row_set(df: pd.DataFrame) -> list[str]:
    """The rows as sorted text (order of rows and shards does not matter)."""
    return sorted(repr(tuple(v.tolist() if hasattr(v, "tolist") else v for v in row))
                  for row in df.itertuples(index=False))


def _damage(path):
    path.write_bytes(b"PAR1 this is not parquet any more")


def test_damaged_own_shards_are_redone_by_the_next_ingest(tmp_path, caplog):
    src, out = tmp_path / "src", tmp_path / "out"
    make_cohort(src)
    ingest(src, out, LOCAL)
    clean = tables(out)
    caplog.set_level(logging.INFO, logger="hpc_seg.cardiac.ingest")
    for table in ("volumes", "issues", "patients"):
        _damage(sorted((out / table).glob("*.parquet"))[0])
        ingest(src, out, LOCAL)                 # no traceback: the damaged unit is re-done
        assert "damaged Parquet file" in caplog.text
        now = tables(out)
        for name, df in clean.items():
            cols = [c for c in df.columns if c != "seconds"]
            assert _row_set(now[name][cols]) == _row_set(df[cols]), f"{table} damaged: {name}"
        caplog.clear()


def test_damaged_volumes_are_one_line_in_labels_and_export(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    make_cohort(src)
    ingest(src, out, LOCAL)
    shard = sorted((out / "volumes").glob("*.parquet"))[0]
    _damage(shard)
    for argv in (["labels", str(out / "volumes"), str(tmp_path / "lab"), "--no-slices"],
                 ["export", "nifti", str(out / "volumes"), "1", str(tmp_path / "x.nii.gz")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(shard) in err[0] and "damaged Parquet file" in err[0], err


@pytest.mark.parametrize("damaged", [(2, 3), (1, 2, 3)], ids=["two_of_5", "majority_3_of_5"])
def test_a_phase_lost_by_many_slices_stays_aligned_through_ingest(tmp_path, damaged):
    """A lost phase end to end: remove phase 4 from several slices; every frame k of the
    stack holds files with one TriggerTime, the lost phase is filled in place, and the damaged
    series are listed as missing_frames."""
    from tests.cardiac.ingest.dicom_fixtures import write_stack

    src, out = tmp_path / "src", tmp_path / "out"
    write_stack(src, "1", "train", n_slices=5, n_frames=6, rows=6, cols=6)
    for s in damaged:
        (src / f"train/1/study/sax_{s}/IM-{s:04d}-0004.dcm").unlink()
    ingest(src, out, LOCAL)
    t = tables(out)
    assert t["subjects"].frames.tolist() == [6]
    trig = t["dicom_metadata"].query("keyword == 'TriggerTime'").set_index("file").value.astype(float)
    files = t["files"][~t["files"].filled]
    per_frame = files.assign(tt=files.file.map(trig)).groupby("frame").tt.unique()
    assert [list(v) for v in per_frame] == [[30.0 * k] for k in range(6)]
    filled = t["files"][t["files"].filled]
    assert sorted(filled.frame) == [3] * len(damaged)
    gaps = t["issues"].query("problem == 'missing_frames'")
    assert len(gaps) == len(damaged) and gaps.detail.str.contains(r"filled frames \[3\]").all()


def test_a_changed_curation_setting_changes_the_patient_fingerprint(tmp_path):
    """The slice-gap rule changes which slices a stack has: a re-run under the other rule must
    re-do the patient, so the rule is part of its fingerprint."""
    from hpc_seg.cardiac.ingest.fingerprint import patient_fingerprint
    from hpc_seg.cardiac.ingest.layout import discover_cohort

    src = tmp_path / "src"
    make_cohort(src)
    patient = discover_cohort(src)[0]
    published = patient_fingerprint(src, patient, None, {"gap_rule": "published"})
    assert published == patient_fingerprint(src, patient, None, {"gap_rule": "published"})
    assert published != patient_fingerprint(src, patient, None, {"gap_rule": "wide"})
