"""Per-frame header values of an enhanced multi-frame image (Enhanced MR and friends).

Modern scanners write a cine series as one file: the frames' geometry and timing sit in the
functional group sequences, not at the top level where a single-frame image keeps them. A value
is looked up in the frame's own item of PerFrameFunctionalGroupsSequence first, then in
SharedFunctionalGroupsSequence, then at the top level (where some writers also put it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pydicom

#: (functional group sequence, attribute) of each value a frame needs
_LOOKUP = {
    "ipp": ("PlanePositionSequence", "ImagePositionPatient"),
    "iop": ("PlaneOrientationSequence", "ImageOrientationPatient"),
    "pixel_spacing": ("PixelMeasuresSequence", "PixelSpacing"),
    "slice_thickness": ("PixelMeasuresSequence", "SliceThickness"),
    "trigger_time_ms": ("CardiacSynchronizationSequence", "NominalCardiacTriggerDelayTime"),
    "slope": ("PixelValueTransformationSequence", "RescaleSlope"),
    "intercept": ("PixelValueTransformationSequence", "RescaleIntercept"),
}
#: top-level fallbacks (single-frame keywords) for the same values
_TOP_LEVEL = {"ipp": "ImagePositionPatient", "iop": "ImageOrientationPatient",
              "pixel_spacing": "PixelSpacing", "slice_thickness": "SliceThickness",
              "trigger_time_ms": "TriggerTime", "slope": "RescaleSlope",
              "intercept": "RescaleIntercept"}


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """What one frame of a multi-frame image says about itself."""

    ipp: list[float] | None
    iop: list[float] | None
    pixel_spacing: list[float] | None
    slice_thickness: float
    trigger_time_ms: float
    slope: float
    intercept: float
    temporal_index: int          # FrameContentSequence TemporalPositionIndex (0: none)


def number_of_frames(ds: pydicom.Dataset) -> int:
    """NumberOfFrames as an int (1 when absent or unreadable)."""
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def _item(ds: pydicom.Dataset, keyword: str, index: int = 0) -> pydicom.Dataset | None:
    seq = ds.get(keyword)
    return seq[index] if seq is not None and len(seq) > index else None


def _value(groups: list[pydicom.Dataset], ds: pydicom.Dataset, name: str) -> Any:
    seq_kw, attr = _LOOKUP[name]
    for group in groups:
        inner = _item(group, seq_kw)
        if inner is not None and attr in inner:
            return inner[attr].value
    top = _TOP_LEVEL[name]
    return ds[top].value if top in ds else None


def _float(value: Any, default: float) -> float:
    try:
        return float(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _floats(value: Any) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(v) for v in value]
    except (TypeError, ValueError):
        return None


def frame_headers(ds: pydicom.Dataset) -> list[FrameHeader]:
    """One :class:`FrameHeader` per frame. Raises ValueError when the per-frame sequence does
    not have one item per frame (the frames could not be placed)."""
    n = number_of_frames(ds)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and len(per_frame) != n:
        raise ValueError(f"PerFrameFunctionalGroupsSequence has {len(per_frame)} items for "
                         f"{n} frames")
    shared = _item(ds, "SharedFunctionalGroupsSequence")
    out = []
    for i in range(n):
        groups = [g for g in ((per_frame[i] if per_frame is not None else None), shared)
                  if g is not None]
        content = next((_item(g, "FrameContentSequence") for g in groups
                        if _item(g, "FrameContentSequence") is not None), None)
        temporal = int(_float(content.get("TemporalPositionIndex") if content else None, 0))
        out.append(FrameHeader(
            ipp=_floats(_value(groups, ds, "ipp")), iop=_floats(_value(groups, ds, "iop")),
            pixel_spacing=_floats(_value(groups, ds, "pixel_spacing")),
            slice_thickness=_float(_value(groups, ds, "slice_thickness"), 0.0),
            trigger_time_ms=_float(_value(groups, ds, "trigger_time_ms"), 0.0),
            slope=_float(_value(groups, ds, "slope"), 1.0),
            intercept=_float(_value(groups, ds, "intercept"), 0.0),
            temporal_index=temporal))
    return out
