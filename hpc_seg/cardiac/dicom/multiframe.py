"""Per-frame header values of an enhanced multi-frame image (Enhanced MR and friends).

Modern scanners write a series as one file: the frames' geometry, timing and image type sit in
the functional group sequences, not at the top level where a single-frame image keeps them. A
value is looked up in the frame's own item of PerFrameFunctionalGroupsSequence first, then in
SharedFunctionalGroupsSequence, then at the top level (where some writers also put it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import pydicom

from hpc_seg.cardiac.dicom.frame import FRAME_KEY, NAN, Acquisition, DicomFrame
from hpc_seg.cardiac.dicom.header import dicom_time_s, floats, frame_from_header, num
from hpc_seg.cardiac.dicom.pixels import decode_pixels, stored_to_pixels

#: (functional group sequence, attribute) of each value a frame needs
_LOOKUP = {
    "ipp": ("PlanePositionSequence", "ImagePositionPatient"),
    "iop": ("PlaneOrientationSequence", "ImageOrientationPatient"),
    "pixel_spacing": ("PixelMeasuresSequence", "PixelSpacing"),
    "slice_thickness": ("PixelMeasuresSequence", "SliceThickness"),
    "trigger_time_ms": ("CardiacSynchronizationSequence", "NominalCardiacTriggerDelayTime"),
    "rr_ms": ("CardiacSynchronizationSequence", "RRIntervalTimeNominal"),
    "slope": ("PixelValueTransformationSequence", "RescaleSlope"),
    "intercept": ("PixelValueTransformationSequence", "RescaleIntercept"),
    "frame_type": ("MRImageFrameTypeSequence", "FrameType"),
    "complex_component": ("MRImageFrameTypeSequence", "ComplexImageComponent"),
    "echo_ms": ("MREchoSequence", "EffectiveEchoTime"),
    "inversion_ms": ("MRModifierSequence", "InversionTimes"),
    "venc": ("MRVelocityEncodingSequence", "VelocityEncodingMaximumValue"),
    "acquired": ("FrameContentSequence", "FrameAcquisitionDateTime"),
}
#: top-level fallbacks (single-frame keywords) for the same values
_TOP_LEVEL = {"ipp": "ImagePositionPatient", "iop": "ImageOrientationPatient",
              "pixel_spacing": "PixelSpacing", "slice_thickness": "SliceThickness",
              "trigger_time_ms": "TriggerTime", "rr_ms": "NominalInterval",
              "slope": "RescaleSlope", "intercept": "RescaleIntercept", "frame_type": "ImageType",
              "complex_component": "ComplexImageComponent", "echo_ms": "EchoTime",
              "inversion_ms": "InversionTime", "venc": "VelocityEncodingMaximumValue",
              "acquired": "AcquisitionDateTime"}


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """What one frame of a multi-frame image says about itself."""

    ipp: list[float] | None
    iop: list[float] | None
    pixel_spacing: list[float] | None
    slice_thickness: float
    trigger_time_ms: float
    trigger_given: bool
    slope: float
    intercept: float
    temporal_index: int          # FrameContentSequence TemporalPositionIndex (0: none)
    frame_type: str = ""         # FrameType, values joined by "\", upper case
    complex_component: str = ""
    echo_ms: float = NAN
    inversion_ms: float = NAN
    rr_ms: float = NAN
    venc: float = NAN
    time_s: float = NAN          # FrameAcquisitionDateTime, seconds since midnight


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
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        value = value[0] if len(value) else None
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


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return "\\".join(str(v) for v in value).upper()
    return str(value).upper()


def _datetime_s(value: Any) -> float:
    """A DT value ('YYYYMMDDHHMMSS.ffffff') → seconds since midnight (NaN when absent)."""
    text = str(value or "").strip()
    return dicom_time_s(text[8:]) if len(text) > 8 else NAN


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
        trigger = _value(groups, ds, "trigger_time_ms")
        out.append(FrameHeader(
            ipp=_floats(_value(groups, ds, "ipp")), iop=_floats(_value(groups, ds, "iop")),
            pixel_spacing=_floats(_value(groups, ds, "pixel_spacing")),
            slice_thickness=_float(_value(groups, ds, "slice_thickness"), 0.0),
            trigger_time_ms=_float(trigger, 0.0), trigger_given=trigger not in (None, ""),
            slope=_float(_value(groups, ds, "slope"), 1.0),
            intercept=_float(_value(groups, ds, "intercept"), 0.0),
            temporal_index=temporal,
            frame_type=_text(_value(groups, ds, "frame_type")),
            complex_component=_text(_value(groups, ds, "complex_component")),
            echo_ms=_float(_value(groups, ds, "echo_ms"), NAN),
            inversion_ms=_float(_value(groups, ds, "inversion_ms"), NAN),
            rr_ms=_float(_value(groups, ds, "rr_ms"), NAN),
            venc=_float(_value(groups, ds, "venc"), NAN),
            time_s=_datetime_s(_value(groups, ds, "acquired"))))
    return out


def _or(value: float, fallback: float) -> float:
    return fallback if math.isnan(value) else value


def _frame_acquisition(base: Acquisition, fh: FrameHeader) -> Acquisition:
    """The file's acquisition fields with what this frame says about itself."""
    return replace(
        base, image_type=fh.frame_type or base.image_type,
        complex_component=fh.complex_component or base.complex_component,
        echo_ms=_or(fh.echo_ms, base.echo_ms), inversion_ms=_or(fh.inversion_ms, base.inversion_ms),
        nominal_interval_ms=_or(fh.rr_ms, base.nominal_interval_ms),
        velocity_encoding=_or(fh.venc, base.velocity_encoding),
        time_s=_or(fh.time_s, base.time_s), trigger_given=fh.trigger_given)


