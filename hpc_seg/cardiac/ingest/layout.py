"""Find the patients of a cine cohort on disk, in any of the shapes real data arrive in.

Accepted layouts (checked in this order; the first that matches wins):

- ``project``: the project's own tree, ``SRC/{train,validate,test}/<pid>/study/sax_*/IM-*.dcm``;
- ``kaggle``: the Kaggle download as it unzips, the split folder twice:
  ``SRC/{train,validate,test}/{train,validate,test}/<pid>/study/sax_*/``;
- ``single``: one patient folder, ``SRC/study/sax_*/`` (the pid is the folder's name);
- ``flat``: a folder of patient folders with no split level, ``SRC/<pid>/study/sax_*/``;
- ``export``: a scanner or PACS export: DICOM files anywhere below ``SRC`` (often
  ``PT*/ST*/SE*/IM*`` with a DICOMDIR), with no ``sax_`` names. Files are grouped into patients by
  their PatientID header, which is also the pid (the folder names of an export are not ids).

The split comes from the path where there is one, otherwise it is ``unsplit``. In the ``sax_``
layouts a patient whose study folder has no ``sax_*`` folder but other series folders (not
named 2ch/3ch/4ch/lax/lvot) has its series chosen from the headers instead (:mod:`hpc_seg.cardiac.ingest.series_select`); so does
every patient of an export.

Every regular file is listed (not only ``*.dcm``) so that junk is reported as skipped, not
silently ignored. An entry that cannot be listed (a symlink loop, a broken symlink, an unreadable
folder, a folder named ``*.dcm``) is one file's problem: it is returned as a :class:`Problem` of
the patient it was found in, ingest writes it to the ``issues`` table and goes on.
``SRC/masks/<pid>.npz`` holds optional label masks, ``SRC/truth.csv`` optional volumes.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from hpc_seg.errors import InputError
from hpc_seg.storage.names import printable, safe_name

log = logging.getLogger(__name__)

SPLITS = ("train", "validate", "test")
UNSPLIT = "unsplit"
#: cohort-level side folders and files, never patients' images
SIDE_ENTRIES = frozenset({"masks", "truth_masks", "truth.csv", "manifest.json"})
#: series folder names of long-axis views in the Kaggle layout (never short-axis candidates)
LONG_AXIS_NAME = re.compile(r"(2ch|3ch|4ch|lax|lvot)", re.IGNORECASE)
#: discovery problems (the ``problem`` column of ``issues``)
PROBLEMS = ("symlink_loop", "broken_symlink", "unreadable", "not_a_file", "bad_file_name")


@dataclass(frozen=True, slots=True)
class Problem:
    """An entry that could not be listed as a file: (path relative to the root, reason, why)."""

    file: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class PatientFolder:
    """One patient's candidate image files, as paths relative to the cohort root."""

    pid: str
    split: str
    files: tuple[str, ...]
    nbytes: int
    select_series: bool = False          # True: choose the SAX stack from headers
    problems: tuple[Problem, ...] = ()

    def to_json(self) -> str:
        """Files, series mode and problems as JSON (how the Ray engine ships a patient)."""
        return json.dumps({"files": list(self.files), "select_series": self.select_series,
                           "problems": [[p.file, p.reason, p.detail] for p in self.problems]})

    @classmethod
    def from_json(cls, pid: str, split: str, text: str) -> "PatientFolder":
        """Inverse of :meth:`to_json` (the byte count is not shipped: 0)."""
        d = json.loads(text)
        return cls(pid, split, tuple(d["files"]), 0, bool(d["select_series"]),
                   tuple(Problem(*p) for p in d["problems"]))


@dataclass(frozen=True, slots=True)
class Cohort:
    """What discovery found: the layout's name and its patients."""

    layout: str
    patients: list[PatientFolder]


def _pid_key(pid: str) -> tuple[int, int | str]:
    return (0, int(pid)) if pid.isdigit() else (1, pid)


