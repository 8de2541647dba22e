"""Read one DICOM file once, with a guard: header fields, pixels, and non-binary metadata.

Every file is read with a single ``pydicom.dcmread`` (no second pass for pixels). A file that
cannot be parsed or decoded never raises: :func:`read_frame` returns a :class:`FileSkip` with a
short reason (``not_dicom``, ``truncated``, ``no_pixel_data``, ``missing_tags``, ``unreadable``,
``decode_error``) so the caller logs it and keeps the rest of the series.

Pixel decoding takes a fast path for native (uncompressed) single-frame grey images: the pixel
bytes are viewed with numpy directly, which is what ``pixel_array`` does too, minus its
per-call validation overhead. Anything else (compressed transfer syntaxes, RGB, multi-frame)
goes through ``pixel_array``.
"""

from __future__ import annotations

import io
import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

log = logging.getLogger(__name__)

#: VRs whose values are binary blobs or nested data: left out of the ``dicom_metadata`` table.
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "SQ"})
PIXEL_DATA_TAG = 0x7FE00010

#: skip reasons (the ``problem`` column of the ``issues`` table uses the same words)
SKIP_REASONS = ("not_dicom", "truncated", "no_pixel_data", "missing_tags", "unreadable",
                "decode_error")


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
    cardiac_images: int = 0         # CardiacNumberOfImages: phases per cycle (0 = not given)


@dataclass(frozen=True, slots=True)
class FileSkip:
    """A file that was not used, and why."""

    file: str
    reason: str
    detail: str


def _dicom_time_s(value: Any) -> float:
    """'HHMMSS.ffffff' → seconds since midnight; missing or odd values give 0.0."""
    text = str(value or "").strip()
    if len(text) < 2:
        return 0.0
    try:
        hh = int(text[0:2])
        mm = int(text[2:4]) if len(text) >= 4 else 0
        ss = float(text[4:]) if len(text) > 4 else 0.0
    except ValueError:
        return 0.0
    return hh * 3600.0 + mm * 60.0 + ss


_STRUCT_CODES = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "UV": "Q",
                 "SV": "q"}
_SPLIT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM", "UI"})
_TEXT_VRS = _SPLIT_VRS | {"LT", "ST", "UC", "UR", "UT"}
_TAG_NAMES: dict[int, tuple[str, str]] = {}


def _tag_names(tag: int) -> tuple[str, str]:
    """(tag as 8 hex digits, keyword or ""), cached: the same ~50 tags recur in every file."""
    names = _TAG_NAMES.get(tag)
    if names is None:
        names = _TAG_NAMES[tag] = (f"{tag:08X}", keyword_for_tag(tag) or "")
    return names


def _raw_text(raw: RawDataElement, vr: str) -> str | None:
    """Text of a raw element without pydicom's value conversion; None = use the slow path."""
    return _value_text(raw.value, vr, raw.is_little_endian)


def _value_text(value: bytes | None, vr: str, little_endian: bool) -> str | None:
    """Text of an element's raw value bytes (see :func:`_raw_text`)."""
    if value is None:
        return ""
    if vr in _TEXT_VRS:
        if not value.isascii():      # character sets other than ASCII: let pydicom decode
            return None
        text = value.decode("ascii").strip("\x00 ")
        if vr in _SPLIT_VRS and "\\" in text:
            text = "\\".join(part.strip("\x00 ") for part in text.split("\\"))
        return text
    code = _STRUCT_CODES.get(vr)
    if code is None:
        return None
    n = len(value) // struct.calcsize(code)
    values = struct.unpack(f"{'<' if little_endian else '>'}{n}{code}", value[:n * struct.calcsize(code)])
    return "\\".join(str(v) for v in values)


def element_texts(ds: pydicom.Dataset) -> list[tuple[str, str, str, str]]:
    """Top-level non-binary elements as (tag as 8 hex digits, keyword, VR, value as text),
    PixelData excluded.

    Raw elements are decoded directly (ASCII text split on backslashes, binary numbers via
    struct), which is several times cheaper than pydicom's per-element conversion; anything
    unusual (other character sets, implicit private tags) takes pydicom's own path.
    """
    rows = []
    for tag, elem in ds._dict.items():
        if tag == PIXEL_DATA_TAG:
            continue
        vr = elem.VR
        if vr is None:
            try:
                vr = dictionary_VR(tag)
            except KeyError:
                vr = "UN"
        if vr in BINARY_VRS:
            continue
        text = _raw_text(elem, vr) if isinstance(elem, RawDataElement) else None
        if text is None:
            try:
                value = ds[tag].value
                text = "\\".join(str(v) for v in value) if isinstance(value, MultiValue) else \
                    ("" if value is None else str(value))
            except Exception as exc:  # a malformed element must not lose the file
                text = f"<unreadable: {exc}>"
        rows.append((*_tag_names(int(tag)), vr, text))
    return rows


