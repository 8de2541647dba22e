"""Frames of one slice that do not share the slice's image geometry, found before curation.

Curation treats a slice (one series at one position) as one image grid: its first frame's matrix,
pixel spacing and orientation stand for all its frames. A frame whose header says otherwise (a
re-exported image with another matrix, a header edited by hand) would be copied onto that grid
and fail, or be placed wrongly. Such a frame is dropped with a ``frame_geometry`` issue row; the
slice keeps the geometry most of its frames share (ties: the first frame's).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from hpc_seg.cardiac.curate.steps import Issue, SliceUnit
from hpc_seg.cardiac.dicom.frame import DicomFrame


def _geometry(f: DicomFrame) -> tuple:
    shape = f.pixels.shape if f.pixels is not None else (f.rows, f.cols)
    return ((f.rows, f.cols), tuple(shape), tuple(np.round(f.pixel_spacing, 4).tolist()),
            tuple(np.round(f.iop, 3).tolist()))


def drop_odd_frames(subject: str, units: list[SliceUnit]) -> list[Issue]:
    """Remove, in place, the frames whose geometry differs from their slice's; one issue each."""
    issues: list[Issue] = []
    for unit in units:
        kinds = [_geometry(f) for f in unit.frames]
        if len(set(kinds)) == 1:
            continue
        counts = Counter(kinds)
        best = max(counts.values())
        keep = next(k for k in kinds if counts[k] == best)
        kept = []
        for f, k in zip(unit.frames, kinds):
            if k == keep:
                kept.append(f)
                continue
            issues.append(Issue(subject, "frame_geometry", "frame dropped", f.file,
                                f"series {unit.series_number}: {k[0][0]} x {k[0][1]} pixels "
                                f"(data {k[1]}), spacing {list(k[2])}, orientation {list(k[3])}; "
                                f"the slice's other frames are {keep[0][0]} x {keep[0][1]}, "
                                f"spacing {list(keep[2])}, orientation {list(keep[3])}"))
        unit.frames = kept
    return issues