class _Lister:
    """Guarded directory listing that turns bad entries into :class:`Problem` rows.

    ``os.DirEntry.is_dir()``/``is_file()`` raise for a symlink loop (ELOOP) and ``scandir``
    for an unreadable folder; here each becomes one problem and the listing goes on. Folders
    reached twice through symlinks (a loop back to an ancestor) are listed once.
    """

    def __init__(self, root: Path):
        self.root = root
        self.problems: list[Problem] = []
        self._seen: set[tuple[int, int]] = set()

    def mark(self, folder: Path) -> None:
        """Count ``folder`` as listed, so a symlink back to it is reported as a loop."""
        try:
            st = folder.stat()
            self._seen.add((st.st_dev, st.st_ino))
        except OSError:
            pass

    def rel(self, path: str | Path) -> str:
        return Path(path).relative_to(self.root).as_posix()

    def problem(self, path: str | Path, reason: str, detail: str) -> None:
        self.problems.append(Problem(printable(self.rel(path)), reason, detail))

    def entries(self, folder: Path) -> list[os.DirEntry]:
        """The non-hidden entries of ``folder`` by name; [] (and a problem) if unreadable."""
        try:
            with os.scandir(folder) as it:
                return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        except OSError as exc:
            self.problem(folder, "symlink_loop" if exc.errno == errno.ELOOP else "unreadable",
                         f"cannot list folder: {exc.strerror or exc}")
            return []

    def kind(self, entry: os.DirEntry) -> str | None:
        """"dir", "file", or None (the entry became a problem, or is not a file at all)."""
        try:
            if entry.is_dir():
                st = entry.stat()
                key = (st.st_dev, st.st_ino)
                if key in self._seen:
                    self.problem(entry.path, "symlink_loop",
                                 "folder reached twice (a symlink back into the tree); listed once")
                    return None
                self._seen.add(key)
                return "dir"
            if entry.is_file():
                return "file"
            if entry.is_symlink():
                self.problem(entry.path, "broken_symlink",
                             f"symlink to missing {os.readlink(entry.path)}")
                return None
            self.problem(entry.path, "not_a_file", "not a regular file (device, socket or fifo)")
        except OSError as exc:
            reason = "symlink_loop" if exc.errno == errno.ELOOP else "unreadable"
            self.problem(entry.path, reason, f"{exc.strerror or exc}")
        return None

    def files(self, folder: Path, recursive: bool) -> tuple[list[str], int]:
        """Regular files in ``folder`` (and below, if ``recursive``), relative, with total size."""
        out: list[str] = []
        nbytes = 0
        # One relative folder per listing, not a Path per file: discovery runs in the parent
        # before any worker starts, and pathlib cost ~0.1 s per 7,000 files there.
        prefix = self.rel(folder) + "/"
        prefix = "" if prefix == "./" else prefix
        for entry in self.entries(folder):
            kind = self.kind(entry)
            if kind == "file" and not _utf8(prefix + entry.name):
                # Tables, logs and DICOM SEG references hold names as UTF-8 text: a name that
                # is not UTF-8 would fail there (or be changed). Reported; renaming it fixes it.
                self.problem(entry.path, "bad_file_name", "file name is not valid UTF-8; "
                             "rename the file to use it")
            elif kind == "file":
                try:
                    nbytes += entry.stat().st_size
                except OSError as exc:
                    self.problem(entry.path, "unreadable", f"{exc.strerror or exc}")
                    continue
                out.append(prefix + entry.name)
            elif kind == "dir":
                if entry.name.lower().endswith(".dcm"):
                    self.problem(entry.path, "not_a_file", "a folder named like a DICOM file"
                                 + ("; its contents are listed" if recursive else ""))
                if recursive:
                    more, nb = self.files(Path(entry.path), True)
                    out += more
                    nbytes += nb
        return out, nbytes

    def take(self) -> tuple[Problem, ...]:
        taken, self.problems = tuple(self.problems), []
        return taken


def _utf8(name: str) -> bool:
    return printable(name) == name


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:       # a loop or unreadable entry: not a layout level
        return False


def _study_patient(lister: _Lister, pid: str, split: str, folder: Path) -> PatientFolder:
    """A patient in a ``sax_`` layout: its ``study/sax_*`` files, or (no ``sax_`` folder)
    every file below ``study`` with series chosen from the headers."""
    study = folder / "study"
    entries = lister.entries(study) if _is_dir(study) else []
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
    lister._seen.difference_update(_keys(others))      # listed again, recursively
    for entry in others:
        more, nb = lister.files(Path(entry.path), recursive=True)
        files += more
        nbytes += nb
    return PatientFolder(pid, split, tuple(files), nbytes, bool(others and files), lister.take())