def multiframe_frames(ds: pydicom.Dataset, rel: str, h: dict[str, str]) -> list[DicomFrame]:
    """One frame per frame of an (enhanced) multi-frame image; ValueError/KeyError if its
    geometry is incomplete, decode errors as raised by the decoder."""
    headers = frame_headers(ds)
    base = frame_from_header(rel, {**h, "ImagePositionPatient": "0\\0\\0",
                                   "ImageOrientationPatient": "1\\0\\0\\0\\1\\0",
                                   "PixelSpacing": h.get("PixelSpacing") or "1\\1",
                                   "SequenceName": h.get("SequenceName")
                                   or h.get("PulseSequenceName", "")})
    arr = decode_pixels(ds).reshape(len(headers), base.rows, base.cols)
    photometric, bits = h.get("PhotometricInterpretation", ""), int(num(h.get("BitsStored"), 16))
    sop = h.get("SOPInstanceUID", "")
    frames = []
    for i, fh in enumerate(headers):
        missing = [name for name, v in (("ImagePositionPatient", fh.ipp),
                                        ("ImageOrientationPatient", fh.iop),
                                        ("PixelSpacing", fh.pixel_spacing)) if v is None]
        if missing:
            raise KeyError(f"frame {i + 1}: {', '.join(missing)} missing from the functional groups")
        pixels, note = stored_to_pixels(arr[i], fh.slope, fh.intercept, photometric, bits)
        frames.append(DicomFrame(
            file=FRAME_KEY.format(base=rel, frame=i + 1), series_uid=base.series_uid,
            series_number=base.series_number, series_time_s=base.series_time_s,
            instance_number=i + 1, sop_uid=FRAME_KEY.format(base=sop, frame=i + 1),
            ipp=floats("\\".join(map(str, fh.ipp)), 3, "ImagePositionPatient"),
            iop=floats("\\".join(map(str, fh.iop)), 6, "ImageOrientationPatient"),
            pixel_spacing=tuple(floats("\\".join(map(str, fh.pixel_spacing)), 2,
                                       "PixelSpacing").tolist()),
            rows=base.rows, cols=base.cols, trigger_time_ms=fh.trigger_time_ms,
            slice_thickness=fh.slice_thickness or base.slice_thickness, pixels=pixels,
            study_uid=base.study_uid, series_description=base.series_description,
            cardiac_images=base.cardiac_images, pixel_note=note,
            acquisition=_frame_acquisition(base.acquisition, fh)))
    return frames
