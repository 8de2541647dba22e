"""Curation steps 1-6 of the published Kaggle DSB2 cleaning, as small functions on headers.

Everything here works on :class:`SliceUnit` lists (one series at
one slice position, frames sorted by TriggerTime) and touches no pixels; the pixel work of
steps 3, 4, 6 and 7 lives in :mod:`hpc_seg.cardiac.curate.stack`. Every decision that changes or
drops data returns an :class:`Issue` for the ``issues`` table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from hpc_seg.cardiac.curate.frames import target_frame_count
from hpc_seg.cardiac.curate.gaps import (GAP_FILL_MAX, GAP_FILL_MIN, GAP_TWICE_TOL_MM, check_gap_rule,
                                         gap_fill_count)
from hpc_seg.cardiac.curate.modal import mode_largest
from hpc_seg.cardiac.curate.geometry import PlaneGrid, downscaled_grid, grid_from_dicom
from hpc_seg.cardiac.dicom.frame import DicomFrame

DUPLICATE_MM = 1.0          # step 5: slices closer than this are the same location
INTERSPERSED_MAX = 0.75     # a gap below this many spacings means an interspersed slice
REPEAT_COVERAGE = 0.75      # step 1: each half of a complete repeat covers this share of positions
PARALLEL_COS = 0.995        # step 3: normals closer than ~5.7 degrees count as parallel


@dataclass(slots=True)
class Issue:
    """One row of the ``issues`` table."""

    subject_id: str
    problem: str
    resolution: str
    file: str = ""
    detail: str = ""


@dataclass(slots=True)
class SliceUnit:
    """One series at one slice position: its frames sorted by TriggerTime."""

    series_uid: str
    series_number: int
    series_time_s: float
    frames: list[DicomFrame]
    position: float = 0.0
    """dot(IPP, stack normal), set by :func:`set_positions`"""

    @property
    def first(self) -> DicomFrame:
        return self.frames[0]

    @property
    def grid(self) -> PlaneGrid:
        f = self.first
        return grid_from_dicom(f.ipp, f.iop, f.pixel_spacing, f.rows, f.cols)

    @property
    def orientation(self) -> tuple[float, ...]:
        return tuple(np.round(self.first.iop, 3).tolist())

    @property
    def normal(self) -> np.ndarray:
        n = np.cross(self.first.iop[:3], self.first.iop[3:])
        return n / np.linalg.norm(n)


@dataclass(slots=True)
class Target:
    """Step 2: the geometry every slice of a stack is brought to."""

    grid: PlaneGrid            # reference in-plane grid (after any downscale)
    modal: PlaneGrid           # the same before the downscale (what a regular slice looks like)
    normal: np.ndarray
    n_frames: int
    scale_factor: float
    frame_times_ms: list[float] = field(default_factory=list)


def group_slice_units(frames: list[DicomFrame]) -> list[SliceUnit]:
    """Group frames by series and, within a series, by slice position (0.5 mm clusters)."""
    by_series: dict[str, list[DicomFrame]] = defaultdict(list)
    for f in frames:
        by_series[f.series_uid or f"series-{f.series_number}"].append(f)
    units = []
    for uid, fs in by_series.items():
        n = np.cross(fs[0].iop[:3], fs[0].iop[3:])
        pos = np.array([float(f.ipp @ n) for f in fs])
        order = np.argsort(pos, kind="stable")
        cluster: list[DicomFrame] = []
        last = None
        for idx in order:
            if last is not None and pos[idx] - last > 0.5:
                units.append(_unit(uid, cluster))
                cluster = []
            cluster.append(fs[idx])
            last = pos[idx]
        units.append(_unit(uid, cluster))
    return units


def _unit(uid: str, frames: list[DicomFrame]) -> SliceUnit:
    frames = sorted(frames, key=lambda f: (f.trigger_time_ms, f.instance_number, f.file))
    return SliceUnit(uid, frames[0].series_number, frames[0].series_time_s, frames)


def modal_normal(units: list[SliceUnit]) -> np.ndarray:
    """Normal of the modal orientation (ties to the largest orientation tuple)."""
    orient = mode_largest(u.orientation for u in units)
    unit = next(u for u in units if u.orientation == orient)
    return unit.normal


def set_positions(units: list[SliceUnit], normal: np.ndarray) -> None:
    """Set each unit's position = dot(IPP of its first frame, ``normal``)."""
    for u in units:
        u.position = float(u.first.ipp @ normal)


def _cluster_positions(positions: Iterable[float]) -> list[float]:
    centres: list[float] = []
    for p in sorted(positions):
        if not centres or p - centres[-1] >= DUPLICATE_MM:
            centres.append(p)
    return centres


def _covered(units: list[SliceUnit], centres: list[float]) -> int:
    return sum(any(abs(u.position - c) < DUPLICATE_MM for u in units) for c in centres)