def _keys(entries: list[os.DirEntry]) -> set[tuple[int, int]]:
    keys = set()
    for e in entries:
        try:
            st = e.stat()
            keys.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    return keys


def _patient_dirs(lister: _Lister, folder: Path) -> list[tuple[str, Path, tuple[Problem, ...]]]:
    """(name, path, problems) of the patient folders in ``folder``, in pid order."""
    found = []
    for entry in sorted(lister.entries(folder), key=lambda e: _pid_key(e.name)):
        if entry.name in SIDE_ENTRIES:
            continue
        kind = lister.kind(entry)
        problems = lister.take()
        if kind == "dir" or problems:
            found.append((safe_name(entry.name), Path(entry.path), problems))
    return found


def _sax_layout(lister: _Lister, src: Path) -> Cohort | None:
    """The project, kaggle, single and flat layouts; None when ``src`` is none of them."""
    splits = [s for s in SPLITS if _is_dir(src / s)]
    lister.mark(src)
    if splits:
        kaggle = any(_is_dir(src / s / s) for s in splits)
        patients = []
        for split in splits:
            base = src / split / split if kaggle and _is_dir(src / split / split) else src / split
            lister.mark(src / split)
            lister.mark(base)
            for name, folder, problems in _patient_dirs(lister, base):
                p = _study_patient(lister, name, split, folder)
                patients.append(_with_problems(p, problems))
        return Cohort("kaggle" if kaggle else "project", patients)
    if _is_dir(src / "study"):
        return Cohort("single", [_study_patient(lister, safe_name(src.resolve().name), UNSPLIT, src)])
    if src.resolve().name == "study" and any(e.name.lower().startswith("sax")
                                             for e in lister.entries(src)):
        # pointed at the study folder itself: paths stay relative to the folder given
        patient = src.resolve().parent
        lister.root = patient
        p = _study_patient(lister, safe_name(patient.name), UNSPLIT, patient)
        return Cohort("single", [PatientFolder(p.pid, p.split, tuple(
            f.removeprefix("study/") for f in p.files), p.nbytes, p.select_series, p.problems)])
    dirs = _patient_dirs(lister, src)
    with_study = [(n, f, p) for n, f, p in dirs if _is_dir(f / "study")]
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


_DICOMDIR_UID = "1.2.840.10008.1.3.10"


