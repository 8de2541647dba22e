"""What cohort discovery finds (:class:`PatientFolder`, :class:`Cohort`, :class:`Problem`) and the
guarded directory listing it uses: a symlink loop, a broken link or an unreadable folder becomes one
file's :class:`Problem` of the patient it was found in, and the listing goes on.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass
from pathlib import Path

from hpc_seg.storage.names import printable

SPLITS = ("train", "validate", "test")
UNSPLIT = "unsplit"
#: cohort-level side folders and files, never patients' images
SIDE_ENTRIES = frozenset({"masks", "truth_masks", "truth.csv", "manifest.json"})
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


def pid_key(pid: str) -> tuple[int, int | str]:
    """Sort key of patient ids: numbers in numeric order, then the others by name."""
    return (0, int(pid)) if pid.isdigit() else (1, pid)


class FolderLister:
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
            if kind == "file" and not self.usable_name(entry, prefix + entry.name):
                pass
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

    def usable_name(self, entry: os.DirEntry, rel: str) -> bool:
        """Whether a file's name can be used; else it becomes a ``bad_file_name`` problem.

        Tables, logs and DICOM SEG references hold names as UTF-8 text: a name that is not UTF-8
        would fail there (or be changed). Reported; renaming the file fixes it."""
        if printable(rel) == rel:
            return True
        self.problem(entry.path, "bad_file_name", "file name is not valid UTF-8; rename the file "
                     "to use it")
        return False

    def forget(self, entries: list[os.DirEntry]) -> None:
        """Let these folders be listed once more (a second, recursive pass over them)."""
        self._seen.difference_update(entry_keys(entries))

    def take(self) -> tuple[Problem, ...]:
        taken, self.problems = tuple(self.problems), []
        return taken


def is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:       # a loop or unreadable entry: not a layout level
        return False


def entry_keys(entries: list[os.DirEntry]) -> set[tuple[int, int]]:
    keys = set()
    for e in entries:
        try:
            st = e.stat()
            keys.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    return keys
