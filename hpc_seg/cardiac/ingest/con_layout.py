"""A user's own data: one DICOM folder per volunteer plus QMass ``.con`` contours -> ingest input.

Input layout (what a clinic hands over; the 7T generator writes the same)::

    SRC/<vid>/**/*           the volunteer's short-axis cine DICOM files (any sub-folders)
    SRC/<vid>/*.con          observer 1's contours (one file; ``*_observer2.con`` excluded)
    SRC/<vid>/*_observer2.con  a second observer's contours (optional)

:func:`stage_con_cohort` rasterises every contour onto its image's own pixel grid (LV =
endocardium, MY = epicardium minus endocardium) and writes what the existing ingest reads: a
DSB2-like tree of symlinks ``STAGE/{train,validate,test}/<vid>/study/sax_<k>/`` (one folder per
slice position), ``STAGE/masks/<vid>.npz`` keyed by SOPInstanceUID, and ``STAGE/truth.csv`` (the
observer's own ESV/EDV, which the labels stage needs). Images without a contour get an empty mask.
A contour naming a slice or phase that the DICOMs lack, or with a point outside its image (beyond
:data:`MARGIN_PX`), is reported as an issue row and skipped. A contour file that is not one (no
``[XYCONTOUR]`` section, binary data, a malformed section) is one issue row, and a volunteer left
without any usable LV contour is reported (``no_usable_contours``) and not staged: no truth row,
rather than volumes of 0 mL. Volunteer ids and file names become staged paths through
:func:`~hpc_seg.storage.names.safe_name`.
With ``observer="observer2"`` the same is done from the second observer's files, for the
volunteers that have them, so that a second ingest gives observer 2's masks in exactly the curated
geometry of observer 1's.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom

from hpc_seg.cardiac.ingest.qmass_con import (LV_ENDO, SLICE_ORDERS, Contour, contours_to_mask,
                                              dicom_slice, read_con)
from hpc_seg.errors import ConfigError, InputError
from hpc_seg.storage.names import printable, safe_name
from hpc_seg.storage.shards import atomic_write_bytes

log = logging.getLogger(__name__)

OBSERVER2_SUFFIX = "_observer2"
ISSUE_COLUMNS = ["subject_id", "patient_id", "problem", "resolution", "file", "detail"]
#: how far (pixels) a contour point may lie outside the image: contours drawn along the edge
#: sit on pixel corners (-0.5 .. size - 0.5); anything further off is not of this image
MARGIN_PX = 2.0


@dataclass(frozen=True)
class ImageRef:
    """One DICOM image of a volunteer and where it sits in the (slice, phase) grid."""

    path: Path
    sop_uid: str
    rows: int
    cols: int
    slice: int = -1
    phase: int = -1


def find_volunteers(src: Path) -> list[str]:
    """Volunteer folders under ``src`` (sorted numerically when numeric)."""
    src = Path(src)
    if not src.is_dir():
        raise InputError(f"{src}: input folder does not exist")
    skip = {"truth_masks", "masks"}
    ids = [p.name for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")
           and p.name not in skip and any(p.glob("*.con"))]
    if not ids:
        raise InputError(f"{src}: no volunteer folder with a .con file (expected SRC/<vid>/*.con "
                         "next to the volunteer's DICOM files)")
    return sorted(ids, key=lambda v: (0, int(v)) if v.isdigit() else (1, v))


def con_files(folder: Path) -> tuple[Path | None, Path | None]:
    """(observer 1's ``.con``, observer 2's ``.con`` or None)."""
    obs2 = sorted(folder.glob(f"*{OBSERVER2_SUFFIX}.con"))
    obs1 = sorted(p for p in folder.glob("*.con") if not p.stem.endswith(OBSERVER2_SUFFIX))
    if len(obs1) > 1 or len(obs2) > 1:
        raise InputError(f"{folder}: more than one contour file per observer "
                         f"({', '.join(p.name for p in obs1 + obs2)})")
    return (obs1[0] if obs1 else None), (obs2[0] if obs2 else None)


def scan_images(folder: Path) -> list[ImageRef]:
    """Every DICOM image under ``folder`` with its slice (position order) and phase (trigger order)."""
    found = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() == ".con" or path.name.startswith("."):
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True,
                                 specific_tags=["SOPInstanceUID", "ImagePositionPatient",
                                                "ImageOrientationPatient", "TriggerTime", "Rows",
                                                "Columns"])
            iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
            pos = float(np.dot(np.asarray(ds.ImagePositionPatient, dtype=float),
                               np.cross(iop[:3], iop[3:])))
            found.append((round(pos, 1), float(getattr(ds, "TriggerTime", 0) or 0), str(path),
                          str(ds.SOPInstanceUID), int(ds.Rows), int(ds.Columns)))
        except (pydicom.errors.InvalidDicomError, AttributeError, ValueError, TypeError, OSError):
            continue      # not an image we can place; the ingest reports unreadable files itself
    if not found:
        raise InputError(f"{folder}: no DICOM image with position and orientation")
    positions = sorted({f[0] for f in found})
    by_slice: dict[int, list] = defaultdict(list)
    for f in found:
        by_slice[positions.index(f[0])].append(f)
    refs = []
    for k, items in sorted(by_slice.items()):
        for t, (_pos, _trig, path, uid, rows, cols) in enumerate(sorted(items, key=lambda f: (f[1], f[2]))):
            refs.append(ImageRef(Path(path), uid, rows, cols, k, t))
    return refs


def _issue(vid: str, problem: str, resolution: str, file: Path | str, detail: str) -> dict:
    return {"subject_id": vid, "patient_id": vid, "problem": problem, "resolution": resolution,
            "file": printable(str(file)), "detail": detail}


def outside_image(c: Contour, rows: int, cols: int, margin: float = MARGIN_PX) -> str | None:
    """Why contour ``c`` does not fit a ``rows x cols`` image (None: it does)."""
    x, y = c.points[:, 0], c.points[:, 1]
    lo = -0.5 - margin
    if x.min() < lo or x.max() > cols - 0.5 + margin or y.min() < lo or y.max() > rows - 0.5 + margin:
        return (f"points span x {x.min():.6g}..{x.max():.6g}, y {y.min():.6g}..{y.max():.6g}; "
                f"the image is {cols} x {rows} pixels")
    return None


def volunteer_masks(vid: str, con_path: Path, refs: list[ImageRef], slice_order: str,
                    incomplete: set[int] | None = None) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Masks keyed by SOPInstanceUID for every image, and issue rows for contours that were
    skipped (no image at their slice and phase, or points outside the image). The phases that
    lost an LV endocardium contour that way are added to ``incomplete``: their LV volume
    would be short by a slice."""
    con = read_con(con_path)
    n_slices = max(r.slice for r in refs) + 1
    grid = {(r.slice, r.phase): r for r in refs}
    groups: dict[tuple[int, int], list] = defaultdict(list)
    issues = []
    for c in con.contours:
        k = dicom_slice(c.slice, n_slices, slice_order)
        if (k, c.phase) not in grid:
            issues.append({"subject_id": vid, "patient_id": vid, "problem": "contour_without_image",
                           "resolution": "contour skipped", "file": str(con_path),
                           "detail": f"line {c.line}: slice {c.slice} phase {c.phase} type "
                                     f"{c.type}; the DICOMs have {n_slices} slices and no image "
                                     f"at DICOM slice {k}, phase {c.phase} ({slice_order} order)"})
            continue
        why = outside_image(c, grid[(k, c.phase)].rows, grid[(k, c.phase)].cols)
        if why is not None:
            if c.type == LV_ENDO and incomplete is not None:
                incomplete.add(c.phase)
            issues.append(_issue(vid, "contour_outside_image",
                                 "contour skipped" + ("; phase left out of ESV/EDV"
                                                      if c.type == LV_ENDO else ""), con_path,
                                 f"line {c.line}: slice {c.slice} phase {c.phase} type {c.type}: "
                                 f"{why}"))
            continue
        groups[(k, c.phase)].append(c)
    masks = {}
    for key, ref in grid.items():
        masks[ref.sop_uid] = contours_to_mask(groups.get(key, []), ref.rows, ref.cols)
    for i in issues:
        log.warning("%s: %s", i["file"], i["detail"])
    return masks, issues