def patient_id_of(path: Path) -> str | None:
    """The PatientID header of a DICOM image file, made a safe name (:func:`safe_name`: a
    PatientID of ``..`` or 5,000 characters must not become a path); "" for a DICOM file
    without one; None for a DICOMDIR, a non-DICOM or an unreadable file."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PatientID"])
    except Exception:  # junk or a broken file: ingest will say what is wrong with it
        return None
    if ds.file_meta.get("MediaStorageSOPClassUID", "") == _DICOMDIR_UID:
        return None
    pid = str(ds.get("PatientID", "") or "").strip()
    return safe_name(pid) if pid else ""


def _export_layout(lister: _Lister, src: Path) -> Cohort | None:
    """Every file below ``src``, grouped into patients by PatientID (images without one: the
    folder's name); None if no DICOM image.

    Files that belong to no patient (a DICOMDIR, junk) join the patient that shares the
    deepest folder with them, so they are reported with that patient rather than lost.
    """
    files: list[str] = []
    sizes: dict[str, int] = {}
    lister.mark(src)
    for entry in lister.entries(src):
        if entry.name in SIDE_ENTRIES:
            continue
        kind = lister.kind(entry)
        if kind == "dir":
            more, _nb = lister.files(Path(entry.path), recursive=True)
            files += more
        elif kind == "file" and not _utf8(entry.name):
            lister.problem(entry.path, "bad_file_name", "file name is not valid UTF-8; "
                           "rename the file to use it")
        elif kind == "file":
            files.append(entry.name)
    problems = lister.take()
    by_pid: dict[str, list[str]] = defaultdict(list)
    orphans: list[str] = []
    for rel in files:
        try:
            sizes[rel] = (src / rel).stat().st_size
        except OSError:
            sizes[rel] = 0
        pid = patient_id_of(src / rel)
        if pid is None:
            orphans.append(rel)
        else:       # no PatientID at all: the export folder's name stands in
            by_pid[pid or safe_name(src.resolve().name)].append(rel)
    if not by_pid:
        return None
    homes = {pid: Counter(str(Path(f).parent) for f in fs) for pid, fs in by_pid.items()}

    def home_of(rel: str) -> str:
        parts = Path(rel).parent.parts

        def depth(pid: str) -> int:
            best = 0
            for folder in homes[pid]:
                common = 0
                for a, b in zip(Path(folder).parts, parts):
                    if a != b:
                        break
                    common += 1
                best = max(best, common)
            return best
        return max(sorted(by_pid, key=_pid_key), key=depth)

    for rel in orphans:
        by_pid[home_of(rel)].append(rel)
    extra: dict[str, list[Problem]] = defaultdict(list)
    for prob in problems:
        extra[home_of(prob.file)].append(prob)
    patients = [PatientFolder(pid, UNSPLIT, tuple(sorted(fs)), sum(sizes.get(f, 0) for f in fs),
                              True, tuple(extra.get(pid, ())))
                for pid, fs in sorted(by_pid.items(), key=lambda kv: _pid_key(kv[0]))]
    return Cohort("export", patients)


def _top_two_levels(src: Path) -> str:
    """A short listing of ``src`` for the no-layout error."""
    def names(folder: Path) -> list[str]:
        try:
            return sorted(p.name + ("/" if _is_dir(p) else "") for p in folder.iterdir()
                          if not p.name.startswith("."))
        except OSError:
            return []

    shown = []
    for name in names(src)[:8]:
        below = names(src / name)[:5] if name.endswith("/") else []
        shown.append(name + (f" [{', '.join(below)}]" if below else ""))
    return "; ".join(shown) or "nothing"


EXPECTED = ("{train,validate,test}/<pid>/study/sax_*/*.dcm, "
            "{train,validate,test}/{train,validate,test}/<pid>/study/sax_*/ (Kaggle unzip), "
            "<pid>/study/sax_*/, study/sax_*/ (one patient), or DICOM files of a scanner export")


def find_cohort(src: Path) -> Cohort:
    """Discover the layout and the patients of ``src`` (see the module docstring).

    Raises :class:`InputError` naming ``src`` when it is missing, not a folder, matches no
    layout (the message shows the expected shapes and the top two levels found), or holds no
    candidate image file at all. Patients without images are kept (ingest logs them).
    """
    src = Path(src)
    if not src.exists():
        raise InputError(f"{src}: input folder does not exist")
    if not src.is_dir():
        raise InputError(f"{src}: input path is not a directory")
    if not os.access(src, os.R_OK | os.X_OK):
        raise InputError(f"{src}: cannot read input: permission denied")
    lister = _Lister(src)
    cohort = _sax_layout(lister, src) or _export_layout(_Lister(src), src)
    if cohort is None or not cohort.patients:
        raise InputError(f"{src}: no patient folders or DICOM files found; expected {EXPECTED}; "
                         f"found: {_top_two_levels(src)}")
    if not any(p.files for p in cohort.patients):
        raise InputError(f"{src}: no short-axis series found: none of {len(cohort.patients)} "
                         f"patient folders ({cohort.layout} layout) has a non-empty study/sax_* "
                         f"or series folder")
    per_split = Counter(p.split for p in cohort.patients)
    log.info("%s: %s layout, %d patients (%s)", src, cohort.layout, len(cohort.patients),
             ", ".join(f"{s} {n}" for s, n in per_split.items()))
    return cohort


def discover_cohort(src: Path) -> list[PatientFolder]:
    """The patients of :func:`find_cohort` (kept for callers that need no layout name)."""
    return find_cohort(src).patients


def masks_path(src: Path, pid: str) -> Path:
    """Where the label masks of patient ``pid`` live (may not exist)."""
    return Path(src) / "masks" / f"{pid}.npz"
