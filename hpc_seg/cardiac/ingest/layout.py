"""Discover a Kaggle Data Science Bowl 2 cohort on disk.

Layout: ``SRC/{train,validate,test}/<pid>/study/sax_*/IM-*.dcm``. Only short-axis (``sax_*``)
folders are used; ``2ch_*``/``4ch_*`` long-axis folders are ignored. Every regular file in a
``sax_*`` folder is listed (not only ``*.dcm``) so that junk files are reported as skipped, not
silently ignored. ``SRC/masks/<pid>.npz`` holds optional label masks, ``SRC/truth.csv`` optional
volumes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hpc_seg.errors import InputError

SPLITS = ("train", "validate", "test")


@dataclass(frozen=True, slots=True)
class PatientFolder:
    """One patient's short-axis files, as paths relative to the cohort root."""

    pid: str
    split: str
    files: tuple[str, ...]
    nbytes: int


def _pid_key(pid: str) -> tuple[int, int | str]:
    return (0, int(pid)) if pid.isdigit() else (1, pid)


def _listdir(path: Path) -> list[os.DirEntry]:
    with os.scandir(path) as it:
        return sorted(it, key=lambda e: e.name)


def _sax_files(study: Path, root: Path) -> tuple[list[str], int]:
    files, nbytes = [], 0
    for series in _listdir(study):
        if not (series.is_dir() and series.name.lower().startswith("sax")):
            continue
        # One relative folder per series, not a Path per file: discovery runs in the parent
        # before any worker starts, and pathlib cost ~0.1 s per 7,000 files there.
        prefix = Path(series.path).relative_to(root).as_posix() + "/"
        for entry in _listdir(Path(series.path)):
            if entry.is_file() and not entry.name.startswith("."):
                files.append(prefix + entry.name)
                nbytes += entry.stat().st_size
    return files, nbytes


def discover_cohort(src: Path) -> list[PatientFolder]:
    """List every patient folder with its short-axis files, in split and pid order.

    Raises :class:`InputError` naming ``src`` when it is missing, unreadable, holds no
    ``{train,validate,test}/<pid>`` folders, or holds no short-axis file at all. Patients
    without ``sax_*`` folders are returned with no files (ingest logs them as an issue).
    """
    src = Path(src)
    if not src.exists():
        raise InputError(f"{src}: input folder does not exist")
    if not src.is_dir():
        raise InputError(f"{src}: input path is not a directory")
    patients: list[PatientFolder] = []
    try:
        for split in SPLITS:
            split_dir = src / split
            if not split_dir.is_dir():
                continue
            for entry in sorted(_listdir(split_dir), key=lambda e: _pid_key(e.name)):
                study = Path(entry.path) / "study"
                if not entry.is_dir() or entry.name.startswith("."):
                    continue      # hidden: e.g. a generator's or copier's temporary folder
                files, nbytes = _sax_files(study, src) if study.is_dir() else ([], 0)
                patients.append(PatientFolder(entry.name, split, tuple(files), nbytes))
    except PermissionError as exc:
        raise InputError(f"{exc.filename or src}: cannot read input: permission denied") from None
    except OSError as exc:
        raise InputError(f"{exc.filename or src}: cannot read input: {exc.strerror or exc}") from None
    if not patients:
        raise InputError(f"{src}: no patient folders found (expected "
                         f"{{train,validate,test}}/<pid>/study/sax_*/*.dcm)")
    if not any(p.files for p in patients):
        raise InputError(f"{src}: no short-axis series found: none of {len(patients)} patient "
                         f"folders has a non-empty study/sax_* folder")
    return patients


def masks_path(src: Path, pid: str) -> Path:
    """Where the label masks of patient ``pid`` live (may not exist)."""
    return Path(src) / "masks" / f"{pid}.npz"
