"""Faults in `hpc-seg ingest` and `hpc-seg run`: kill -9 and Ctrl-C at several points, a full
disk, fuzzed DICOM. After each fault a re-run must give tables identical to a clean run, leave
no temporary file, and leave no process behind."""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cardiac.ingest.dicom_fixtures import write_stack
from tests.faults.conftest import Run, session_processes, temporaries

pytestmark = pytest.mark.faults

TABLES = ("volumes", "issues", "files", "dicom_metadata", "subjects", "patients")


def make_cohort(root: Path, patients: int = 6) -> Path:
    for pid in range(1, patients + 1):
        write_stack(root, str(pid), "train" if pid <= patients - 2 else "test", n_slices=6,
                    n_frames=8, rows=32, cols=32)
    (root / "truth.csv").write_text("Id,Systole,Diastole\n" + "".join(
        f"{p},{40 + p},{100 + p}\n" for p in range(1, patients + 1)))
    return root


def table_rows(out: Path) -> dict[str, list[str]]:
    """Every table as sorted row texts (row order, shard names and timings do not matter)."""
    rows = {}
    for name in TABLES:
        df = pd.read_parquet(out / name).drop(columns=["seconds"], errors="ignore")
        rows[name] = sorted(repr(tuple(v.tolist() if isinstance(v, np.ndarray) else v
                                       for v in r)) for r in df.itertuples(index=False))
    return rows


def _cohort_and_clean_tables(root: Path, patients: int) -> tuple[Path, dict[str, list[str]]]:
    src = make_cohort(root / "src", patients)
    clean = root / "clean"
    run = Run(["ingest", str(src), str(clean), "--workers", "2"], root, "clean")
    assert run.finish(300) == 0, run.output()
    return src, table_rows(clean)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    """The cohort and its clean ingest (the reference every faulted run is compared with)."""
    return _cohort_and_clean_tables(tmp_path_factory.mktemp("faults"), 6)


