"""What a finished patient was made from: a fingerprint of its inputs and the curation.

A re-run of ingest compares each patient's fingerprint with the one recorded in the
``patients`` table and re-does the patients whose inputs changed (a file added, removed,
rewritten or touched, another mask file, another truth row) or whose curation changed
(:data:`CURATION_VERSION`). Names, sizes and modification times are hashed, not contents: a
stat per file costs microseconds where reading a cohort costs minutes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from hpc_seg.cardiac.ingest.layout import PatientFolder, masks_path

#: Bump when curation changes what a patient's rows hold (2: frames aligned by trigger time;
#: 3: an export's series told apart by kind, perfusion/flow/mapping/LGE/real-time/dynamic;
#: 4: duplicate images dropped before frames are lined up, frames of another geometry dropped).
CURATION_VERSION = 4


def _stat_line(path: Path, rel: str) -> str:
    try:
        st = os.stat(path)
    except OSError as exc:      # gone or unreadable: that is part of the state too
        return f"{rel}\0missing:{exc.errno}\n"
    return f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n"


def patient_fingerprint(src: Path, patient: PatientFolder,
                        truth: tuple[float, float] | None,
                        settings: dict[str, object] | None = None) -> str:
    """A short hash of the patient's files (names, sizes, mtimes), its mask file, its truth
    volumes, the curation version and the curation settings that change the stack (``settings``,
    e.g. the slice-gap rule and the series the user took or left)."""
    h = hashlib.sha256(json.dumps({"curation": CURATION_VERSION, "split": patient.split,
                                   "truth": truth, "settings": settings or {}},
                                  sort_keys=True).encode())
    for rel in patient.files:
        h.update(_stat_line(src / rel, rel).encode("utf-8", "surrogateescape"))
    masks = masks_path(src, patient.pid)
    if masks.exists():
        h.update(_stat_line(masks, "masks").encode())
    return h.hexdigest()[:16]