def split_complete_repeats(pid: str, units: list[SliceUnit]) -> tuple[dict[str, list[SliceUnit]], list[Issue]]:
    """Step 1: detect a complete second acquisition of the stack from the headers.

    Series are ordered by (SeriesTime, SeriesNumber). A complete repeat is a split point in that
    order where the earlier and the later group each cover at least 75 % of the slice positions
    (and at least 3 of them). Among such splits the best covers the most positions with the
    fewest duplicates inside each group (each group should be one series per position); ties
    go to the larger time gap. The result maps subject ids (``pid``, or ``pid_a``/``pid_b``)
    to their units.
    """
    series = sorted({(u.series_time_s, u.series_number, u.series_uid) for u in units})
    centres = _cluster_positions(u.position for u in units)
    need = max(3, int(np.ceil(REPEAT_COVERAGE * len(centres))))
    best: tuple[int, float, int] | None = None
    for m in range(1, len(series)):
        early = {s[2] for s in series[:m]}
        a = [u for u in units if u.series_uid in early]
        b = [u for u in units if u.series_uid not in early]
        cov_a, cov_b = _covered(a, centres), _covered(b, centres)
        if cov_a >= need and cov_b >= need:
            score = 2 * (cov_a + cov_b) - len(a) - len(b)   # coverage minus duplicates
            gap = series[m][0] - series[m - 1][0]
            if best is None or (score, gap) > best[:2]:
                best = (score, gap, m)
    if best is None:
        return {pid: units}, []
    early = {s[2] for s in series[:best[2]]}
    a = [u for u in units if u.series_uid in early]
    b = [u for u in units if u.series_uid not in early]
    detail = (f"series {sorted({u.series_number for u in a})} then "
              f"{sorted({u.series_number for u in b})}; {len(centres)} positions")
    return {f"{pid}_a": a, f"{pid}_b": b}, [
        Issue(pid, "complete_repeat", f"split into {pid}_a (earlier) and {pid}_b (later)", "", detail)]


def choose_target(units: list[SliceUnit], normal: np.ndarray, max_side: int = 256) -> Target:
    """Step 2: modal PixelSpacing, matrix and orientation (ties to the largest); the phase count
    of :func:`~hpc_seg.cardiac.curate.frames.target_frame_count`."""
    spacing = mode_largest(tuple(np.round(u.first.pixel_spacing, 4).tolist()) for u in units)
    matrix = mode_largest((u.first.rows, u.first.cols) for u in units)
    n_frames = target_frame_count(units)
    orient = mode_largest(u.orientation for u in units)

    def fits(u: SliceUnit) -> bool:
        return (u.orientation == orient and (u.first.rows, u.first.cols) == matrix
                and tuple(np.round(u.first.pixel_spacing, 4).tolist()) == spacing)

    ordered = sorted(units, key=lambda u: u.position)
    ref = next((u for u in ordered if fits(u)), None)
    if ref is not None:
        grid = ref.grid
    else:
        # No slice has all modal values at once: build the modal grid about the first
        # modal-orientation slice's field-of-view centre.
        base = next(u for u in ordered if u.orientation == orient).grid
        centre = base.origin + (base.cols - 1) / 2 * base.u + (base.rows - 1) / 2 * base.v
        u_dir, v_dir = base.u / np.linalg.norm(base.u), base.v / np.linalg.norm(base.v)
        u_vec, v_vec = u_dir * spacing[1], v_dir * spacing[0]
        origin = centre - (matrix[1] - 1) / 2 * u_vec - (matrix[0] - 1) / 2 * v_vec
        grid = PlaneGrid(origin, u_vec, v_vec, matrix[0], matrix[1])
    small, scale = downscaled_grid(grid, max_side)
    sign = 1.0 if float(grid.normal @ normal) >= 0 else -1.0
    return Target(grid=small, modal=grid, normal=normal * sign, n_frames=n_frames,
                  scale_factor=scale)


def drop_other_normals(subject: str, units: list[SliceUnit], target: Target,
                       ) -> tuple[list[SliceUnit], list[Issue]]:
    """Step 3 (headers): slices whose normal is not parallel to the stack's are dropped."""
    kept, issues = [], []
    for u in units:
        if abs(float(u.normal @ target.normal)) >= PARALLEL_COS:
            kept.append(u)
        else:
            angle = np.degrees(np.arccos(min(1.0, abs(float(u.normal @ target.normal)))))
            issues.append(Issue(subject, "other_normal", "slice dropped", u.first.file,
                                f"series {u.series_number}: normal {angle:.1f} deg off the stack's"))
    return kept, issues


