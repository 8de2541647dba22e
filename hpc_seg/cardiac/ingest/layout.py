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

import logging
import os
from collections import Counter
from pathlib import Path

from hpc_seg.cardiac.ingest.export_layout import export_layout
from hpc_seg.cardiac.ingest.listing import Cohort, FolderLister, PatientFolder, is_dir
from hpc_seg.cardiac.ingest.sax_layouts import sax_layout
from hpc_seg.errors import InputError

log = logging.getLogger(__name__)

__all__ = ["Cohort", "PatientFolder", "discover_cohort", "find_cohort", "masks_path"]


def _top_two_levels(src: Path) -> str:
    """A short listing of ``src`` for the no-layout error."""
    def names(folder: Path) -> list[str]:
        try:
            return sorted(p.name + ("/" if is_dir(p) else "") for p in folder.iterdir()
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
    lister = FolderLister(src)
    cohort = sax_layout(lister, src) or export_layout(FolderLister(src), src)
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
