"""What reading one DICOM file gives: the image frames it holds, or the reason it was not used.

A :class:`DicomFrame` carries the header fields curation needs (geometry, timing, series), an
:class:`Acquisition` with the fields that tell a cardiac cine from the other series of an exam,
and the decoded pixels. A :class:`FileSkip` names a file that was not used and why; its
``reason`` is the ``problem`` column of the ``issues`` table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: skip reasons (the ``problem`` column of the ``issues`` table uses the same words)
SKIP_REASONS = ("not_dicom", "truncated", "no_pixel_data", "missing_tags", "unreadable",
                "decode_error", "colour", "secondary_capture", "dicomdir", "not_image",
                "too_large")
#: skips that are expected in any export (a DICOMDIR, a report, a screenshot): logged quietly
QUIET_SKIPS = frozenset({"dicomdir", "not_image", "secondary_capture"})
#: how a frame of a multi-frame file is named in ``file`` and keyed in masks (``sop_uid``)
FRAME_KEY = "{base}#{frame}"
NAN = math.nan


@dataclass(frozen=True, slots=True)
class Acquisition:
    """How an image was acquired, as far as its header says: the fields that tell a cine from a
    perfusion, flow, mapping, LGE, real-time or non-cardiac series. Text fields are upper case;
    a number the header does not give is NaN (0 for counts)."""

    manufacturer: str = ""
    image_type: str = ""            # ImageType (enhanced: FrameType), values joined by "\"
    complex_component: str = ""     # enhanced: MAGNITUDE, PHASE, REAL, IMAGINARY, MIXED
    sequence_name: str = ""         # SequenceName (Siemens: *tfi2d1_25, *fl2d1_v150in...)
    scanning_sequence: str = ""     # ScanningSequence (SE, GR, IR, EP...)
    scan_options: str = ""          # ScanOptions (CG = cardiac gating, PPG = pulse gating...)
    sync_technique: str = ""        # CardiacSynchronizationTechnique (NONE, PROSPECTIVE...)
    trigger_source: str = ""        # TriggerSourceOrType (ECG, PPG...)
    inversion_ms: float = NAN       # InversionTime (enhanced: InversionTimes)
    echo_ms: float = NAN            # EchoTime (enhanced: EffectiveEchoTime)
    time_s: float = NAN             # AcquisitionTime (else ContentTime), s since midnight
    nominal_interval_ms: float = NAN    # NominalInterval: the R-R interval
    heart_rate: float = NAN         # HeartRate (bpm)
    velocity_encoding: float = NAN  # a flow series' VENC (cm/s) where the header gives one
    ge_image_kind: int = -1         # GE private (0043,102F): 0 magnitude, 1 phase, 2 real, 3 imag.
    temporal_positions: int = 0     # NumberOfTemporalPositions (dynamics of an fMRI, DCE...)
    trigger_given: bool = True      # False: the header has no TriggerTime at all


#: an acquisition the header says nothing about (shared: frames read without one point here)
UNKNOWN_ACQUISITION = Acquisition()


@dataclass(slots=True)
class DicomFrame:
    """Header fields that curation needs, plus the decoded 2D pixels of one image.

    Geometry follows DICOM LPS: pixel (row r, col c) sits at
    ``ipp + c * pixel_spacing[1] * iop[:3] + r * pixel_spacing[0] * iop[3:]``.
    """

    file: str                       # path relative to the cohort root (posix)
    series_uid: str
    series_number: int
    series_time_s: float            # SeriesTime (or AcquisitionTime) in seconds since midnight
    instance_number: int
    sop_uid: str
    ipp: np.ndarray                 # (3,) float64
    iop: np.ndarray                 # (6,) float64: row direction, column direction
    pixel_spacing: tuple[float, float]   # (row spacing, column spacing) in mm
    rows: int
    cols: int
    trigger_time_ms: float
    slice_thickness: float
    pixels: np.ndarray | None = None
    study_uid: str = ""
    series_description: str = ""
    cardiac_images: int = 0         # CardiacNumberOfImages (0: not given)
    pixel_note: str = ""            # how stored values became pixels, when not 1:1
    acquisition: Acquisition = UNKNOWN_ACQUISITION


@dataclass(frozen=True, slots=True)
class FileSkip:
    """A file that was not used, and why."""

    file: str
    reason: str
    detail: str
