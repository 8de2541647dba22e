"""Curation of one patient: steps 1-7 from frames to cleaned 4D stacks (pixels and masks).

:func:`curate_patient` is the one entry point both ingest engines call. Pixels and label masks go
through exactly the same geometric operations (masks with nearest-neighbour sampling).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hpc_seg.cardiac.curate.steps import (Issue, SliceUnit, Target, choose_target, dedupe_positions,
                                 drop_other_normals, group_slice_units, modal_normal,
                                 regularise_positions, set_positions, split_complete_repeats)
from hpc_seg.cardiac.curate.duplicates import drop_duplicate_images
from hpc_seg.cardiac.curate.frame_geometry import drop_odd_frames
from hpc_seg.cardiac.curate.frames import fill_slots, reference_frame_times
from hpc_seg.cardiac.curate.geometry import (PlaneGrid, rot90_stack, same_grid,
                                          stack_affine)
from hpc_seg.cardiac.curate.resample import resample_to_grid
from hpc_seg.cardiac.dicom.frame import DicomFrame


#: a slice further than this from the stack's regular grid is logged as off-grid
OFF_GRID_MM = 0.05
#: bytes of source frames resampled together (see _conform_into)
RESAMPLE_BATCH_BYTES = 2 << 20


@dataclass(slots=True)
class FileUse:
    """One row of the ``files`` table: the file behind voxel plane (slice, frame)."""

    slice: int
    frame: int
    series_number: int
    file: str
    filled: bool


@dataclass(slots=True)
class CuratedStack:
    """A cleaned 4D stack ``pixels[t, k, j, i]`` with its geometry (affine: see curate_geometry)."""

    subject_id: str
    stack_id: str
    rotated_90: bool
    pixels: np.ndarray
    mask: np.ndarray | None
    pixel_spacing_mm: tuple[float, float]
    slice_spacing_mm: float
    slice_positions_mm: list[float]
    frame_times_ms: list[float]
    affine: np.ndarray
    scale_factor: float
    series_numbers: list[int]
    files: list[FileUse] = field(default_factory=list)


def frame_slots(subject: str, unit: SliceUnit, target: Target,
                ) -> tuple[list[int], list[int], list[Issue]]:
    """Step 6 (frames): (index into ``unit.frames`` for each of the target's frames, the frames
    that are copies, issues).

    Surplus frames are cut (first n by TriggerTime). A slice with fewer frames has each frame
    placed in its own phase slot by trigger time (:mod:`~hpc_seg.cardiac.curate.frames`), and an
    empty slot copies the previous phase, so frame k of every slice is the same cardiac phase.
    """
    n, frames = target.n_frames, unit.frames
    if len(frames) >= n:
        issues = [] if len(frames) == n else [Issue(
            subject, "surplus_frames", f"cut to {n} frames", frames[n].file,
            f"series {unit.series_number}: {len(frames)} frames")]
        return list(range(n)), [], issues
    filled, missing = fill_slots(unit, target.frame_times_ms)
    issue = Issue(subject, "missing_frames", "filled from the previous frame", frames[0].file,
                  f"series {unit.series_number} at {unit.position:.2f} mm: {len(frames)} of {n} "
                  f"frames; filled frames {missing}")
    return filled, missing, [issue]


def _geometry_problem(src: PlaneGrid, modal: PlaneGrid) -> tuple[str, str] | None:
    """Why a slice differs from the modal grid (None: it does not; only a downscale applies)."""
    if same_grid(src, modal):
        return None
    if (src.rows, src.cols) != (modal.rows, modal.cols) or \
            not np.allclose(src.spacing, modal.spacing, atol=1e-4):
        same_axes = (abs(float(src.u @ modal.u)) > 0.99 * np.linalg.norm(src.u) * np.linalg.norm(modal.u))
        if sorted(src.spacing) == sorted(modal.spacing) and (src.cols, src.rows) == (modal.rows, modal.cols) \
                and not same_axes:
            return "inplane_rotated", "rotated into the stack's in-plane orientation"
        return "other_geometry", "resampled to the target spacing, centre crop/zero pad"
    if not (np.allclose(src.u, modal.u, atol=1e-4) and np.allclose(src.v, modal.v, atol=1e-4)):
        return "inplane_rotated", "rotated into the stack's in-plane orientation"
    return "inplane_shift", "resampled onto the stack's in-plane grid"


def _conform_into(subject: str, unit: SliceUnit, frame_idx: list[int], target: Target,
                  position: float, masks: dict[str, np.ndarray] | None, issues: list[Issue],
                  out_px: np.ndarray, out_mk: np.ndarray | None) -> None:
    """Step 3 (pixels): bring one slice's frames (and masks) onto the target grid, writing
    into ``out_px[t]`` / ``out_mk[t]`` (each frame is copied once, straight into its stack)."""
    planes: list[np.ndarray] = []
    if out_mk is not None:
        for i in frame_idx:
            f = unit.frames[i]
            m = masks.get(f.sop_uid)
            if m is None or m.shape != (f.rows, f.cols):
                issues.append(Issue(subject, "mask_missing", "zero mask used", f.file,
                                    "no mask entry" if m is None else f"mask shape {m.shape}"))
                m = np.zeros((f.rows, f.cols), np.uint8)
            planes.append(m)
    src = unit.grid
    dst = target.grid.at_position(target.normal, position)
    if same_grid(src, dst):
        for t, i in enumerate(frame_idx):
            out_px[t] = unit.frames[i].pixels
            if out_mk is not None:
                out_mk[t] = planes[t]
        return
    problem = _geometry_problem(src, target.modal.at_position(target.normal, position))
    if problem:
        issues.append(Issue(subject, problem[0], problem[1], unit.first.file,
                            f"series {unit.series_number}: {src.rows}x{src.cols} at "
                            f"{src.spacing[0]:.3f}x{src.spacing[1]:.3f} mm"))
    # A few frames at a time: a batch of ~2 MB stays in the CPU caches through the resampling's
    # several passes, where a whole slice (30 frames of 512x512: 16 MB) streams through memory
    # on each pass (block mean 512 → 256 measured 17.9 → 4.5 ms per 30 frames).
    step = max(1, RESAMPLE_BATCH_BYTES // max(1, unit.frames[frame_idx[0]].pixels.nbytes))
    for t0 in range(0, len(frame_idx), step):
        batch = frame_idx[t0:t0 + step]
        px = np.stack([unit.frames[i].pixels for i in batch])
        out_px[t0:t0 + len(batch)] = resample_to_grid(px, src, dst, order=1)
        if out_mk is not None:
            mk = np.stack(planes[t0:t0 + len(batch)]).astype(np.uint8, copy=False)
            out_mk[t0:t0 + len(batch)] = resample_to_grid(mk, src, dst, order=0)


def build_stack(subject: str, units: list[SliceUnit], masks: dict[str, np.ndarray] | None,
                gap_rule: str = "published",
                ) -> tuple[list[CuratedStack], list[Issue]]:
    """Steps 2-7 for one subject's slice units; returns the stack (and its rot90 copy)."""
    normal = modal_normal(units)
    set_positions(units, normal)
    target = choose_target(units, normal)
    set_positions(units, target.normal)
    units, issues = drop_other_normals(subject, units, target)
    units, more = dedupe_positions(subject, units)
    issues += more
    slices, spacing, more = regularise_positions(subject, units, gap_rule)
    issues += more
    kept_units = {id(u): u for u, _, _ in slices}.values()
    target.frame_times_ms = reference_frame_times(list(kept_units), target.n_frames)
    if target.scale_factor != 1.0:
        issues.append(Issue(subject, "downscaled", f"scale factor {target.scale_factor:.4f}", "",
                            f"matrix larger than 256; now {target.grid.rows}x{target.grid.cols}"))
    g = target.grid
    n_t, n_k = target.n_frames, len(slices)
    pixels = np.empty((n_t, n_k, g.rows, g.cols), dtype=slices[0][0].frames[0].pixels.dtype)
    mask = np.empty(pixels.shape, np.uint8) if masks is not None else None
    written: dict[int, tuple[int, list[int], set[int]]] = {}   # unit → (slice, frames, copies)
    files: list[FileUse] = []
    for k, (unit, pos, filled) in enumerate(slices):
        if id(unit) in written:                         # a filled gap: copy the neighbour
            k0, idx, copies = written[id(unit)]
            pixels[:, k] = pixels[:, k0]
            if mask is not None:
                mask[:, k] = mask[:, k0]
        else:
            idx, copied, more = frame_slots(subject, unit, target)
            copies = set(copied)
            issues += more
            _conform_into(subject, unit, idx, target, pos, masks, issues, pixels[:, k],
                          mask[:, k] if mask is not None else None)
            written[id(unit)] = (k, idx, copies)
        for t, i in enumerate(idx):
            files.append(FileUse(k, t, unit.series_number, unit.frames[i].file, filled or t in copies))
    positions = [pos for _, pos, _ in slices]
    step = (positions[-1] - positions[0]) / (n_k - 1) if n_k > 1 else spacing
    affine = stack_affine(g.at_position(target.normal, positions[0]), target.normal * step)
    # One affine describes a regular grid; a kept slice off that grid (a repeated location
    # < 1 mm away, jitter) keeps its true position in slice_positions_mm and is logged here.
    for k, (unit, pos, _filled) in enumerate(slices):
        offset = pos - (positions[0] + k * step)
        if abs(offset) > OFF_GRID_MM:
            issues.append(Issue(subject, "off_grid_slice",
                                "kept; the affine places it on the regular slice grid",
                                unit.first.file, f"slice {k} is {offset:+.3f} mm off the grid"))
    stack = CuratedStack(subject, subject, False, pixels, mask, g.spacing, float(spacing),
                         [round(p, 4) for p in positions], list(target.frame_times_ms), affine,
                         float(target.scale_factor), [u.series_number for u, _, _ in slices], files)
    stacks = [stack]
    if g.rows < g.cols:
        stacks.append(rotated_copy(stack))
        issues.append(Issue(subject, "rows_lt_cols", f"added rotated copy {subject}_rot90", "",
                            f"{g.rows}x{g.cols} (rows x cols)"))
    return stacks, issues


