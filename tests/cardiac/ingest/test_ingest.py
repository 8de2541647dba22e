"""Ingest stage end to end with the local engine: tables, bad files, re-runs, errors."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from hpc_seg.cli import main
from hpc_seg.cardiac.ingest import patient as ingest_patient
from hpc_seg.cardiac.ingest.run import IngestConfig, choose_engine, ingest
from hpc_seg.storage.shards import decode_array
from hpc_seg.errors import ConfigError, InputError, OutputError
from tests.cardiac.ingest.dicom_fixtures import write_image, write_stack

LOCAL = IngestConfig(engine="local", workers=2, progress=False)


def make_cohort(root: Path) -> dict[str, dict]:
    """Patients 1-3 (train 1-2, test 3) with a truncated file, a non-DICOM file, a file
    without pixel data and a long-axis folder that must be ignored; truth for all three."""
    info = {}
    for pid, split in (("1", "train"), ("2", "train"), ("3", "test")):
        info.update(write_stack(root, pid, split, n_slices=3, n_frames=4, rows=6, cols=6))
    victim = root / "train/1/study/sax_2/IM-0002-0003.dcm"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 30])                      # cut inside the pixel data
    (root / "train/1/study/sax_1/IM-0001-0009.dcm").write_bytes(b"not a dicom file" * 20)
    d = info["train/2/study/sax_3/IM-0003-0002.dcm"]
    write_image(root / "train/2/study/sax_3/IM-0003-0002.dcm", pid="2", series_number=3,
                series_uid="9.9.9", ipp=d["ipp"], pixels=d["pixels"], trigger_ms=30.0,
                with_pixels=False)
    write_stack(root / "train/2/study/localizer", "x", "ignored", n_slices=1, rows=6, cols=6)
    la = root / "train/2/study/2ch_20"
    la.mkdir(parents=True)
    (la / "IM-0020-0001.dcm").write_bytes(b"long axis, must never be read")
    (root / "truth.csv").write_text("Id,Systole,Diastole\n1,50.5,120.0\n2,40.0,100.0\n3,45,110\n")
    return info


@pytest.fixture()
def cohort(tmp_path) -> Path:
    make_cohort(tmp_path / "src")
    return tmp_path / "src"


def tables(out: Path) -> dict[str, pd.DataFrame]:
    return {n: pd.read_parquet(out / n) for n in ("volumes", "issues", "files", "dicom_metadata",
                                                   "subjects", "patients")}


def test_ingest_writes_every_table_and_logs_bad_files(cohort, tmp_path):
    out = tmp_path / "out"
    s = ingest(cohort, out, LOCAL)
    assert (s.patients, s.stacks, s.files_skipped) == (3, 3, 3)
    assert s.skipped_by_reason == {"truncated": 1, "not_dicom": 1, "no_pixel_data": 1}
    t = tables(out)
    vols = t["volumes"].set_index("stack_id")
    assert sorted(vols.index) == ["1", "2", "3"]
    assert vols.loc["3", "split"] == "test" and vols.loc["1", "split"] == "train"
    for sid in vols.index:
        assert list(vols.loc[sid, "shape"]) == [4, 3, 6, 6]
        assert vols.loc[sid, "frame_times_ms"].tolist() == [0, 30, 60, 90]
    skipped = t["issues"][t["issues"].resolution == "file skipped"]
    assert sorted(zip(skipped.problem, skipped.file)) == [
        ("no_pixel_data", "train/2/study/sax_3/IM-0003-0002.dcm"),
        ("not_dicom", "train/1/study/sax_1/IM-0001-0009.dcm"),
        ("truncated", "train/1/study/sax_2/IM-0002-0003.dcm")]
    # The truncated frame (slice 1, frame 2) is filled from frame 1; the rest of it is kept.
    px = decode_array(vols.loc["1", "pixels"], vols.loc["1", "shape"], vols.loc["1", "dtype"])
    assert np.array_equal(px[2, 1], px[1, 1]) and not np.array_equal(px[3, 1], px[1, 1])
    files = t["files"]
    f1 = files[files.stack_id == "1"]
    assert len(f1) == 12 and f1.filled.sum() == 1
    good = {f for f in f1.file} | {f for f in files[files.stack_id != "1"].file}
    assert "train/1/study/sax_2/IM-0002-0003.dcm" not in good
    assert len(good) == 36 - 2        # every good file is used (36 written, 2 bad among them)
    assert not files.file.str.contains("2ch|ignored").any()
    meta = t["dicom_metadata"]
    assert set(meta.keyword) >= {"ImagePositionPatient", "PatientAge", "TriggerTime"}
    assert "PixelData" not in set(meta.keyword)
    ipp = meta[(meta.file == "test/3/study/sax_1/IM-0001-0001.dcm")
               & (meta.keyword == "ImagePositionPatient")].value.item()
    assert ipp == "-10.0\\-20.0\\30.0"
    subj = t["subjects"].set_index("stack_id")
    assert subj.loc["1", "Systole"] == 50.5 and subj.loc["3", "Diastole"] == 110.0
    assert subj.loc["1", "age"] == "045Y" and subj.loc["1", "manufacturer"] == "ACME"
    assert (subj.slices == 3).all() and (subj.rows == 6).all()


def test_rerun_skips_finished_patients_and_cleans_interrupted_output(cohort, tmp_path):
    out = tmp_path / "out"
    ingest(cohort, out, LOCAL)
    before = tables(out)
    # Leftovers of a crash: a temporary file, a committed-looking shard of no commit, and
    # volumes of a patient that was never marked finished.
    (out / "volumes" / ".tmp-dead-part-x.parquet").write_bytes(b"partial")
    pq.write_table(pq.read_table(out / "issues"), out / "issues" / "part-orphan.parquet")
    s = ingest(cohort, out, LOCAL)
    assert s.patients == 0 and s.patients_skipped_done == 3
    after = tables(out)
    assert len(after["issues"]) == len(before["issues"])
    assert not list(out.rglob(".tmp-*"))
    # Unmark patient 2: its volumes shard goes and it is done again, once.
    for f in (out / "patients").glob("*.parquet"):
        t = pq.read_table(f)
        t = t.filter(pq.ParquetFile(f).read().column("patient_id").to_numpy(zero_copy_only=False) != "2")
        pq.write_table(t, f)
    s = ingest(cohort, out, LOCAL)
    assert s.patients == 1
    again = tables(out)
    assert sorted(again["volumes"].stack_id) == ["1", "2", "3"]
    assert sorted(again["patients"].patient_id) == ["1", "2", "3"]


def test_interrupt_keeps_finished_patients_and_leaves_no_partial_shard(cohort, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real = ingest_patient.process_patient

    def interrupted(opts, patient):
        if patient.pid == "2":
            raise KeyboardInterrupt
        return real(opts, patient)

    monkeypatch.setattr(ingest_patient, "process_patient", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ingest(cohort, out, IngestConfig(engine="local", workers=1, shard_mb=1e-6, progress=False))
    assert not list(out.rglob(".tmp-*"))
    assert set(pd.read_parquet(out / "patients").patient_id) == {"1"}
    assert set(pd.read_parquet(out / "volumes").patient_id) == {"1"}
    monkeypatch.setattr(ingest_patient, "process_patient", real)
    s = ingest(cohort, out, LOCAL)
    assert s.patients == 2 and sorted(pd.read_parquet(out / "volumes").stack_id) == ["1", "2", "3"]


def test_disk_full_gives_one_line_error_and_no_partial_shard(cohort, tmp_path, monkeypatch):
    import pyarrow.parquet as pq_mod

    def full(table, where, **kw):
        Path(where).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq_mod, "write_table", full)
    out = tmp_path / "out"
    with pytest.raises(OutputError, match="no space left on device") as exc:
        ingest(cohort, out, IngestConfig(engine="local", workers=1, progress=False))
    assert "\n" not in str(exc.value) and str(out) in str(exc.value)
    assert not [p for p in out.rglob("*") if p.is_file() and p.name != ".ingest.lock"]


def test_output_permission_error_is_reported(cohort, tmp_path, monkeypatch):
    def denied(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", denied)
    with pytest.raises(OutputError, match="permission denied"):
        ingest(cohort, tmp_path / "out", IngestConfig(engine="local", workers=1, progress=False))
    assert not list((tmp_path / "out").rglob("*.parquet"))


@pytest.mark.parametrize("case,expect", [
    ("missing", "does not exist"), ("file", "not a directory"), ("empty", "no patient folders"),
    ("no_sax", "no short-axis series"), ("under_file", "does not exist")])
def test_bad_input_gives_clear_error_and_nonzero_exit(tmp_path, capsys, case, expect):
    src = tmp_path / "src"
    if case == "file":
        src.write_text("x")
    elif case == "empty":
        src.mkdir()
    elif case == "no_sax":
        (src / "train/1/study/2ch_1").mkdir(parents=True)
        (src / "train/1/study/2ch_1/a.dcm").write_bytes(b"x")
    elif case == "under_file":
        (tmp_path / "plain").write_text("x")
        src = tmp_path / "plain" / "src"
    with pytest.raises(InputError, match=expect):
        ingest(src, tmp_path / "out", LOCAL)
    assert main(["ingest", str(src), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hpc-seg: error: ") and str(src) in err[0]


def test_unwritable_output_under_a_regular_file(cohort, tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    assert main(["ingest", str(cohort), str(tmp_path / "plain" / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hpc-seg: error: ") and "plain" in err and "cannot write" in err


def test_cli_prints_summary(cohort, tmp_path, capsys):
    assert main(["ingest", str(cohort), str(tmp_path / "out"), "--engine", "local",
                 "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "stacks: 3" in text and "not_dicom: 1" in text and "volumes:" in text


def test_engine_choice():
    assert choose_engine(IngestConfig(), 10)[0] == "local"
    assert choose_engine(IngestConfig(ray_address="auto"), 10)[0] == "ray"
    assert choose_engine(IngestConfig(engine="ray"), 10) == ("ray", "requested")


def test_broken_mask_file_keeps_the_images(cohort, tmp_path):
    (cohort / "masks").mkdir()
    (cohort / "masks" / "3.npz").write_bytes(b"PK\x03\x04 not really a zip")
    ingest(cohort, tmp_path / "out", LOCAL)
    vols = pd.read_parquet(tmp_path / "out" / "volumes").set_index("stack_id")
    assert vols.loc["3", "mask"] is None and vols.loc["3", "pixels"] is not None
    issues = pd.read_parquet(tmp_path / "out" / "issues")
    assert "mask_unreadable" in set(issues[issues.patient_id == "3"].problem)


def test_mask_archive_reads_what_numpy_wrote(tmp_path):
    from hpc_seg.cardiac.ingest.masks import MaskArchive

    arrays = {"1.2.3": np.arange(12, dtype=np.uint8).reshape(3, 4),
              "1.2.4": np.asfortranarray(np.arange(6, dtype=np.uint16).reshape(2, 3))}
    np.savez_compressed(tmp_path / "m.npz", **arrays)
    masks = MaskArchive(tmp_path / "m.npz")
    assert len(masks) == 2 and "1.2.3" in masks and masks.get("nope") is None
    for key, want in arrays.items():
        assert np.array_equal(masks.get(key), want)
    masks.close()


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_mask_archive_rejects_a_damaged_member(tmp_path, save):
    import zipfile

    from hpc_seg.cardiac.ingest.masks import MaskArchive

    rng = np.random.default_rng(0)
    arrays = {"1.2.3": rng.integers(0, 4, (64, 64), dtype=np.uint8), "1.2.4": np.zeros((8, 8), np.uint8)}
    save(tmp_path / "m.npz", **arrays)
    assert np.array_equal(MaskArchive(tmp_path / "m.npz").get("1.2.3"), arrays["1.2.3"])
    data = bytearray((tmp_path / "m.npz").read_bytes())
    with zipfile.ZipFile(tmp_path / "m.npz") as zf:
        info = zf.getinfo("1.2.3.npy")
    data[info.header_offset + 30 + len(info.filename) + 200] ^= 0xFF   # inside the member's data
    (tmp_path / "bad.npz").write_bytes(bytes(data))
    masks = MaskArchive(tmp_path / "bad.npz")
    assert np.array_equal(masks.get("1.2.4"), arrays["1.2.4"])        # the other member is fine
    with pytest.raises(zipfile.BadZipFile, match="1.2.3"):
        masks.get("1.2.3")


def test_second_ingest_into_the_same_out_is_refused_while_one_runs(cohort, tmp_path):
    from hpc_seg.cardiac.ingest.commit import Committer

    holder = Committer(tmp_path / "out")        # as if another ingest were running
    try:
        with pytest.raises(OutputError, match="another ingest is writing here"):
            ingest(cohort, tmp_path / "out", LOCAL)
    finally:
        holder.close()
    assert ingest(cohort, tmp_path / "out", LOCAL).patients == 3


def test_sigint_keeps_finished_patients_and_leaves_no_partial_shard(cohort, tmp_path):
    """A real Ctrl-C (SIGINT to the process group) in the middle of a run, then a re-run."""
    import signal
    import subprocess
    import sys
    import time

    for pid in ("4", "5", "6", "7"):   # more work, so the signal lands mid-run
        write_stack(cohort, pid, "validate", n_slices=6, n_frames=12, rows=64, cols=64)
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "import sys; from hpc_seg.cli import main; sys.exit(main(sys.argv[1:]))",
           "ingest", str(cohort), str(out), "--engine", "local", "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list((out / "volumes").glob("*.parquet")) \
            and proc.poll() is None:
        time.sleep(0.05)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    try:
        _stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)     # never leave a hung run behind
        proc.communicate()
        raise
    assert proc.returncode in (0, 130), stderr
    assert not list(out.rglob(".tmp-*"))
    s = ingest(cohort, out, LOCAL)
    assert s.patients + s.patients_skipped_done == 7
    vols = pd.read_parquet(out / "volumes")
    assert sorted(vols.stack_id) == ["1", "2", "3", "4", "5", "6", "7"]
    assert len(pd.read_parquet(out / "patients")) == 7


def test_a_killed_worker_is_an_error_not_a_hang(cohort, tmp_path, monkeypatch):
    """The OOM killer's SIGKILL on a pool worker: the run stops with a clear error (a plain
    multiprocessing.Pool would wait for the lost chunk forever); a re-run finishes the cohort."""
    import signal

    from hpc_seg.cardiac.ingest import engine_local as ingest_local
    from hpc_seg.errors import WorkerDiedError

    real = ingest_local.run_chunk

    def dies_on_patient_2(opts, chunk, tag=None):
        if any(p.pid == "2" for p in chunk):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(opts, chunk, tag)

    monkeypatch.setattr(ingest_local, "run_chunk", dies_on_patient_2)
    with pytest.raises(WorkerDiedError, match="killed by signal 9"):
        ingest(cohort, tmp_path / "out", LOCAL)
    monkeypatch.setattr(ingest_local, "run_chunk", real)
    s = ingest(cohort, tmp_path / "out", LOCAL)
    assert s.patients + s.patients_skipped_done == 3
    assert sorted(pd.read_parquet(tmp_path / "out" / "volumes").stack_id) == ["1", "2", "3"]


def test_pixels_are_stored_raw_by_default_and_zstd_on_request(cohort, tmp_path):
    ingest(cohort, tmp_path / "raw", LOCAL)
    ingest(cohort, tmp_path / "z", IngestConfig(engine="local", workers=2, progress=False,
                                                pixel_compression="zstd"))
    for name, want in (("raw", "UNCOMPRESSED"), ("z", "ZSTD")):
        meta = pq.ParquetFile(next((tmp_path / name / "volumes").glob("*.parquet"))).metadata
        codecs = {meta.schema.column(i).name: meta.row_group(0).column(i).compression
                  for i in range(meta.num_columns)}
        assert codecs["pixels"] == want and codecs["mask"] == "ZSTD"
    a = pd.read_parquet(tmp_path / "raw" / "volumes").set_index("stack_id").sort_index()
    b = pd.read_parquet(tmp_path / "z" / "volumes").set_index("stack_id").sort_index()
    assert list(a.pixels) == list(b.pixels)


@pytest.mark.parametrize("key", ["compression", "pixel_compression"])
def test_unknown_codec_is_named_with_its_key(key):
    with pytest.raises(ConfigError, match=rf"{key}: must be one of zstd, lz4, snappy, none, got 'gzip'"):
        IngestConfig(**{key: "gzip"})


def test_a_pool_that_hangs_in_terminate_does_not_hang_the_run(caplog):
    """multiprocessing's terminate can block for ever after a worker was killed (seen in CI): the
    engine gives it a bounded time, then kills the workers itself and goes on."""
    import threading

    from hpc_seg.cardiac.ingest.engine_local import _terminate

    class Worker:
        exitcode = None
        killed = False

        def kill(self):
            self.killed = True

    class StuckPool:
        _pool = [Worker(), Worker()]
        release = threading.Event()

        def terminate(self):
            self.release.wait()          # like the read lock a dead worker never gives back

        def join(self):
            pass

    pool = StuckPool()
    _terminate(pool, timeout_s=0.2)
    assert all(w.killed for w in pool._pool)
    assert "did not stop within" in caplog.text
    pool.release.set()