@pytest.fixture(scope="module")
def long_cohort(tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    """A cohort whose ingest outlasts the first shard by far: on an idle machine the 6-patient
    one finished in 0.3 s, before a Ctrl-C sent at its first shard could land."""
    return _cohort_and_clean_tables(tmp_path_factory.mktemp("faults_long"), 40)


def _ingest(runs, src: Path, out: Path, name: str) -> Run:
    return runs(["ingest", src, out, "--workers", "2"], name)


def _workers_started(run: Run) -> bool:
    return len(session_processes(run.sid)) >= 3          # the parent and its two pool workers


def _first_shard(out: Path) -> bool:
    return any((out / "volumes").glob("part-*.parquet")) if (out / "volumes").is_dir() else False


@pytest.mark.parametrize("sig, point", [(signal.SIGKILL, "workers_started"),
                                        (signal.SIGINT, "first_shard")],
                         ids=["kill9-workers_started", "sigint-first_shard"])
def test_interrupted_ingest_reruns_to_the_clean_tables(request, tmp_path, runs, sig, point):
    src, clean = request.getfixturevalue("long_cohort" if point == "first_shard" else "cohort")
    out = tmp_path / "out"
    first = _ingest(runs, src, out, "first")
    first.wait_for((lambda: _workers_started(first)) if point == "workers_started"
                   else (lambda: _first_shard(out)), 120, point)
    if sig == signal.SIGKILL:
        first.signal(signal.SIGKILL, group=False)      # the parent only: workers must follow it
        first.finish()
    else:
        first.signal(signal.SIGINT)                    # Ctrl-C: the whole process group
        assert first.finish() == 130, first.output()[-2000:]
        assert "Traceback" not in first.output()
    deadline_ok = _wait_gone(first.sid)
    assert deadline_ok, f"processes of the interrupted ingest are left: {session_processes(first.sid)}"
    if sig == signal.SIGINT:
        assert temporaries(out) == []
    again = _ingest(runs, src, out, "again")
    assert again.finish(300) == 0, again.output()[-2000:]
    assert table_rows(out) == clean
    assert temporaries(out) == [] and session_processes(again.sid) == []


def _wait_gone(sid: int, timeout: float = 10.0) -> bool:
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not session_processes(sid):
            return True
        time.sleep(0.1)
    return False


def test_full_disk_is_one_line_and_the_rerun_is_clean(cohort, tmp_path, runs):
    src, clean = cohort
    out = tmp_path / "small"
    out.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(out)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        full = _ingest(runs, src, out / "ing", "full")
        assert full.finish(300) == 2
        err = [line for line in full.output().splitlines() if line.startswith("hpc-seg: error")]
        assert len(err) == 1 and "no space left on device" in err[0], full.output()[-2000:]
        assert "Traceback" not in full.output()
        assert temporaries(out) == [] and session_processes(full.sid) == []
        subprocess.run(["mount", "-o", "remount,size=64m", str(out)], check=True)
        again = _ingest(runs, src, out / "ing", "again")
        assert again.finish(300) == 0, again.output()[-2000:]
        assert table_rows(out / "ing") == clean
        assert temporaries(out) == []
    finally:
        subprocess.run(["umount", "-l", str(out)], capture_output=True)


def _fuzz(good: bytes, kind: str, rng: np.random.Generator) -> bytes:
    if kind == "truncated":
        return good[: len(good) // 3]
    if kind == "header_noise":                     # random bytes over the element headers
        data = bytearray(good)
        pos = rng.integers(132, 400, 40)
        data[pos.min():pos.min() + 40] = rng.integers(0, 256, 40, dtype=np.uint8).tobytes()
        return bytes(data)
    if kind == "huge_length":                      # PixelData claims 4 GB - 2
        i = good.rfind(b"\xe0\x7f\x10\x00")
        return good[:i + 8] + struct.pack("<I", 0xFFFFFFFE) + good[i + 12:]
    if kind == "zero_length":
        return b""
    raise ValueError(kind)


FUZZ = ("truncated", "header_noise", "huge_length", "zero_length")


def test_fuzzed_dicom_is_listed_and_the_rest_is_the_clean_output(cohort, tmp_path, runs):
    src, clean = cohort
    fuzzed = tmp_path / "src"
    shutil.copytree(src, fuzzed)
    rng = np.random.default_rng(13)
    good = (fuzzed / "train/1/study/sax_1/IM-0001-0001.dcm").read_bytes()
    for k, kind in enumerate(FUZZ):
        (fuzzed / f"train/{k + 1}/study/sax_2/zz-{kind}.dcm").write_bytes(_fuzz(good, kind, rng))
    out = tmp_path / "out"
    run = _ingest(runs, fuzzed, out, "fuzzed")
    assert run.finish(300) == 0, run.output()[-2000:]
    assert "Traceback" not in run.output()
    rows = table_rows(out)
    assert rows["volumes"] == clean["volumes"]     # the junk changes nothing that was good
    assert rows["files"] == clean["files"]
    issues = pd.read_parquet(out / "issues")
    listed = {Path(f).name for f in issues.file}
    assert {f"zz-{kind}.dcm" for kind in FUZZ} <= listed


def test_discovery_faults_symlink_loop_and_dcm_directory(cohort, tmp_path, runs):
    """A symlink loop, a broken symlink and a
    folder named *.dcm are each one file's problem, listed in `issues`; the rest is ingested
    exactly as in a clean run."""
    src, clean = cohort
    odd = tmp_path / "src"
    shutil.copytree(src, odd, symlinks=True)
    sax = odd / "train/2/study/sax_3"
    os.symlink("loop-b.dcm", sax / "loop-a.dcm")
    os.symlink("loop-a.dcm", sax / "loop-b.dcm")
    os.symlink("does-not-exist.dcm", sax / "broken.dcm")
    (sax / "folder.dcm").mkdir()
    out = tmp_path / "out"
    run = _ingest(runs, odd, out, "odd")
    assert run.finish(300) == 0, run.output()[-2000:]
    rows = table_rows(out)
    assert rows["volumes"] == clean["volumes"]
    listed = {Path(f).name for f in pd.read_parquet(out / "issues").file}
    assert {"loop-a.dcm", "loop-b.dcm", "broken.dcm", "folder.dcm"} <= listed


def test_interrupted_run_job_reruns_to_the_clean_tables(cohort, tmp_path, runs):
    """`hpc-seg run` (ingest stage) killed, then Ctrl-C'd, then run to the end: no stage record
    of an interrupted stage, and the same tables as the clean ingest."""
    src, clean = cohort
    job = tmp_path / "job.toml"
    job.write_text(f'[job]\nname = "f"\nstages = ["ingest"]\n[ingest]\nsrc = "{src}"\n'
                   'workers = 2\nprogress = false\n')
    out = tmp_path / "out"
    for sig, name in ((signal.SIGKILL, "kill9"), (signal.SIGINT, "sigint")):
        run = runs(["run", job, "--out", out], name)
        run.wait_for(lambda: _workers_started(run), 120, "ingest workers")
        run.signal(sig, group=sig == signal.SIGINT)
        code = run.finish()
        assert code == (130 if sig == signal.SIGINT else -9), run.output()[-2000:]
        assert _wait_gone(run.sid) and not (out / ".stages" / "ingest.json").exists()
    again = runs(["run", job, "--out", out], "again")
    assert again.finish(300) == 0, again.output()[-2000:]
    assert (out / ".stages" / "ingest.json").exists()
    assert table_rows(out / "ingest") == clean
    assert temporaries(out) == []
