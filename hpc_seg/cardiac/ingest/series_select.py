"""Pick the cine short-axis stack of a patient from DICOM headers alone.

Scanner and PACS exports do not name folders ``sax_*``: series sit in folders named by number
or description, or all in one folder. This module chooses, from the decoded frames of every
series of a patient, the ones that form the short-axis cine stack, and returns an ``issues``
row for every series it leaves out, with the reason.

The rule:

1. Group frames by StudyInstanceUID and SeriesInstanceUID, then by slice position along each
   series' normal.
2. A series with one image per position is not a cine (localisers, scouts): ``not_cine``.
   A series whose frames have several orientations is a localiser too: ``localiser``.
3. Cine series of a study are grouped by orientation (normals within 30 degrees: a short-axis
   stack's slices are near-parallel, long-axis views are 50-90 degrees from it and from each
   other). A group with fewer than :data:`MIN_SAX_POSITIONS` slice positions is a long-axis
   cine (2CH, 4CH, LVOT: one position each): ``long_axis``.
4. Of the groups left, the one with the most positions (then images) is the stack; others
   are ``other_stack``. Slightly tilted slices stay in the group: curation step 3 drops them
   with its own, stricter rule, and logs it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from hpc_seg.cardiac.curate.steps import DUPLICATE_MM, Issue
from hpc_seg.cardiac.dicom_read import DicomFrame

#: normals closer than this (cos 30 deg) belong to one orientation group
SAME_VIEW_COS = float(np.cos(np.radians(30.0)))
#: frames of one series with normals further apart than this are several orientations
PARALLEL_COS = 0.995
#: a cine group with fewer slice positions is a long-axis view
MIN_SAX_POSITIONS = 3


@dataclass(slots=True)
class SeriesInfo:
    """What the rule needs to know about one series."""

    key: tuple[str, str]                # (study uid, series uid)
    number: int
    description: str
    frames: list[DicomFrame]
    normal: np.ndarray
    orientations: int
    positions: list[float]              # cluster centres along ``normal``
    max_phases: int                     # most images at one position

    @property
    def first_file(self) -> str:
        return min(f.file for f in self.frames)

    def describe(self) -> str:
        desc = f" {self.description!r}" if self.description else ""
        return (f"series {self.number}{desc}: {len(self.frames)} images, "
                f"{len(self.positions)} position(s), up to {self.max_phases} phase(s)")


def _normal(f: DicomFrame) -> np.ndarray:
    n = np.cross(f.iop[:3], f.iop[3:])
    return n / (np.linalg.norm(n) or 1.0)


def _clusters(values: list[float], tol: float) -> list[list[int]]:
    """Indices of ``values`` grouped into runs whose neighbours are closer than ``tol``."""
    order = np.argsort(values, kind="stable")
    groups: list[list[int]] = []
    for i in order:
        if groups and values[i] - values[groups[-1][-1]] < tol:
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    return groups


def _phases(at_position: list[DicomFrame]) -> int:
    """Cardiac phases among the images at one position: distinct trigger times, or (where
    the scanner wrote none) the image count when CardiacNumberOfImages says it is a cine."""
    times = {f.trigger_time_ms for f in at_position}
    if len(times) > 1:
        return len(times)
    return len(at_position) if max(f.cardiac_images for f in at_position) > 1 else 1


def summarise(key: tuple[str, str], frames: list[DicomFrame]) -> SeriesInfo:
    """Orientation count, slice positions and phases per position of one series."""
    normals = [_normal(f) for f in frames]
    reps: list[np.ndarray] = []
    for n in normals:
        if not any(abs(float(n @ r)) >= PARALLEL_COS for r in reps):
            reps.append(n)
    normal = reps[0]
    pos = [float(f.ipp @ normal) for f in frames]
    groups = _clusters(pos, DUPLICATE_MM)
    centres = [float(np.mean([pos[i] for i in g])) for g in groups]
    phases = max(_phases([frames[i] for i in g]) for g in groups)
    first = frames[0]
    return SeriesInfo(key, first.series_number, first.series_description, frames, normal,
                      len(reps), centres, phases)


def select_sax(pid: str, frames: list[DicomFrame]) -> tuple[list[DicomFrame], list[Issue]]:
    """The frames of the patient's cine short-axis stack, and an issue per series left out."""
    by_series: dict[tuple[str, str], list[DicomFrame]] = defaultdict(list)
    for f in frames:
        by_series[(f.study_uid, f.series_uid or f"series-{f.series_number}")].append(f)
    infos = [summarise(k, fs) for k, fs in sorted(by_series.items(),
                                                  key=lambda kv: (kv[1][0].series_number, kv[0]))]
    issues: list[Issue] = []

    def skip(info: SeriesInfo, problem: str, why: str) -> None:
        issues.append(Issue(pid, problem, "series skipped", info.first_file,
                            f"{info.describe()}: {why}"))

    cines = []
    for info in infos:
        if info.orientations > 1:
            skip(info, "localiser", f"{info.orientations} orientations in one series")
        elif info.max_phases < 2:
            skip(info, "not_cine", "one image per slice position")
        else:
            cines.append(info)
    # Orientation groups per study (greedy: a series joins the first group it is near).
    groups: list[list[SeriesInfo]] = []
    for info in cines:
        home = next((g for g in groups if g[0].key[0] == info.key[0]
                     and abs(float(info.normal @ g[0].normal)) >= SAME_VIEW_COS), None)
        if home is None:
            groups.append([info])
        else:
            home.append(info)

    def positions(group: list[SeriesInfo]) -> int:
        ref = group[0].normal
        pos = [float(f.ipp @ ref) for info in group for f in info.frames]
        return len(_clusters(pos, DUPLICATE_MM))

    stacks = []
    for group in groups:
        n = positions(group)
        if n < MIN_SAX_POSITIONS:
            for info in group:
                skip(info, "long_axis", f"a cine view with {n} slice position(s) "
                     f"(a short-axis stack has >= {MIN_SAX_POSITIONS})")
        else:
            stacks.append((n, sum(len(i.frames) for i in group), group))
    if not stacks:
        return [], issues
    stacks.sort(key=lambda s: s[:2], reverse=True)
    chosen = stacks[0][2]
    for n, _size, group in stacks[1:]:
        for info in group:
            skip(info, "other_stack", f"part of another {n}-position stack; the short-axis "
                 f"stack is the one with the most positions ({stacks[0][0]})")
    keep = {id(f) for info in chosen for f in info.frames}
    return [f for f in frames if id(f) in keep], issues