def lv_volumes_ml(refs: list[ImageRef], masks: dict[str, np.ndarray], ml_per_px: float,
                  skip_phases: set[int] = frozenset()) -> tuple[float, float] | None:
    """(ESV, EDV) in mL: LV pixels summed over slices per phase, min and max over the phases
    that have an LV contour at all (an observer often draws only some phases: a phase without
    contours is not a volume of 0 mL) and are not in ``skip_phases``; None when no phase is left."""
    per_phase: dict[int, int] = defaultdict(int)
    for r in refs:
        if r.phase in skip_phases:
            continue
        per_phase[r.phase] += int((masks[r.sop_uid] == 1).sum())
    drawn = [n for _, n in sorted(per_phase.items()) if n > 0]
    if not drawn:
        return None
    vols = np.array(drawn, dtype=float) * ml_per_px
    return float(vols.min()), float(vols.max())


def _voxel_ml(path: Path) -> float:
    ds = pydicom.dcmread(path, stop_before_pixels=True,
                         specific_tags=["PixelSpacing", "SliceThickness", "SpacingBetweenSlices"])
    ps = [float(v) for v in ds.PixelSpacing]
    thick = float(getattr(ds, "SpacingBetweenSlices", None) or getattr(ds, "SliceThickness", 0) or 0)
    return ps[0] * ps[1] * thick / 1000.0


