"""The ``sax_`` layouts of a cine cohort: ``project`` (``{split}/<pid>/study/sax_*``), ``kaggle``
(the unzip, ``{split}/{split}/<pid>/...``), ``single`` (one patient folder) and ``flat``
(``<pid>/study/...``). A patient whose study folder has no ``sax_*`` folder but other series folders
(not named 2ch/3ch/4ch/lax/lvot) has its series chosen from the headers instead."""

from __future__ import annotations

import re
from pathlib import Path

from hpc_seg.storage.names import safe_name
from hpc_seg.cardiac.ingest.listing import (SIDE_ENTRIES, SPLITS, UNSPLIT, Cohort, FolderLister,
                                            PatientFolder, Problem, is_dir, pid_key)

#: series folder names of long-axis views in the Kaggle layout (never short-axis candidates)
LONG_AXIS_NAME = re.compile(r"(2ch|3ch|4ch|lax|lvot)", re.IGNORECASE)


def _study_patient(lister: FolderLister, pid: str, split: str, folder: Path) -> PatientFolder:
    """A patient in a ``sax_`` layout: its ``study/sax_*`` files, or (no ``sax_`` folder)
    every file below ``study`` with series chosen from the headers."""
    study = folder / "study"
    entries = lister.entries(study) if is_dir(study) else []
    series = [e for e in entries if lister.kind(e) == "dir"]
    sax = [e for e in series if e.name.lower().startswith("sax")]
    files: list[str] = []
    nbytes = 0
    for entry in sax:
        more, nb = lister.files(Path(entry.path), recursive=False)
        files += more
        nbytes += nb
    # No sax_ folder: the series are chosen from headers, among the folders whose name does
    # not already say they are long-axis views (a Kaggle patient with only 2ch_/4ch_ folders
    # has no short-axis series, and ingest says so).
    others = [e for e in series if not LONG_AXIS_NAME.match(e.name)] if not sax else []
    lister.forget(others)      # listed again, recursively
    for entry in others:
        more, nb = lister.files(Path(entry.path), recursive=True)
        files += more
        nbytes += nb
    return PatientFolder(pid, split, tuple(files), nbytes, bool(others and files), lister.take())


def _patient_dirs(lister: FolderLister, folder: Path) -> list[tuple[str, Path, tuple[Problem, ...]]]:
    """(name, path, problems) of the patient folders in ``folder``, in pid order."""
    found = []
    for entry in sorted(lister.entries(folder), key=lambda e: pid_key(e.name)):
        if entry.name in SIDE_ENTRIES:
            continue
        kind = lister.kind(entry)
        problems = lister.take()
        if kind == "dir" or problems:
            found.append((safe_name(entry.name), Path(entry.path), problems))
    return found


def sax_layout(lister: FolderLister, src: Path) -> Cohort | None:
    """The project, kaggle, single and flat layouts; None when ``src`` is none of them."""
    splits = [s for s in SPLITS if is_dir(src / s)]
    lister.mark(src)
    if splits:
        kaggle = any(is_dir(src / s / s) for s in splits)
        patients = []
        for split in splits:
            base = src / split / split if kaggle and is_dir(src / split / split) else src / split
            lister.mark(src / split)
            lister.mark(base)
            for name, folder, problems in _patient_dirs(lister, base):
                p = _study_patient(lister, name, split, folder)
                patients.append(_with_problems(p, problems))
        return Cohort("kaggle" if kaggle else "project", patients)
    if is_dir(src / "study"):
        return Cohort("single", [_study_patient(lister, safe_name(src.resolve().name), UNSPLIT,
                                                src)])
    if src.resolve().name == "study" and any(e.name.lower().startswith("sax")
                                             for e in lister.entries(src)):
        # pointed at the study folder itself: paths stay relative to the folder given
        patient = src.resolve().parent
        lister.root = patient
        p = _study_patient(lister, safe_name(patient.name), UNSPLIT, patient)
        return Cohort("single", [PatientFolder(p.pid, p.split, tuple(
            f.removeprefix("study/") for f in p.files), p.nbytes, p.select_series, p.problems)])
    dirs = _patient_dirs(lister, src)
    with_study = [(n, f, p) for n, f, p in dirs if is_dir(f / "study")]
    if with_study:
        return Cohort("flat", [_with_problems(_study_patient(lister, n, UNSPLIT, f), p)
                               for n, f, p in with_study])
    lister.take()
    return None


def _with_problems(p: PatientFolder, problems: tuple[Problem, ...]) -> PatientFolder:
    if not problems:
        return p
    return PatientFolder(p.pid, p.split, p.files, p.nbytes, p.select_series,
                         problems + p.problems)
