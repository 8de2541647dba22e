"""The ``export`` layout: a scanner or PACS export, DICOM files anywhere below the folder (often
``PT*/ST*/SE*/IM*`` with a DICOMDIR) and no ``sax_`` names. Files are grouped into patients by
their PatientID header, which is also the pid (the folder names of an export are not ids)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from hpc_seg.storage.names import safe_name
from hpc_seg.cardiac.ingest.listing import (SIDE_ENTRIES, UNSPLIT, Cohort, FolderLister,
                                            PatientFolder, Problem, pid_key)

def patient_id_of(path: Path) -> str | None:
    """The PatientID header of a DICOM image file, made a safe name (:func:`safe_name`: a
    PatientID of ``..`` or 5,000 characters must not become a path); "" for a DICOM file
    without one; None for a DICOMDIR, a non-DICOM or an unreadable file."""
    import pydicom
    from pydicom.uid import MediaStorageDirectoryStorage

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PatientID"])
    except Exception:  # junk or a broken file: ingest will say what is wrong with it
        return None
    if ds.file_meta.get("MediaStorageSOPClassUID", "") == MediaStorageDirectoryStorage:
        return None
    pid = str(ds.get("PatientID", "") or "").strip()
    return safe_name(pid) if pid else ""


def export_layout(lister: FolderLister, src: Path) -> Cohort | None:
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
        elif kind == "file" and lister.usable_name(entry, entry.name):
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
        return max(sorted(by_pid, key=pid_key), key=depth)

    for rel in orphans:
        by_pid[home_of(rel)].append(rel)
    extra: dict[str, list[Problem]] = defaultdict(list)
    for prob in problems:
        extra[home_of(prob.file)].append(prob)
    patients = [PatientFolder(pid, UNSPLIT, tuple(sorted(fs)), sum(sizes.get(f, 0) for f in fs),
                              True, tuple(extra.get(pid, ())))
                for pid, fs in sorted(by_pid.items(), key=lambda kv: pid_key(kv[0]))]
    return Cohort("export", patients)