def _pixels(ds: pydicom.Dataset, h: dict[str, str]) -> np.ndarray:
    """Decode the 2D pixel array; raises ValueError("truncated ...") on short pixel data.

    Native single-frame grey images are viewed with numpy directly (what ``pixel_array``
    does too, minus its per-call validation); anything else goes through ``pixel_array``.
    """
    tsyntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    raw = ds._dict.get(PIXEL_DATA_TAG)
    native = (tsyntax is not None and not tsyntax.is_compressed and not tsyntax.is_deflated
              and isinstance(raw, RawDataElement) and isinstance(raw.value, bytes)
              and h.get("SamplesPerPixel", "1") == "1" and h.get("NumberOfFrames", "1") in ("", "1")
              and h.get("BitsAllocated") in ("8", "16", "32"))
    if not native:
        arr = ds.pixel_array
        if arr.ndim != 2:
            raise ValueError(f"expected a 2D grey image, got shape {arr.shape}")
        return arr
    bits = int(h["BitsAllocated"])
    signed = h.get("PixelRepresentation", "0") == "1"
    dtype = np.dtype(f"{'i' if signed else 'u'}{bits // 8}")
    dtype = dtype.newbyteorder("<" if tsyntax.is_little_endian else ">")
    rows, cols = int(h["Rows"]), int(h["Columns"])
    need = rows * cols * dtype.itemsize
    if len(raw.value) < need:
        raise ValueError(f"truncated pixel data: {len(raw.value)} of {need} bytes")
    arr = np.frombuffer(raw.value, dtype=dtype, count=rows * cols).reshape(rows, cols)
    # A view into the file bytes (no copy): the frame is copied once, into its stack.
    return arr.astype(dtype.newbyteorder("="), copy=False)


_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"})


def _pixel_data_location(ds: pydicom.Dataset, h: dict[str, str], buf: bytes, pos: int,
                         ) -> tuple[int, int] | str | None:
    """Where the native PixelData value starts in ``buf``, for a header parse that stopped at
    ``pos``: (offset, declared length); "absent" when the file ends there; None when the
    layout is not one read directly (compressed, big endian, colour, multi-frame...)."""
    tsyntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if tsyntax is None or tsyntax.is_compressed or tsyntax.is_deflated or not tsyntax.is_little_endian:
        return None
    if not _native_grey(h):
        return None
    if len(buf) - pos < 8:
        return "absent"
    if struct.unpack_from("<HH", buf, pos) != (0x7FE0, 0x0010):
        return None
    if tsyntax.is_implicit_VR:
        length, offset = struct.unpack_from("<I", buf, pos + 4)[0], pos + 8
    elif buf[pos + 4:pos + 6] in _LONG_VRS:
        length, offset = struct.unpack_from("<I", buf, pos + 8)[0], pos + 12
    else:
        length, offset = struct.unpack_from("<H", buf, pos + 6)[0], pos + 8
    if length == 0xFFFFFFFF:      # encapsulated (compressed) despite the transfer syntax
        return None
    return offset, length


def _view_pixels(buf: bytes, where: tuple[int, int], h: dict[str, str]) -> np.ndarray:
    """The 2D pixels as a read-only view into ``buf``; ValueError("truncated ...") if short."""
    offset, length = where
    bits = int(h["BitsAllocated"])
    dtype = np.dtype(f"<{'i' if h.get('PixelRepresentation', '0') == '1' else 'u'}{bits // 8}")
    rows, cols = int(h["Rows"]), int(h["Columns"])
    need = rows * cols * dtype.itemsize
    have = min(length, len(buf) - offset)
    if have < need:
        raise ValueError(f"truncated pixel data: {have} of {need} bytes")
    return np.frombuffer(buf, dtype=dtype, count=rows * cols, offset=offset).reshape(rows, cols) \
        .astype(dtype.newbyteorder("="), copy=False)


