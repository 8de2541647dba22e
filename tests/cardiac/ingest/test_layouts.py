"""Layout discovery: the project tree, the Kaggle unzip, flat and single-patient folders, a
scanner export; and bad entries (loops, broken links) as one file's problem."""

from __future__ import annotations

import errno
import os
import shutil

import pytest

from hpc_seg.cardiac.ingest import listing
from hpc_seg.cardiac.ingest.layout import find_cohort
from hpc_seg.errors import InputError
from tests.cardiac.ingest.variant_cohort import (assert_same_stacks, ingest_tables, stacks,
                                                 variant)


def test_project_layout_keeps_the_split(original):
    root, _ = original
    cohort = find_cohort(root)
    assert cohort.layout == "project"
    assert [(p.pid, p.split, p.select_series) for p in cohort.patients] == [
        ("1", "train", False), ("2", "validate", False)]


@pytest.mark.parametrize("kind,split", [("kaggle", {"1": "train", "2": "validate"}),
                                        ("flat", {"1": "unsplit", "2": "unsplit"})])
def test_kaggle_unzip_and_flat_layouts_give_the_same_stacks(original, kind, split, tmp_path):
    root, want = original
    src = variant(root, tmp_path / "src", layout=kind)
    assert find_cohort(src).layout == kind
    got = stacks(ingest_tables(src, tmp_path / "out")["volumes"])
    assert_same_stacks(got, want)
    assert {sid: s["split"] for sid, s in got.items()} == split


def test_single_patient_folder_and_its_study_folder(original, tmp_path):
    root, want = original
    for src in (root / "train" / "1", root / "train" / "1" / "study"):
        cohort = find_cohort(src)
        assert (cohort.layout, [p.pid for p in cohort.patients]) == ("single", ["1"])
    got = stacks(ingest_tables(root / "train" / "1" / "study", tmp_path / "out")["volumes"])
    assert_same_stacks(got, {"1": want["1"]}, masks=False)      # no SRC/masks above a patient


def test_export_without_sax_names_takes_pids_from_headers(original, tmp_path):
    root, want = original
    src = variant(root, tmp_path / "src", layout="export", localisers=False)
    assert not any("sax" in p.relative_to(src).as_posix() for p in src.rglob("*"))
    cohort = find_cohort(src)
    assert cohort.layout == "export"
    assert [(p.pid, p.select_series) for p in cohort.patients] == [("1", True), ("2", True)]
    assert_same_stacks(stacks(ingest_tables(src, tmp_path / "out")["volumes"]), want)


def test_study_without_sax_folders_selects_series_from_headers(original, tmp_path):
    root, want = original
    src = tmp_path / "src"
    shutil.copytree(root / "train" / "1", src / "1")
    for folder in (src / "1" / "study").iterdir():
        folder.rename(folder.with_name(f"series{folder.name.split('_')[1]}"))
    (patient,) = find_cohort(src).patients
    assert patient.select_series
    assert_same_stacks(stacks(ingest_tables(src, tmp_path / "out")["volumes"]), {"1": want["1"]},
                       masks=False)


def test_no_layout_error_shows_expected_shapes_and_what_was_found(tmp_path):
    (tmp_path / "src" / "scans" / "notes").mkdir(parents=True)
    (tmp_path / "src" / "readme.txt").write_text("hello")
    with pytest.raises(InputError) as err:
        find_cohort(tmp_path / "src")
    text = str(err.value)
    assert "Kaggle unzip" in text and "scans/ [notes/]" in text and "readme.txt" in text
    assert "\n" not in text


def test_bad_entries_are_one_files_problem_and_ingest_goes_on(original, tmp_path):
    root, want = original
    src = tmp_path / "src"
    shutil.copytree(root, src)
    sax = sorted((src / "train" / "1" / "study").glob("sax_*"))[0]
    os.symlink(sax, sax / "loop")                                 # a folder loop
    os.symlink("a.dcm", sax / "b.dcm")
    os.symlink("b.dcm", sax / "a.dcm")                            # a file loop
    os.symlink(src / "gone.dcm", sax / "broken.dcm")              # a broken link
    (sax / "folder.dcm").mkdir()                                  # a folder named *.dcm
    os.symlink(src / "train", src / "train" / "loop_patient")     # a loop at patient level
    t = ingest_tables(src, tmp_path / "out")
    issues = t["issues"]
    got = {(r.problem, r.file.rsplit("/", 1)[-1]) for r in issues.itertuples()}
    assert {("symlink_loop", "a.dcm"), ("symlink_loop", "b.dcm"), ("broken_symlink", "broken.dcm"),
            ("not_a_file", "folder.dcm"), ("symlink_loop", "loop_patient")} <= got
    assert_same_stacks({k: v for k, v in stacks(t["volumes"]).items() if k in want}, want)


def test_an_unreadable_folder_is_logged_not_fatal(original, tmp_path, monkeypatch):
    root, want = original
    src = tmp_path / "src"
    shutil.copytree(root, src)
    bad = sorted((src / "validate" / "2" / "study").glob("sax_*"))[-1]
    real = os.scandir

    def scandir(path):
        if os.fspath(path) == os.fspath(bad):       # root ignores chmod: fake the denial
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(listing.os, "scandir", scandir)
    cohort = find_cohort(src)
    (p2,) = [p for p in cohort.patients if p.pid == "2"]
    assert [(x.reason, x.file) for x in p2.problems] == [
        ("unreadable", bad.relative_to(src).as_posix())]
    assert len(p2.files) == 5 * 4


def test_export_without_patient_id_uses_the_folder_name(original, tmp_path):
    import pydicom

    root, want = original
    src = tmp_path / "anon"
    for path in (root / "train" / "1" / "study").rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        del ds.PatientID
        dest = src / f"{path.parent.name.replace('sax_', 'S').replace('ch_', 'X')}_{path.name}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(dest, enforce_file_format=True)               # all series in one folder
    cohort = find_cohort(src)
    assert (cohort.layout, [p.pid for p in cohort.patients]) == ("export", ["anon"])
    got = stacks(ingest_tables(src, tmp_path / "out")["volumes"])
    assert_same_stacks({"1": got["anon"]}, {"1": want["1"]}, masks=False)


def test_patient_folder_travels_to_ray_workers_whole():
    p = listing.PatientFolder("7", "unsplit", ("a/b.dcm", "c"), 123, True,
                              (listing.Problem("x.dcm", "broken_symlink", "gone"),))
    back = listing.PatientFolder.from_json("7", "unsplit", p.to_json())
    assert back == listing.PatientFolder("7", "unsplit", p.files, 0, True, p.problems)


def test_a_loop_back_to_an_export_root_is_listed_once(original, tmp_path):
    root, _ = original
    src = variant(root, tmp_path / "src", layout="export", localisers=False)
    os.symlink(src, src / "PT000000" / "back")
    cohort = find_cohort(src)
    files = [f for p in cohort.patients for f in p.files]
    assert len(files) == len(set(files)) and not any("back" in f for f in files)
    assert [(x.reason, x.file) for p in cohort.patients for x in p.problems] == [
        ("symlink_loop", "PT000000/back")]
