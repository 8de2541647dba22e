"""Hostile but realistic inputs: nothing written outside OUT, nothing silently wrong, no traceback.

One test per finding of the hostile-input review: header values that become paths (``..``,
5,000 characters, names that are not UTF-8), a copied frame, a NaN frame, contour files with
absurd coordinates or no contours at all, files that claim gigabytes, damaged model files and
tables, mistyped job files, and ``--only``. The SLURM findings are in tests/launch/test_capacity.py,
the property-based fuzzing in test_fuzz_hostile.py.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest
import torch
from pydicom.uid import generate_uid

from hpc_seg.cli import main
from hpc_seg.errors import InputError
from hpc_seg.storage.shards import read_table
from tests.cardiac.cohort import cohort, tiny_config  # noqa: F401 - fixture
from tests.cardiac.ingest.dicom_fixtures import write_image, write_slice
from tests.cardiac.ingest.hostile_files import deflate_bomb, rle_claiming

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.faults


def _export(root: Path, pid: str = "7", n_slices: int = 3, n_frames: int = 4,
            folder: str = "PT0/SE{k}") -> list[str]:
    """A scanner export (no sax_ names: files are grouped by PatientID), or with ``folder``
    another layout."""
    for k in range(n_slices):
        write_slice(root, folder.format(k=k + 1), pid=pid, series=k + 1, ipp=(0.0, 0.0, 8.0 * k),
                    iop=(1, 0, 0, 0, 1, 0), spacing=(1.5, 1.5), rows=16, cols=16,
                    n_frames=n_frames)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.dcm"))


def _set(path: Path, **values) -> None:
    ds = pydicom.dcmread(path)
    for k, v in values.items():
        setattr(ds, k, v)
    ds.save_as(path)


def _tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def _issues(out: Path) -> pd.DataFrame:
    if not any((out / "issues").glob("*.parquet")):       # no issue at all: no shard
        return pd.DataFrame(columns=["problem", "file", "detail"])
    return read_table(out / "issues").to_pandas()


def _err_line(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1, err
    return err[0]


# --- 1, 7, 8: names from headers and file names ----------------------------------------------

def test_safe_name_is_one_bounded_unique_component(tmp_path):
    from hpc_seg.storage.names import MAX_NAME, safe_name, under

    for value in ["..", ".", "", "/", "a/b", "../../x", "-rf", "x\ny", "A" * 5000, "IM-\udcff"]:
        name = safe_name(value)
        assert 0 < len(name) <= MAX_NAME and "/" not in name and not name.startswith((".", "-"))
        assert under(tmp_path, name).parent == tmp_path
    assert safe_name("1") == "1" and safe_name("case_01.b-2") == "case_01.b-2"   # plain: kept
    assert safe_name("a/b") != safe_name("a_b") != safe_name("a:b")
    with pytest.raises(Exception, match="outside"):
        under(tmp_path, "..", "x")


@pytest.mark.parametrize("pid", ["..", "."])
def test_patient_id_dot_dot_writes_nothing_outside_out(tmp_path, model, capsys, pid):
    src = tmp_path / "P" / "src"
    for rel in _export(src):
        _set(src / rel, PatientID=pid)
    out = tmp_path / "P" / "out"
    before = _tree(tmp_path)
    assert main(["predict", str(model), str(src), str(out), "--workers", "1"]) == 0
    new = _tree(tmp_path) - before
    assert new and all(p.is_relative_to(out) for p in new), sorted(new - set(out.rglob("*")))
    stacks = [p for p in out.iterdir() if (p / "labels.nii.gz").is_file()]
    assert len(stacks) == 1 and stacks[0].parent == out and not stacks[0].name.startswith(".")
    assert not (out / "labels.nii.gz").exists()          # no stack files in OUT's root


def test_5000_character_patient_id_is_bounded(tmp_path, capsys):
    src = tmp_path / "src"
    for rel in _export(src):
        _set(src / rel, PatientID="A" * 5000)
    assert main(["ingest", str(src), str(tmp_path / "out"), "--workers", "1"]) == 0
    ids = read_table(tmp_path / "out" / "volumes", columns=["patient_id"]).column(0).to_pylist()
    assert len(ids) == 1 and len(ids[0]) <= 96 and ids[0].startswith("AAAA")


def test_file_name_that_is_not_utf8_is_one_issue_row(tmp_path, capsys):
    src = tmp_path / "src"
    files = _export(src)
    bad = os.fsencode(src / "PT0" / "SE1") + b"/IM-\xff-0001.dcm"
    shutil.copy(src / files[0], bad)
    assert main(["ingest", str(src), str(tmp_path / "out"), "--workers", "1"]) == 0
    rows = _issues(tmp_path / "out")
    rows = rows[rows.problem == "bad_file_name"]
    assert len(rows) == 1 and rows.file.iloc[0].endswith("IM-\\xff-0001.dcm")


# --- 2: duplicate images ----------------------------------------------------------------------

def _files_of(out: Path) -> pd.DataFrame:
    return read_table(out / "files").to_pandas()


def test_copied_frame_is_dropped_and_no_real_frame_is_lost(tmp_path, capsys):
    src = tmp_path / "src"
    files = _export(src, n_frames=4)
    first = src / files[0]                               # SE1, frame 0
    copy = first.with_name("IM-0001-0001-copy.dcm")
    shutil.copy(first, copy)
    _set(copy, SOPInstanceUID=generate_uid())
    out = tmp_path / "out"
    assert main(["ingest", str(src), str(out), "--workers", "1"]) == 0
    issues = _issues(out)
    assert "surplus_frames" not in set(issues.problem)
    dup = issues[issues.problem == "duplicate_image"]
    assert len(dup) == 1 and dup.file.iloc[0].endswith("copy.dcm")
    used = _files_of(out)
    se1 = used[used.file.str.contains("SE1/")].sort_values("frame")
    assert se1.file.str.rsplit("/", n=1).str[1].tolist() == [f"IM-0001-{t:04d}.dcm"
                                                             for t in range(1, 5)]


def test_two_versions_of_one_phase_keep_the_later_instance(tmp_path, capsys):
    src = tmp_path / "src"
    files = _export(src, n_frames=4)
    first = src / files[0]
    other = first.with_name("IM-0001-0001-edit.dcm")
    ds = pydicom.dcmread(first)
    ds.SOPInstanceUID, ds.InstanceNumber = generate_uid(), 9
    ds.PixelData = (ds.pixel_array + 5).astype(np.uint16).tobytes()
    ds.save_as(other)
    out = tmp_path / "out"
    assert main(["ingest", str(src), str(out), "--workers", "1"]) == 0
    issues = _issues(out)
    conflict = issues[issues.problem == "conflicting_image"]
    assert len(conflict) == 1 and conflict.file.iloc[0].endswith("IM-0001-0001.dcm")
    assert "surplus_frames" not in set(issues.problem)
    used = _files_of(out)
    se1 = used[used.file.str.contains("SE1/")].sort_values("frame")
    assert len(se1) == 4 and se1.file.iloc[0].endswith("edit.dcm")


def test_frames_without_trigger_times_are_not_duplicates(tmp_path, capsys):
    src = tmp_path / "src"     # sax_ folders: an export's series choice needs trigger times
    files = _export(src, n_frames=4, folder="train/7/study/sax_{k}")
    for rel in files:
        _set(src / rel, TriggerTime=0.0)
    # a real-time cine repeats a phase's image in later heartbeats: same pixels, new instance
    again = pydicom.dcmread(src / files[1])
    again.PixelData = pydicom.dcmread(src / files[0]).PixelData
    again.save_as(src / files[1])
    out = tmp_path / "out"
    assert main(["ingest", str(src), str(out), "--workers", "1"]) == 0
    assert not {"duplicate_image", "conflicting_image"} & set(_issues(out).problem)
    assert len(_files_of(out)) == 12
    # a copy (same InstanceNumber, same pixels) is still one
    shutil.copy(src / files[0], (src / files[0]).with_name("IM-0001-0001 (1).dcm"))
    assert main(["ingest", str(src), str(tmp_path / "out2"), "--workers", "1"]) == 0
    dup = _issues(tmp_path / "out2")
    assert dup[dup.problem == "duplicate_image"].file.str.endswith(" (1).dcm").tolist() == [True]


# --- 3: non-finite pixels ---------------------------------------------------------------------

def _nifti(path: Path, frames: int = 5, nan_frame: int | None = None) -> Path:
    rng = np.random.default_rng(0)
    data = rng.uniform(0, 500, (32, 32, 3, frames)).astype(np.float32)   # (col, row, slice, t)
    if nan_frame is not None:
        data[..., nan_frame] = np.nan
    img = nib.Nifti1Image(data, np.diag([1.5, 1.5, 8.0, 1.0]))
    img.header.set_xyzt_units("mm", "msec")
    nib.save(img, path)
    return path


def test_nan_frame_is_left_out_not_measured(tmp_path, model, capsys):
    clean = _nifti(tmp_path / "clean.nii.gz")
    nan = _nifti(tmp_path / "nan.nii.gz", nan_frame=3)
    assert main(["predict", str(model), str(clean), str(tmp_path / "a")]) == 0
    assert main(["predict", str(model), str(nan), str(tmp_path / "b")]) == 0
    vols = pd.read_csv(tmp_path / "b" / "nan" / "volumes.csv")
    assert np.isnan(vols.lv_ml[3]) and np.isfinite(vols.lv_ml.drop(3)).all()
    a = pd.read_csv(tmp_path / "a" / "volumes.csv" if False else tmp_path / "a" / "clean" / "volumes.csv")
    assert np.allclose(vols.lv_ml.drop(3), a.lv_ml.drop(3))     # other frames as without the NaN
    summary = pd.read_csv(tmp_path / "b" / "summary.csv").iloc[0]
    assert 3 not in (summary.ed_frame, summary.es_frame)
    assert summary.qc_flag and "non-finite pixels in frame(s) [3]" in summary.qc_reasons


def test_all_nan_stack_is_refused_in_one_line(tmp_path, model, capsys):
    path = tmp_path / "nan.nii.gz"
    img = nib.Nifti1Image(np.full((16, 16, 2, 3), np.nan, np.float32), np.eye(4))
    nib.save(img, path)
    assert main(["predict", str(model), str(path), str(tmp_path / "o")]) == 2
    assert "NaN or infinite pixels in every frame" in _err_line(capsys)


def test_labels_skip_a_stack_whose_mask_file_has_nan(cohort, tmp_path):
    from hpc_seg.cardiac.labels.build import build_labels

    folder = tmp_path / "masks"
    folder.mkdir()
    for sid in ("1", "2", "3", "4", "5"):
        data = np.zeros((48, 40, 3, 6), np.float32)           # (col, row, slice, frame)
        data[10:30, 10:30] = 1.0
        if sid == "2":
            data[..., 4] = np.nan
        nib.save(nib.Nifti1Image(data, np.eye(4)), folder / f"{sid}.nii.gz")
    summary = build_labels(cohort["volumes"], tmp_path / "labels", cohort["truth"],
                           source=f"folder:{folder}")
    skipped = pd.read_csv(tmp_path / "labels" / "skipped.csv", dtype={"stack_id": str})
    row = skipped[skipped.stack_id == "2"]
    assert len(row) == 1 and "NaN or infinite label values in frame(s) [4]" in row.reason.iloc[0]
    assert summary.labelled_stacks == 4


def test_slices_leave_out_nan_frames(tmp_path):
    import pyarrow as pa

    from hpc_seg.cardiac.labels.build import build_labels
    from hpc_seg.cardiac.slices.build import build_slices
    from hpc_seg.storage.shards import atomic_write_table, decode_array, encode_array, iter_rows
    from tests.cardiac.cohort import write_volumes

    volumes, truth = write_volumes(tmp_path / "v", n_patients=3)
    rows = list(iter_rows(volumes))
    px = decode_array(rows[0]["pixels"], rows[0]["shape"], rows[0]["dtype"]).astype(np.float32)
    px[2] = np.nan
    rows[0]["pixels"], rows[0]["shape"], rows[0]["dtype"] = encode_array(px)
    for f in volumes.glob("*.parquet"):
        f.unlink()
    atomic_write_table(pa.Table.from_pylist(rows), volumes / "part-test-00000.parquet")
    build_labels(volumes, tmp_path / "labels", truth)
    slices = build_slices(volumes, tmp_path / "labels", tmp_path / "slices", 64)
    table = read_table(slices, columns=["stack_id", "frame", "image"]).to_pandas()
    first = table[table.stack_id == rows[0]["stack_id"]]
    assert 2 not in set(first.frame) and len(set(first.frame)) == int(rows[0]["shape"][0]) - 1
    assert max(np.frombuffer(b, np.uint8).max() for b in first.image) > 0   # others still scaled


# --- 4, 5: contour files ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def volunteers(tmp_path_factory) -> Path:
    from hpc_seg.cardiac.ingest.qmass_con import LV_ENDO, Contour, write_con

    root = tmp_path_factory.mktemp("con")
    square = np.array([[4.5, 4.5], [10.5, 4.5], [10.5, 10.5], [4.5, 10.5]])
    for vid in ("1", "2"):
        for k in range(3):
            write_slice(root, f"{vid}/dicom/s{k}", pid=vid, series=k + 1, ipp=(0.0, 0.0, 8.0 * k),
                        iop=(1, 0, 0, 0, 1, 0), spacing=(1.5, 1.5), rows=16, cols=16, n_frames=3)
        write_con(root / vid / f"{vid}.con",
                  [Contour(s, p, LV_ENDO, 8 + (square - 8) * (1 - 0.2 * p))
                   for s in range(3) for p in range(3)],
                  {"Patient_id": vid, "Image_resolution": "16x16"})
    return root


def _stage(src: Path, tmp_path: Path) -> tuple[list[dict], dict[str, tuple[float, float]]]:
    from hpc_seg.cardiac.ingest.con_layout import stage_con_cohort

    issues = stage_con_cohort(src, tmp_path / "stage", {"1": "train", "2": "test"})
    truth = pd.read_csv(tmp_path / "stage" / "truth.csv", dtype={"Id": str})
    return issues, {r.Id: (r.Systole, r.Diastole) for r in truth.itertuples()}


@pytest.mark.parametrize("coordinate", ["1e300", "1e20", "-50"])
def test_contour_points_far_outside_the_image_are_refused(volunteers, tmp_path, coordinate):
    clean_issues, clean = _stage(volunteers, tmp_path / "clean")
    src = tmp_path / "src"
    shutil.copytree(volunteers, src)
    con = src / "1" / "1.con"
    lines = con.read_bytes().split(b"\r\n")
    at = lines.index(b"[XYCONTOUR]") + 3                 # first point of the first contour
    lines[at] = f"{coordinate} {coordinate}".encode()
    con.write_bytes(b"\r\n".join(lines))
    issues, truth = _stage(src, tmp_path / "hostile")
    assert clean_issues == []
    rows = [i for i in issues if i["problem"] == "contour_outside_image"]
    assert len(rows) == 1 and coordinate.lstrip("-") in rows[0]["detail"].replace("+", "")
    assert truth["1"][1] <= clean["1"][1] + 1e-9          # EDV never inflated by the stray point
    assert truth["2"] == clean["2"]


def test_random_bytes_contour_file_is_one_row_and_no_zero_volume(volunteers, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(volunteers, src)
    (src / "1" / "1.con").write_bytes(np.random.default_rng(1).bytes(3000))
    issues, truth = _stage(src, tmp_path)
    rows = [i for i in issues if i["subject_id"] == "1"]
    assert [r["problem"] for r in rows] == ["not_a_contour_file"]
    assert "1" not in truth and "2" in truth             # reported, not given 0 mL
    assert not (tmp_path / "stage" / "train" / "1").exists()


def test_text_without_contours_is_not_a_volunteer_with_zero_volume(volunteers, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(volunteers, src)
    (src / "1" / "1.con").write_text("Patient_id=1\r\nsome=notes\r\n")
    issues, truth = _stage(src, tmp_path)
    assert [i["problem"] for i in issues] == ["not_a_contour_file"] and "1" not in truth


# --- 6: decoded-size budget -------------------------------------------------------------------

def _traced(fn) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("kind", ["rle", "deflate"])
def test_file_claiming_hundreds_of_mb_is_too_large_before_allocation(tmp_path, capsys, kind):
    try:
        from hpc_seg.cardiac.dicom.read import read_frames
    except ImportError:       # before the dicom package split
        from hpc_seg.cardiac.dicom_read import read_frames

    path = tmp_path / "big.dcm"
    if kind == "rle":
        rle_claiming(path, 12000, 12000)                 # 288 MB declared, ~1 kB on disk
    else:
        deflate_bomb(path, 300_000_000)                  # ~0.3 MB on disk
    result: list = []
    peak = _traced(lambda: result.append(read_frames(path, "big.dcm", max_bytes=64_000_000)))
    frames, skip = result[0][:2]
    assert frames == [] and skip is not None and skip.reason == "too_large", skip
    assert peak < 20, f"{peak:.0f} MB allocated before the file was refused"


def test_ingest_logs_too_large_and_keeps_the_rest(tmp_path, capsys):
    src = tmp_path / "src"
    files = _export(src)
    rle_claiming(src / "PT0" / "SE1" / "IM-0001-0009.dcm", 12000, 12000)
    out = tmp_path / "out"
    assert main(["ingest", str(src), str(out), "--workers", "1", "--max-decoded-mb", "64"]) == 0
    rows = _issues(out)
    assert rows[rows.problem == "too_large"].file.tolist() == ["PT0/SE1/IM-0001-0009.dcm"]
    assert len(_files_of(out)) == len(files)


# --- 9, 10, 11 and the ANSI advice: one loader ------------------------------------------------

class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/issue30-pwned",))


def _bad_models(tmp_path: Path) -> dict[str, Path]:
    files = {"empty": b"", "random": np.random.default_rng(2).bytes(4096)}
    paths = {k: tmp_path / f"{k}.pt" for k in files}
    for k, data in files.items():
        paths[k].write_bytes(data)
    paths["malicious"] = tmp_path / "malicious.pt"
    torch.save({"model": _Evil()}, paths["malicious"])
    paths["truncated"] = tmp_path / "truncated.pt"
    torch.save({"model": {"w": torch.zeros(1000)}}, paths["truncated"])
    paths["truncated"].write_bytes(paths["truncated"].read_bytes()[:700])
    return paths


def test_bad_model_files_to_predict_are_one_line_without_torch_advice(tmp_path, capsys):
    nifti = _nifti(tmp_path / "x.nii.gz")
    for name, path in _bad_models(tmp_path).items():
        assert main(["predict", str(path), str(nifti), str(tmp_path / name)]) == 2, name
        line = _err_line(capsys)
        assert line.startswith(f"hpc-seg: error: {path}: ") and "\x1b" not in line, line
        assert "weights_only=False" not in line and "weights_only` to `False" not in line
    assert not Path("/tmp/issue30-pwned").exists()


def test_bad_tl2_base_model_is_one_input_error(tmp_path):
    from hpc_seg.cardiac.transfer.study import base_architecture

    for name, path in _bad_models(tmp_path).items():
        with pytest.raises(InputError) as err:
            base_architecture(path)
        assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value), name
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(InputError, match="no training config"):
        base_architecture(plain)


@pytest.mark.parametrize("damage", ["truncated", "malicious"])
def test_resume_over_a_bad_model_pt_starts_clean_with_a_warning(cohort, tmp_path, caplog, damage):
    from hpc_seg.cardiac.train.loop import train_segmenter

    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(_bad_models(tmp_path)[damage], out / "model.pt")
    with caplog.at_level(logging.WARNING):
        result = train_segmenter(tiny_config(), cohort["slices"], out)
    assert result.epochs == 2 and result.resumed_from_epoch == 0
    assert any(str(out / "model.pt") in r.getMessage() and "from the start" in r.getMessage()
               for r in caplog.records)
    assert isinstance(torch.load(out / "model.pt", weights_only=True), dict)   # replaced


def test_a_bad_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    from hpc_seg.runtime.checkpoint import load_latest, save_checkpoint

    save_checkpoint({"epoch": 1}, tmp_path, 1)
    newest = save_checkpoint({"epoch": 2}, tmp_path, 2)
    shutil.copy(_bad_models(tmp_path)["malicious"], newest)
    with caplog.at_level(logging.WARNING):
        assert load_latest(tmp_path) == {"epoch": 1}
    assert any(str(newest) in r.getMessage() for r in caplog.records)


# --- 12, 13 and the weak items: job files, tables, pydicom, SeriesNumber, --only --------------

def test_non_string_src_in_a_job_file_is_one_line(tmp_path, capsys):
    job = tmp_path / "j.toml"
    job.write_text('[job]\nname = "x"\nstages = ["ingest"]\n[ingest]\nsrc = 42\n')
    assert main(["run", str(job), "--out", str(tmp_path / "o")]) == 2
    assert "[ingest].src: expected str" in _err_line(capsys)


def test_predict_on_a_truncated_volumes_shard_is_one_line(cohort, tmp_path, model, capsys):
    volumes = tmp_path / "volumes"
    shutil.copytree(cohort["volumes"], volumes)
    shard = next(volumes.glob("*.parquet"))
    shard.write_bytes(shard.read_bytes()[:shard.stat().st_size // 2])
    assert main(["predict", str(model), str(volumes), str(tmp_path / "o")]) == 2
    line = _err_line(capsys)
    assert str(shard) in line and "damaged Parquet file" in line


def test_pydicom_decoder_tracebacks_stay_off_the_console(tmp_path):
    src = tmp_path / "src"
    _export(src)
    rle_claiming(src / "PT0" / "SE1" / "IM-0001-0009.dcm", 100, 100)   # short RLE data
    env = {**os.environ, "PYTHONPATH": str(REPO), "HPC_SEG_PLAIN_LOGS": "1"}
    run = subprocess.run([sys.executable, "-m", "hpc_seg.cli", "ingest", str(src),
                          str(tmp_path / "out"), "--workers", "1"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr and "ERROR pydicom" not in run.stderr, run.stderr[-3000:]
    skipped = [ln for ln in run.stderr.splitlines() if "skipped (decode_error)" in ln]
    assert len(skipped) == 1 and "pydicom:" in skipped[0]   # every plugin's reason, one line


@pytest.mark.parametrize("value", [b"1.5 ", b"abc ", b"inf "])
def test_non_integer_series_number_is_reported_at_ingest(tmp_path, capsys, value):
    src = tmp_path / "src"
    files = _export(src)
    for rel in files[:4]:                                 # every file of series 1
        _set(src / rel, SeriesNumber=1000)
        raw = (src / rel).read_bytes()
        tag = b"\x20\x00\x11\x00IS\x04\x001000"
        (src / rel).write_bytes(raw.replace(tag, tag[:-4] + value))
    out = tmp_path / "out"
    assert main(["ingest", str(src), str(out), "--workers", "1"]) == 0
    rows = _issues(out)
    bad = rows[rows.problem == "bad_number"]
    assert len(bad) == 1 and value.decode().strip() in bad.detail.iloc[0]
    assert len(_files_of(out)) == len(files)             # no file lost over it


TINY_CINE = ('[synth_cine]\npatients = 1\nn_frames = 4\nmax_matrix = 32\nno_random_quirks = true\n'
             'workers = 1\n')


def test_only_leaves_later_stages_alone(tmp_path, capsys):
    job = tmp_path / "j.toml"
    job.write_text('[job]\nname = "x"\nstages = ["synth_cine", "ingest", "labels", "slices"]\n'
                   + TINY_CINE + '[ingest]\nworkers = 1\n')
    out = tmp_path / "o"
    assert main(["run", str(job), "--out", str(out), "--only", "synth_cine",
                 "--only", "ingest"]) == 0
    records = sorted(p.stem for p in (out / ".stages").glob("*.json"))
    assert records == ["ingest", "synth_cine"]
    assert not (out / "labels").exists()