def rotated_copy(stack: CuratedStack) -> CuratedStack:
    """Step 4: the stack rotated by 90 degrees (rows >= cols) with an affine that follows."""
    pixels, affine = rot90_stack(stack.pixels, stack.affine)
    mask = rot90_stack(stack.mask, stack.affine)[0] if stack.mask is not None else None
    spacing = (float(np.linalg.norm(affine[:3, 1])), float(np.linalg.norm(affine[:3, 0])))
    return CuratedStack(stack.subject_id, f"{stack.stack_id}_rot90", True, pixels, mask, spacing,
                        stack.slice_spacing_mm, stack.slice_positions_mm, stack.frame_times_ms,
                        affine, stack.scale_factor, stack.series_numbers, stack.files)


def curate_patient(pid: str, frames: list[DicomFrame], masks: dict[str, np.ndarray] | None,
                   *, gap_rule: str = "published") -> tuple[list[CuratedStack], list[Issue]]:
    """Steps 1-7 for one patient's decoded frames (see module docstring); ``gap_rule``: which
    slice gaps step 6 fills (:func:`hpc_seg.cardiac.curate.steps.gap_fill_count`)."""
    if not frames:
        return [], [Issue(pid, "no_usable_images", "patient skipped", "",
                          "no short-axis image could be read")]
    units = group_slice_units(frames)
    odd = drop_odd_frames(pid, units)
    duplicates = odd + drop_duplicate_images(pid, units, masks)    # before frames are lined up
    set_positions(units, modal_normal(units))
    subjects, issues = split_complete_repeats(pid, units)
    issues = duplicates + issues
    stacks: list[CuratedStack] = []
    for subject, sub_units in subjects.items():
        s, more = build_stack(subject, sub_units, masks, gap_rule)
        stacks += s
        issues += more
    return stacks, issues
