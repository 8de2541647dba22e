"""DICOM Segmentation objects (highdicom) that reference the source cine images.

highdicom builds a SEG from source images of ONE series with distinct plane positions, so a
cine stack gets one SEG per (source series, cardiac frame): ``seg/s<series>_t<frame>.dcm``.
A DSB2-style export (one series per slice location) thus gives one SEG per image, a single-series
scanner export one SEG per frame covering all slices. Each SEG frame is the prediction of one
source image mapped back onto that image's own pixel grid through the curated stack's affine
(nearest neighbour), so it stays right where curation resampled or rotated the slice.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hpc_seg import __version__
from hpc_seg.cardiac.dicom.header import whole_number
from hpc_seg.errors import HpcSegError, InputError
from hpc_seg.storage.shards import atomic_write

log = logging.getLogger(__name__)


def _segment_descriptions() -> list[Any]:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algo = hd.AlgorithmIdentificationSequence(name="hpc-seg 2D U-Net", version=__version__,
                                              family=codes.cid7162.ArtificialIntelligence)
    kw = {"segmented_property_category": codes.SCT.AnatomicalStructure,
          "algorithm_type": hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
          "algorithm_identification": algo}
    return [hd.seg.SegmentDescription(segment_number=1, segment_label="LV cavity",
                                      segmented_property_type=codes.SCT.LeftVentricle, **kw),
            hd.seg.SegmentDescription(segment_number=2, segment_label="LV myocardium",
                                      segmented_property_type=codes.SCT.LeftVentricleMyocardium, **kw)]


#: type-2 patient/study attributes highdicom copies into the SEG; anonymised or synthetic exports
#: often omit them, and DICOM allows them empty, so an empty value is filled in (in memory only)
TYPE2_FROM_SOURCE = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
                     "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName")


def _complete(ds: Any) -> Any:
    for keyword in TYPE2_FROM_SOURCE:
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds


def labels_on_image(labels2d: np.ndarray, affine: np.ndarray, k: int, ds: Any) -> np.ndarray:
    """The curated slice ``labels2d`` (slice ``k`` of a stack with ``affine``) sampled on the
    pixel grid of DICOM image ``ds`` (nearest neighbour; outside the stack -> background)."""
    rows, cols = int(ds.Rows), int(ds.Columns)
    ipp = np.asarray(ds.ImagePositionPatient, float)
    iop = np.asarray(ds.ImageOrientationPatient, float)
    ps = np.asarray(ds.PixelSpacing, float)
    jj, ii = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    world = (ipp[:, None, None] + iop[:3, None, None] * ps[1] * ii
             + iop[3:, None, None] * ps[0] * jj)                         # (3, rows, cols) LPS mm
    inv = np.linalg.inv(np.asarray(affine, float).reshape(4, 4))
    idx = np.tensordot(inv[:3, :3], world, axes=1) + inv[:3, 3, None, None]
    ci, cj = np.rint(idx[0]).astype(int), np.rint(idx[1]).astype(int)
    h, w = labels2d.shape
    inside = (ci >= 0) & (ci < w) & (cj >= 0) & (cj < h) & (np.abs(idx[2] - k) < 0.5)
    out = np.zeros((rows, cols), np.uint8)
    out[inside] = labels2d[cj[inside], ci[inside]]
    return out


def write_dicom_segs(mask: np.ndarray, row: dict[str, Any], files: pd.DataFrame, dicom_root: Path,
                     out_dir: Path) -> list[Path]:
    """Write ``out_dir/seg/s<series>_t<frame>.dcm`` for one stack; return the paths.

    ``files`` holds the stack's rows of the ingest ``files`` table (slice, frame, file, filled).
    """
    import highdicom as hd
    import pydicom

    affine = np.asarray(row["affine"], float).reshape(4, 4)
    used = files[~files["filled"]].drop_duplicates("file").sort_values(["slice", "frame"])
    groups: dict[tuple[str, int], list[tuple[Any, np.ndarray]]] = {}
    for rec in used.itertuples(index=False):
        path = Path(dicom_root) / rec.file
        try:
            ds = pydicom.dcmread(path)
        except Exception as exc:  # noqa: BLE001 - the file was readable at ingest; say what changed
            raise InputError(f"{path}: cannot re-read source DICOM for the SEG ({exc})") from None
        frame = labels_on_image(mask[int(rec.frame), int(rec.slice)], affine, int(rec.slice), ds)
        key = (str(ds.SeriesInstanceUID), int(rec.frame))
        groups.setdefault(key, []).append((_complete(ds), frame))
    written = []
    descriptions = _segment_descriptions()
    for (_, t), items in sorted(groups.items()):
        sources = [ds for ds, _ in items]
        # the source's own header: a SeriesNumber of '1.5' or '1\\2' counts as none
        series_number = whole_number(str(getattr(sources[0], "SeriesNumber", "") or ""))
        path = out_dir / "seg" / f"s{series_number:04d}_t{t:03d}.dcm"
        try:
            seg = _segmentation(hd, sources, items, descriptions, series_number, t, row)
            atomic_write(path, lambda tmp: seg.save_as(tmp))
        except HpcSegError:
            raise
        except Exception as exc:  # noqa: BLE001 - highdicom refuses odd source headers in many ways
            cause = (str(exc).strip().splitlines() or [""])[0][:200]
            raise InputError(f"stack {row['stack_id']}: DICOM SEG not written for frame {t} "
                             f"({type(exc).__name__}: {cause})") from None
        written.append(path)
    return written


def _segmentation(hd: Any, sources: list, items: list, descriptions: list, series_number: int,
                  t: int, row: dict[str, Any]) -> Any:
    return hd.seg.Segmentation(
        source_images=sources, pixel_array=np.stack([f for _, f in items]),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(),
        series_number=9000 + series_number % 1000, sop_instance_uid=hd.UID(),
        instance_number=t + 1, manufacturer="hpc-seg", manufacturer_model_name="2D U-Net",
        software_versions=__version__, device_serial_number="0", content_label="LVSEG",
        content_description=f"LV cavity and myocardium, {row['stack_id']} frame {t}",
        omit_empty_frames=False)