def stage_con_cohort(src: Path, stage: Path, splits: dict[str, str], *,
                     observer: str = "observer1", slice_order: str = "reversed") -> list[dict]:
    """Write the ingest input for ``src`` under ``stage``; returns the issue rows (also
    ``stage/con_issues.csv``). ``splits`` maps volunteer id -> train/validate/test."""
    if slice_order not in SLICE_ORDERS:
        raise ConfigError(f"con slice_order must be one of {SLICE_ORDERS}, got {slice_order!r}")
    if observer not in ("observer1", "observer2"):
        raise ConfigError(f"observer must be observer1 or observer2, got {observer!r}")
    src, stage = Path(src), Path(stage)
    if stage.exists():
        shutil.rmtree(stage)
    all_issues: list[dict] = []
    truth = ["Id,Systole,Diastole"]
    for vid in find_volunteers(src):
        folder = src / vid
        sid = safe_name(vid)        # the staged folder, mask file and truth row
        obs1, obs2 = con_files(folder)
        con = obs1 if observer == "observer1" else obs2
        if con is None:
            if observer == "observer1":
                all_issues.append(_issue(sid, "no_contours", "volunteer skipped", folder,
                                         "no observer-1 .con file"))
            continue
        if vid not in splits:
            continue
        refs = scan_images(folder)
        incomplete: set[int] = set()
        try:
            masks, issues = volunteer_masks(sid, con, refs, slice_order, incomplete)
        except InputError as exc:       # not a contour file at all: one row, volunteer skipped
            all_issues.append(_issue(sid, "not_a_contour_file", "volunteer skipped", con,
                                     str(exc).removeprefix(f"{con}: ")))
            log.warning("%s: not a usable contour file; volunteer %s skipped", con, sid)
            continue
        all_issues += issues
        volumes = lv_volumes_ml(refs, masks, _voxel_ml(refs[0].path), incomplete)
        if volumes is None:
            all_issues.append(_issue(sid, "no_usable_contours", "volunteer skipped", con,
                                     "no LV endocardium contour left to measure a volume"))
            log.warning("%s: no usable LV contour; volunteer %s skipped", con, sid)
            continue
        study = stage / splits[vid] / sid / "study"
        for r in refs:
            d = study / f"sax_{r.slice:03d}"
            d.mkdir(parents=True, exist_ok=True)
            link = d / f"{r.phase:04d}-{safe_name(r.path.name)}"
            os.symlink(r.path.resolve(), link)
        buf = io.BytesIO()
        np.savez_compressed(buf, **masks)
        atomic_write_bytes(buf.getvalue(), stage / "masks" / f"{sid}.npz")
        esv, edv = volumes
        truth.append(f"{sid},{esv:.3f},{edv:.3f}")
    atomic_write_bytes(("\n".join(truth) + "\n").encode(), stage / "truth.csv")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=ISSUE_COLUMNS)
    w.writeheader()
    w.writerows(all_issues)
    atomic_write_bytes(buf.getvalue().encode(), stage / "con_issues.csv")
    return all_issues