def _floats(text: str | None, n: int, name: str) -> np.ndarray:
    if not text:
        raise ValueError(f"{name} missing")
    arr = np.asarray([float(v) for v in text.split("\\")], dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{name} has {arr.size} values, expected {n}")
    return arr


def _num(text: str | None, default: float = 0.0) -> float:
    try:
        return float(text.split("\\")[0]) if text else default
    except ValueError:
        return default


_EXPLICIT_LE = b"1.2.840.10008.1.2.1"
#: an explicit-VR element header: group, element, VR, 16-bit length (long VRs: 32-bit after it)
_HEAD = struct.Struct("<HH2sH")
_U32 = struct.Struct("<I")
#: the VRs of the standard (PS3.5 6.2), bytes → str
_VRS = {vr.encode(): vr for vr in (
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN "
    "UR US UT UV").split()}


def _element_at(buf: bytes, pos: int) -> tuple[int, int, bytes, int, int]:
    """(group, element, VR bytes, value offset, value length) of the explicit-VR LE element
    at ``pos``."""
    group, elem, vrb, length = _HEAD.unpack_from(buf, pos)
    if vrb in _LONG_VRS:
        return group, elem, vrb, pos + 12, _U32.unpack_from(buf, pos + 8)[0]
    return group, elem, vrb, pos + 8, length


def fast_header(buf: bytes) -> tuple[list[tuple[str, str, str, str]], tuple[int, int] | str] | None:
    """The common layout parsed directly: (element texts as :func:`element_texts` gives them,
    PixelData (offset, length) or "absent"); None for anything else (pydicom then reads it).

    Handles Part-10 files in explicit VR little endian whose top-level elements all have defined
    lengths and ASCII text. It walks the element headers with ``struct`` only, which is ~3x
    cheaper than ``dcmread`` (a Dataset, a RawDataElement and several attribute sets per
    element); any irregularity (truncation, sequences of undefined length, other character
    sets, trailing bytes) returns None, so classification of bad files stays pydicom's.
    """
    n = len(buf)
    if n < 144 or buf[128:132] != b"DICM":
        return None
    pos, syntax = 132, None
    try:
        while pos + 8 <= n and buf[pos:pos + 2] == b"\x02\x00":      # group 2, file meta
            _group, elem, _vr, start, length = _element_at(buf, pos)
            if elem == 0x0010:
                syntax = buf[start:start + length].rstrip(b"\x00 ")
            pos = start + length
        if syntax != _EXPLICIT_LE:
            return None
        rows = []
        while pos + 8 <= n:
            group, elem, vrb, start, length = _element_at(buf, pos)
            vr = _VRS.get(vrb)
            if vr is None:            # not a VR at all: leave the file to pydicom
                return None
            if group == 0x7FE0 and elem == 0x0010:
                return (rows, (start, length)) if length != 0xFFFFFFFF else None
            if length == 0xFFFFFFFF or start + length > n or group in (0x0002, 0xFFFE):
                return None
            if vr not in BINARY_VRS:
                text = _value_text(buf[start:start + length], vr, True)
                if text is None:
                    return None
                rows.append((*_tag_names(group << 16 | elem), vr, text))
            pos = start + length
    except (struct.error, UnicodeDecodeError):
        return None
    return (rows, "absent") if pos == n else None


def _native_grey(h: dict[str, str]) -> bool:
    """Pixels that :func:`_view_pixels` views directly (1 sample, 1 frame, 8/16/32 bits)."""
    return (h.get("SamplesPerPixel", "1") == "1" and h.get("NumberOfFrames", "1") in ("", "1")
            and h.get("BitsAllocated") in ("8", "16", "32"))


def _frame_from_header(rel: str, h: dict[str, str]) -> DicomFrame:
    """The header fields of a :class:`DicomFrame` (KeyError/ValueError/TypeError if missing)."""
    return DicomFrame(
        file=rel,
        series_uid=h.get("SeriesInstanceUID", ""),
        series_number=int(_num(h.get("SeriesNumber"))),
        series_time_s=_dicom_time_s(h.get("SeriesTime") or h.get("AcquisitionTime")),
        instance_number=int(_num(h.get("InstanceNumber"))),
        sop_uid=h.get("SOPInstanceUID", ""),
        ipp=_floats(h.get("ImagePositionPatient"), 3, "ImagePositionPatient"),
        iop=_floats(h.get("ImageOrientationPatient"), 6, "ImageOrientationPatient"),
        pixel_spacing=tuple(_floats(h.get("PixelSpacing"), 2, "PixelSpacing").tolist()),
        rows=int(h["Rows"]), cols=int(h["Columns"]),
        trigger_time_ms=_num(h.get("TriggerTime")),
        slice_thickness=_num(h.get("SliceThickness")),
        cardiac_images=int(_num(h.get("CardiacNumberOfImages"))),
    )


def _decode_skip(rel: str, exc: Exception) -> FileSkip:
    text = str(exc)
    reason = "truncated" if ("truncated" in text or "less than expected" in text) else "decode_error"
    return FileSkip(rel, reason, f"cannot decode pixels: {text}")


def _read_fast(buf: bytes, rel: str, with_metadata: bool,
               ) -> tuple[DicomFrame | None, FileSkip | None, list] | None:
    """:func:`read_frame` for the layout :func:`fast_header` parses; None = not that layout."""
    parsed = fast_header(buf)
    if parsed is None:
        return None
    elements, where = parsed
    h = {kw: text for _tag, kw, _vr, text in elements if kw}
    if not _native_grey(h):
        return None
    meta = [(rel, *e) for e in elements] if with_metadata else []
    try:
        frame = _frame_from_header(rel, h)
    except (KeyError, ValueError, TypeError) as exc:
        return None, FileSkip(rel, "missing_tags", f"geometry header incomplete: {exc}"), meta
    if where == "absent":
        return None, FileSkip(rel, "no_pixel_data", "header has no PixelData element"), meta
    try:
        frame.pixels = _view_pixels(buf, where, h)
    except Exception as exc:
        return None, _decode_skip(rel, exc), meta
    return frame, None, meta


def read_frame(path: Path, rel: str, *, with_metadata: bool = True, with_pixels: bool = True,
               ) -> tuple[DicomFrame | None, FileSkip | None, list[tuple[str, str, str, str, str]]]:
    """Read one file once. Returns (frame, None, metadata) or (None, skip, metadata).

    Metadata rows (file, tag, keyword, VR, value) are returned even for a file whose pixels
    fail to decode, so the ``dicom_metadata`` table documents skipped files too.
    """
    try:
        buf, pixel_at = b"", 0
        if with_pixels:
            # One read() of the whole file; the usual layout is parsed directly (fast_header),
            # anything else by pydicom from memory (~25 % faster than its many small reads
            # through a file object), stopping before the pixels, which are then viewed in
            # place (no copy) by _pixel_data_location/_view_pixels.
            with open(path, "rb") as fh:
                buf = fh.read()
            fast = _read_fast(buf, rel, with_metadata)
            if fast is not None:
                return fast
            bio = io.BytesIO(buf)
            ds = pydicom.dcmread(bio, stop_before_pixels=True)
            pixel_at = bio.tell()
        else:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError as exc:
        return None, FileSkip(rel, "not_dicom", f"not a DICOM file: {exc}"), []
    except OSError as exc:
        return None, FileSkip(rel, "unreadable", f"{exc.strerror or exc}"), []
    except Exception as exc:  # pydicom raises many types on garbage; the file is still just bad
        return None, FileSkip(rel, "not_dicom", f"cannot parse: {type(exc).__name__}: {exc}"), []
    elements = element_texts(ds)
    h = {kw: text for _tag, kw, _vr, text in elements if kw}
    meta = [(rel, *e) for e in elements] if with_metadata else []
    try:
        frame = _frame_from_header(rel, h)
    except (KeyError, ValueError, TypeError) as exc:
        return None, FileSkip(rel, "missing_tags", f"geometry header incomplete: {exc}"), meta
    if not with_pixels:
        return frame, None, meta
    try:
        where = _pixel_data_location(ds, h, buf, pixel_at)
        if where is None:     # not a layout viewed directly: let pydicom parse and decode
            ds = pydicom.dcmread(io.BytesIO(buf))
            where = "absent" if PIXEL_DATA_TAG not in ds._dict else None
        if where == "absent":
            return None, FileSkip(rel, "no_pixel_data", "header has no PixelData element"), meta
        frame.pixels = _pixels(ds, h) if where is None else _view_pixels(buf, where, h)
    except Exception as exc:
        return None, _decode_skip(rel, exc), meta
    if frame.pixels.shape != (frame.rows, frame.cols):
        return None, FileSkip(rel, "decode_error",
                              f"pixels {frame.pixels.shape} != Rows x Columns"), meta
    return frame, None, meta
