"""The one resumable loop of the cohort generators (hpc_seg/storage/generated.py), and that the
three generators behave alike on a folder made with other settings."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest

from hpc_seg.errors import OutputError
from hpc_seg.runtime.threads import allocated_cpus
from hpc_seg.storage.generated import (GeneratedFolder, UnitDone, generate_units, open_folder,
                                       worker_count)

KIND = GeneratedFolder(what="toy cohort", state_file=".toy.json", done_dir=".units",
                       can_overwrite=True)


def _write(out: Path, log: Path, unit: int) -> UnitDone:
    (out / f"u{unit}.txt").write_text(str(unit * unit))
    with log.open("a") as fh:
        fh.write(f"{unit}\n")
    return UnitDone(str(unit), {"square": unit * unit}, files=1)


def _run(out: Path, log: Path, n: int, workers: int = 1, **settings) -> dict:
    open_folder(out, KIND, {"n": n, **settings})
    return generate_units(out, KIND, range(n), partial(_write, out, log), str, workers=workers,
                          label="toy", unit="units")


def test_resume_skips_recorded_units_and_removes_half_written_ones(tmp_path):
    out, log = tmp_path / "out", tmp_path / "log"
    assert _run(out, log, 3) == {str(i): {"square": i * i} for i in range(3)}
    (out / ".units" / "1.json").unlink()                 # unit 1 was interrupted ...
    (out / ".tmp-1-deadbeef").mkdir()                    # ... half-written
    assert _run(out, log, 3)["1"] == {"square": 1}
    assert log.read_text().split() == ["0", "1", "2", "1"]  # only unit 1 ran again
    assert not (out / ".tmp-1-deadbeef").exists()


def test_workers_zero_means_the_cpu_allocation_and_at_most_one_per_unit():
    assert worker_count(0, 1000) == allocated_cpus().cpus
    assert worker_count(0, 1) == 1 and worker_count(3, 2) == 2 and worker_count(2, 0) == 1


def test_a_pool_writes_the_same_units(tmp_path):
    out = tmp_path / "pool"
    entries = _run(out, tmp_path / "log", 4, workers=2)
    assert sorted(entries) == ["0", "1", "2", "3"]
    assert sorted(p.name for p in (out / ".units").iterdir()) == [f"{i}.json" for i in range(4)]


def test_other_settings_foreign_folders_and_overwrite(tmp_path):
    out, log = tmp_path / "out", tmp_path / "log"
    _run(out, log, 2, seed=1)
    with pytest.raises(OutputError, match=r"holds a toy cohort made with other settings "
                                          r"\(seed 1 -> 2\); pick another folder or pass "
                                          r"--overwrite"):
        open_folder(out, KIND, {"n": 2, "seed": 2})
    open_folder(out, KIND, {"n": 2, "seed": 2}, overwrite=True)     # ours: replaced
    assert not (out / "u0.txt").exists()
    assert json.loads((out / ".toy.json").read_text())["generator"] == {"n": 2, "seed": 2}
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("precious")
    with pytest.raises(OutputError, match="is not a toy cohort"):
        open_folder(foreign, KIND, {"n": 2})
    with pytest.raises(OutputError, match="refusing to delete it"):
        open_folder(foreign, KIND, {"n": 2}, overwrite=True)
    assert (foreign / "keep.txt").read_text() == "precious"


def test_a_folder_written_before_state_files_is_adopted(tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"seed": 1}))
    adopt = lambda folder: json.loads((folder / "manifest.json").read_text())  # noqa: E731
    open_folder(out, KIND, {"seed": 1}, adopt=adopt)
    assert (out / ".toy.json").is_file()
    with pytest.raises(OutputError, match="other settings"):
        open_folder(tmp_path / "old", GeneratedFolder("toy cohort", ".other.json", ".u"),
                    {"seed": 2}, adopt=adopt)


def test_a_setting_added_later_at_its_default_resumes_an_older_folder(tmp_path):
    """A folder made before a setting existed resumes when the setting is at the default it had
    then; another value is another folder."""
    out = tmp_path / "out"
    open_folder(out, KIND, {"n": 2})                                 # made before "rim" existed
    before = (out / KIND.state_file).read_text()
    open_folder(out, KIND, {"n": 2, "rim": 0.0}, later={"rim": 0.0})  # resumes, same state
    assert (out / KIND.state_file).read_text() == before
    with pytest.raises(OutputError, match=r"other settings \(rim None -> 8\.0\)"):
        open_folder(out, KIND, {"n": 2, "rim": 8.0}, later={"rim": 0.0})
