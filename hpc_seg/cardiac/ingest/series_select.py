"""Pick the cine short-axis stack of a patient from DICOM headers alone.

Scanner and PACS exports do not name folders ``sax_*``: series sit in folders named by number
or description, or all in one folder, next to perfusion, flow, mapping, LGE, real-time and
non-cardiac series. This module chooses, from the decoded frames of every series of a patient,
the ones that form the short-axis cine stack, and returns an ``issues`` row for every series it
leaves out, with the reason.

The rule:

1. Group frames by StudyInstanceUID and SeriesInstanceUID, then by slice position along each
   series' normal. A series whose frames have several orientations is a localiser:
   ``localiser``.
2. Each series gets a kind from its headers (:mod:`hpc_seg.cardiac.ingest.series_kind`); every
   kind but ``cine`` is left out under its own name (``flow``, ``mapping``, ``lge``,
   ``perfusion``, ``realtime``, ``dynamic``, ``not_cine``).
3. Cine series of a study are grouped by orientation (normals within 30 degrees: a short-axis
   stack's slices are near-parallel, long-axis views are 50-90 degrees from it and from each
   other), so a stack written as one series per slice is one group. A group with fewer than
   :data:`MIN_SAX_POSITIONS` slice positions is a long-axis cine (2CH, 4CH, LVOT): ``long_axis``.
4. Of the groups left, the one with the most positions (then images) is the stack; others
   are ``other_stack``. Slightly tilted slices stay in the group: curation step 3 drops them
   with its own, stricter rule, and logs it.

A user's :class:`SeriesChoice` comes first: excluded series are ``excluded``; with ``take``,
only the series named are used (``not_chosen`` for the rest), and step 2 is skipped for them:
the user said they are the cine.
"""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from hpc_seg.cardiac.curate.steps import DUPLICATE_MM, Issue
from hpc_seg.cardiac.dicom.frame import DicomFrame
from hpc_seg.cardiac.ingest.series_kind import classify

#: normals closer than this (cos 30 deg) belong to one orientation group
SAME_VIEW_COS = float(np.cos(np.radians(30.0)))
#: frames of one series with normals further apart than this are several orientations
PARALLEL_COS = 0.995
#: a cine group with fewer slice positions is a long-axis view
MIN_SAX_POSITIONS = 3
_UID = re.compile(r"\d+(\.\d+)+")


@dataclass(frozen=True, slots=True)
class SeriesChoice:
    """Series a user takes or leaves, each by number (``12``), SeriesInstanceUID
    (``1.2.840...``) or SeriesDescription pattern (``'*sax*'``, shell-style, any case)."""

    take: tuple[str, ...] = ()
    leave: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.take or self.leave)

    @staticmethod
    def matches(pattern: str, number: int, uid: str, description: str) -> bool:
        """Whether one selector names this series."""
        pattern = pattern.strip()
        if pattern.isdigit():
            return int(pattern) == number
        if _UID.fullmatch(pattern):
            return pattern == uid
        return fnmatch.fnmatchcase(description.lower(), pattern.lower())

    def verdict(self, number: int, uid: str, description: str) -> tuple[str, str] | None:
        """(problem, why) when the choice leaves this series out; None = it may be used."""
        hit = [p for p in self.leave if self.matches(p, number, uid, description)]
        if hit:
            return "excluded", f"excluded by the user (--exclude-series {hit[0]!r})"
        if self.take and not any(self.matches(p, number, uid, description) for p in self.take):
            return "not_chosen", ("not among the series the user chose (--series "
                                  + " ".join(repr(p) for p in self.take) + ")")
        return None

    def settings(self) -> dict[str, list[str]]:
        """The choice as it enters a patient's fingerprint."""
        return {"series": list(self.take), "exclude_series": list(self.leave)}


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
    at_positions: list[list[int]]       # indices into ``frames`` at each position
    max_phases: int                     # most images at one position

    @property
    def first_file(self) -> str:
        return min(f.file for f in self.frames)

    def describe(self) -> str:
        desc = f" {self.description!r}" if self.description else ""
        return (f"series {self.number}{desc}: {len(self.frames)} images, "
                f"{len(self.positions)} position(s), up to {self.max_phases} per position")


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


def summarise(key: tuple[str, str], frames: list[DicomFrame]) -> SeriesInfo:
    """Orientation count, slice positions and images per position of one series."""
    normals = [_normal(f) for f in frames]
    reps: list[np.ndarray] = []
    for n in normals:
        if not any(abs(float(n @ r)) >= PARALLEL_COS for r in reps):
            reps.append(n)
    normal = reps[0]
    pos = [float(f.ipp @ normal) for f in frames]
    groups = _clusters(pos, DUPLICATE_MM)
    centres = [float(np.mean([pos[i] for i in g])) for g in groups]
    first = frames[0]
    return SeriesInfo(key, first.series_number, first.series_description, frames, normal,
                      len(reps), centres, groups, max(len(g) for g in groups))


def select_sax(pid: str, frames: list[DicomFrame], choice: SeriesChoice = SeriesChoice(),
               ) -> tuple[list[DicomFrame], list[Issue]]:
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
        left_out = choice.verdict(info.number, info.key[1], info.description)
        if left_out is not None:
            skip(info, *left_out)
        elif info.orientations > 1:
            skip(info, "localiser", f"{info.orientations} orientations in one series")
        elif choice.take:
            cines.append(info)          # the user's word: no kind check
        else:
            verdict = classify(info.frames, info.at_positions)
            if verdict.kind == "cine":
                cines.append(info)
            else:
                skip(info, verdict.kind, verdict.why)
    if choice.take and not any(choice.verdict(i.number, i.key[1], i.description) is None
                               for i in infos):
        issues.append(Issue(pid, "series_not_found", "patient skipped", "",
                            "no series matches --series " + " ".join(repr(p) for p in choice.take)))
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


def filter_series(pid: str, frames: list[DicomFrame], choice: SeriesChoice,
                  ) -> tuple[list[DicomFrame], list[Issue]]:
    """A user's choice applied to a patient whose series are not chosen from headers (the
    ``sax_*`` folder layouts): the frames of the series it keeps, an issue per series left."""
    kept, issues, seen = [], [], set()
    for f in frames:
        left_out = choice.verdict(f.series_number, f.series_uid, f.series_description)
        if left_out is None:
            kept.append(f)
        elif (f.study_uid, f.series_uid, f.series_number) not in seen:
            seen.add((f.study_uid, f.series_uid, f.series_number))
            issues.append(Issue(pid, left_out[0], "series skipped", f.file,
                                f"series {f.series_number} {f.series_description!r}: {left_out[1]}"))
    return kept, issues