def dedupe_positions(subject: str, units: list[SliceUnit]) -> tuple[list[SliceUnit], list[Issue]]:
    """Step 5: of slices < 1 mm apart keep the later series (higher SeriesNumber)."""
    kept: list[SliceUnit] = []
    issues = []
    for u in sorted(units, key=lambda u: u.position):
        if kept and u.position - kept[-1].position < DUPLICATE_MM:
            prev = kept[-1]
            win, lose = (u, prev) if (u.series_number, u.series_time_s) > (prev.series_number, prev.series_time_s) else (prev, u)
            kept[-1] = win
            issues.append(Issue(subject, "duplicate_location",
                                f"kept series {win.series_number}, dropped series {lose.series_number}",
                                lose.first.file, f"position {lose.position:.2f} mm vs {win.position:.2f} mm"))
        else:
            kept.append(u)
    return kept, issues


def modal_spacing(positions: list[float], fallback: float) -> float:
    """Modal difference of sorted positions (0.1 mm bins, ties to the largest)."""
    if len(positions) < 2:
        return fallback if fallback > 0 else 1.0
    diffs = np.round(np.diff(sorted(positions)), 1)
    return float(mode_largest(diffs.tolist()))


def regularise_positions(subject: str, units: list[SliceUnit], gap_rule: str = "published",
                         ) -> tuple[list[tuple[SliceUnit, float, bool]], float, list[Issue]]:
    """Step 6 (slices): remove outlying and interspersed slices, fill single gaps.

    Returns (slices, spacing, issues) where each slice is (unit, position, filled); a filled
    slice copies the neighbour below it (lower position) and sits at the gap's position. Which
    gaps are filled is ``gap_rule`` (:func:`gap_fill_count`); a gap over 1.5 spacings that the
    rule leaves open is logged as ``slice_gap``.
    """
    check_gap_rule(gap_rule)
    units = sorted(units, key=lambda u: u.position)
    issues: list[Issue] = []
    d = modal_spacing([u.position for u in units], units[0].first.slice_thickness if units else 0)

    def drop(u: SliceUnit, problem: str, why: str) -> None:
        units.remove(u)
        issues.append(Issue(subject, problem, "slice removed", u.first.file,
                            f"series {u.series_number} at {u.position:.2f} mm: {why}"))

    # A gap over 2.5 spacings splits the stack; the largest run is the stack, the rest outliers.
    runs: list[list[SliceUnit]] = [[units[0]]] if units else []
    for u in units[1:]:
        if u.position - runs[-1][-1].position > GAP_FILL_MAX * d:
            runs.append([u])
        else:
            runs[-1].append(u)
    if len(runs) > 1:
        keep = max(runs, key=len)
        for run in runs:
            if run is not keep:
                for u in list(run):
                    drop(u, "outlier_slice", f"gap over {GAP_FILL_MAX}x the {d:.2f} mm spacing")
    # Interspersed slices: a gap well below the spacing; drop the slice whose removal leaves
    # its neighbours closest to the modal spacing.
    changed = True
    while changed and len(units) > 2:
        changed = False
        for i in range(len(units) - 1):
            if units[i + 1].position - units[i].position < INTERSPERSED_MAX * d:
                cost = []
                for c in (i, i + 1):
                    lo = units[c - 1].position if c - 1 >= 0 else None
                    hi = units[c + 1].position if c + 1 < len(units) else None
                    cost.append(abs(hi - lo - d) if lo is not None and hi is not None else d)
                drop(units[i if cost[0] <= cost[1] else i + 1], "interspersed_slice",
                     f"between regular positions (spacing {d:.2f} mm)")
                changed = True
                break
    slices: list[tuple[SliceUnit, float, bool]] = []
    for i, u in enumerate(units):
        slices.append((u, u.position, False))
        if i + 1 < len(units):
            gap = units[i + 1].position - u.position
            n_missing = gap_fill_count(gap, d, gap_rule)
            if n_missing == 0 and gap > GAP_FILL_MIN * d:
                why = (f"; the published rule fills only a gap within {GAP_TWICE_TOL_MM:g} mm "
                       f"of twice the spacing" if gap_rule == "published" else "")
                issues.append(Issue(subject, "slice_gap", "kept open (not filled)", u.first.file,
                                    f"gap {gap:.2f} mm after {u.position:.2f} mm is "
                                    f"{gap / d:.2f}x the {d:.2f} mm spacing{why}"))
            if n_missing:
                for m in range(1, n_missing + 1):
                    pos = u.position + m * gap / (n_missing + 1)
                    slices.append((u, pos, True))
                    issues.append(Issue(subject, "missing_slice",
                                        f"filled by copying the neighbour (series {u.series_number})",
                                        u.first.file, f"gap {gap:.2f} mm at {pos:.2f} mm (spacing {d:.2f} mm)"))
    return slices, d, issues
