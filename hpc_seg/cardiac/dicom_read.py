"""Read one DICOM file once, with a guard: header fields, pixels, and non-binary metadata.

Every file is read with a single ``pydicom.dcmread`` (no second pass for pixels). A file that
cannot be parsed or decoded never raises: :func:`read_frame` returns a :class:`FileSkip` with a
short reason (``not_dicom``, ``truncated``, ``no_pixel_data``, ``missing_tags``, ``unreadable``,
``decode_error``) so the caller logs it and keeps the rest of the series.

Pixel decoding takes a fast path for native (uncompressed) single-frame grey images: the pixel
bytes are viewed with numpy directly, which is what ``pixel_array`` does too, minus its
per-call validation overhead. Anything else goes through ``pixel_array``: every transfer syntax
pydicom decodes (implicit VR, big endian, deflate, and with the pylibjpeg/pyjpegls plugins RLE,
JPEG lossless, JPEG-LS and JPEG 2000), and enhanced multi-frame images, whose frames become
one :class:`DicomFrame` each with the geometry of their functional groups
(:mod:`hpc_seg.cardiac.dicom_multiframe`); :func:`read_frames` returns them all.

Stored values become pixels as the header says: RescaleSlope/Intercept other than 1/0 give
float32 pixels ``stored * slope + intercept``, MONOCHROME1 is inverted to MONOCHROME2, signed
data stay signed; each frame says what was done in ``pixel_note`` (ingest records it).
DICOMDIR files and objects without an image are recognised (skip reasons ``dicomdir`` and
``not_image``, logged quietly).
"""

from __future__ import annotations

import io
import logging
import math
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
from pydicom.pixels import get_decoder, pixel_array

from hpc_seg.cardiac.decode_budget import (DEFLATED, file_too_large, header_too_large,
                                           inflated_too_large)
from hpc_seg.cardiac.dicom_multiframe import frame_headers, number_of_frames

log = logging.getLogger(__name__)

#: VRs whose values are binary blobs or nested data: left out of the ``dicom_metadata`` table.
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "SQ"})
PIXEL_DATA_TAG = 0x7FE00010

#: skip reasons (the ``problem`` column of the ``issues`` table uses the same words)
SKIP_REASONS = ("not_dicom", "truncated", "no_pixel_data", "missing_tags", "unreadable",
                "decode_error", "dicomdir", "not_image", "too_large")
#: skips that are expected in any export (a DICOMDIR, a structured report): no warning
QUIET_SKIPS = frozenset({"dicomdir", "not_image"})
MEDIA_DIRECTORY_UID = "1.2.840.10008.1.3.10"
#: how a frame of a multi-frame file is named in ``file`` and keyed in masks (``sop_uid``)
FRAME_KEY = "{base}#{frame}"


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


#: decoder plugins preferred over pydicom's default choice, where that is slower: for JPEG-LS
#: pydicom picks pylibjpeg (libjpeg), which decoded 256x208 uint16 cine frames 3.2x slower than
#: pyjpegls (CharLS) here (48 vs 15 ms per image on the shared 2-core machine). Same pixels.
PREFERRED_PLUGINS = {"1.2.840.10008.1.2.4.80": "pyjpegls", "1.2.840.10008.1.2.4.81": "pyjpegls"}


def decode_pixels(ds: pydicom.Dataset) -> np.ndarray:
    """``ds.pixel_array``, with the faster decoder plugin of :data:`PREFERRED_PLUGINS`."""
    tsyntax = ds.file_meta.get("TransferSyntaxUID", "") if hasattr(ds, "file_meta") else ""
    plugin = PREFERRED_PLUGINS.get(str(tsyntax))
    if plugin and plugin in _plugins(str(tsyntax)):
        return pixel_array(ds, decoding_plugin=plugin)
    return ds.pixel_array


_PLUGINS: dict[str, tuple[str, ...]] = {}


def _plugins(tsyntax: str) -> tuple[str, ...]:
    """The decoder plugins pydicom can use for ``tsyntax`` (cached: they do not change)."""
    if tsyntax not in _PLUGINS:
        try:
            _PLUGINS[tsyntax] = tuple(get_decoder(tsyntax).available_plugins)
        except (NotImplementedError, ValueError):
            _PLUGINS[tsyntax] = ()
    return _PLUGINS[tsyntax]


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
        arr = decode_pixels(ds)
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


def whole_number(text: str | None) -> int:
    """An IS value (SeriesNumber, InstanceNumber...) as an int; 0, as for a missing value, when
    it is not a whole number ('1.5', 'abc', 'inf'): ingest reports those (``bad_number``)."""
    value = _num(text)
    return int(value) if math.isfinite(value) and value == int(value) else 0


def _num(text: str | None, default: float = 0.0) -> float:
    try:
        return float(text.split("\\")[0]) if text else default
    except ValueError:
        return default


_EXPLICIT_LE = b"1.2.840.10008.1.2.1"
#: transfer syntaxes whose pixels may be viewed in place (explicit and implicit little endian)
_VIEWABLE = frozenset({_EXPLICIT_LE, b"1.2.840.10008.1.2"})
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


def file_meta_syntax(buf: bytes) -> tuple[int, bytes | None] | None:
    """(offset after the file meta group, TransferSyntaxUID bytes) of a Part-10 file in
    ``buf``; None when it has no DICM prefix or the meta group cannot be walked."""
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
    except struct.error:
        return None
    return pos, syntax


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
    meta = file_meta_syntax(buf)
    if meta is None or meta[1] != _EXPLICIT_LE:
        return None
    pos = meta[0]
    try:
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
        series_number=whole_number(h.get("SeriesNumber")),
        series_time_s=_dicom_time_s(h.get("SeriesTime") or h.get("AcquisitionTime")),
        instance_number=whole_number(h.get("InstanceNumber")),
        sop_uid=h.get("SOPInstanceUID", ""),
        ipp=_floats(h.get("ImagePositionPatient"), 3, "ImagePositionPatient"),
        iop=_floats(h.get("ImageOrientationPatient"), 6, "ImageOrientationPatient"),
        pixel_spacing=tuple(_floats(h.get("PixelSpacing"), 2, "PixelSpacing").tolist()),
        rows=int(h["Rows"]), cols=int(h["Columns"]),
        trigger_time_ms=_num(h.get("TriggerTime")),
        slice_thickness=_num(h.get("SliceThickness")),
        study_uid=h.get("StudyInstanceUID", ""),
        series_description=h.get("SeriesDescription", ""),
        cardiac_images=whole_number(h.get("CardiacNumberOfImages")),
    )


def stored_to_pixels(arr: np.ndarray, slope: float, intercept: float, photometric: str,
                     bits_stored: int) -> tuple[np.ndarray, str]:
    """Apply MONOCHROME1 inversion and the modality rescale; (pixels, note; "" = unchanged).

    The common case (MONOCHROME2, slope 1, intercept 0) returns ``arr`` itself: no copy.
    """
    notes = []
    if photometric.strip().upper() == "MONOCHROME1":
        # Inverted within the stored bit range, so 0 stays the darkest value after inversion.
        if arr.dtype.kind == "u":
            arr = (np.asarray((1 << bits_stored) - 1, arr.dtype) - arr).astype(arr.dtype)
        else:
            arr = np.invert(arr)
        notes.append("MONOCHROME1 inverted")
    if slope != 1.0 or intercept != 0.0:
        arr = arr.astype(np.float32) * np.float32(slope) + np.float32(intercept)
        notes.append(f"rescaled: slope {slope:g}, intercept {intercept:g} (float32)")
    if arr.dtype.kind == "i":
        notes.append(f"signed pixels ({arr.dtype})")
    return arr, "; ".join(notes)


def _transform(frame: DicomFrame, h: dict[str, str]) -> None:
    """:func:`stored_to_pixels` for a single-frame image whose header is ``h``."""
    slope, intercept = _num(h.get("RescaleSlope"), 1.0), _num(h.get("RescaleIntercept"), 0.0)
    photometric = h.get("PhotometricInterpretation", "")
    if slope == 1.0 and intercept == 0.0 and photometric != "MONOCHROME1" and \
            frame.pixels.dtype.kind == "u":
        return        # the common case, decided without a call
    frame.pixels, frame.pixel_note = stored_to_pixels(
        frame.pixels, slope, intercept, photometric, int(_num(h.get("BitsStored"), 16)))


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
        _transform(frame, h)
    except Exception as exc:
        return None, _decode_skip(rel, exc), meta
    return frame, None, meta


def _parse_whole(buf: bytes, pixel_at: int | None = None) -> pydicom.Dataset | None:
    """pydicom's parse of the whole file; None when it has no PixelData.

    pydicom returns an *empty* dataset, with only a warning, for encapsulated pixel data cut
    before its delimiter; so a parse without PixelData where the header parse stopped at a
    PixelData element (``pixel_at``) raises ValueError("truncated ...") instead.
    """
    ds = pydicom.dcmread(io.BytesIO(buf))
    if PIXEL_DATA_TAG in ds._dict:
        return ds
    if pixel_at is not None and len(buf) - pixel_at >= 8 and \
            buf[pixel_at:pixel_at + 4] in (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10"):
        raise ValueError("truncated pixel data: the file ends inside its (encapsulated) pixels")
    return None


def _special_skip(ds: pydicom.Dataset, h: dict[str, str], rel: str) -> FileSkip | None:
    """A DICOMDIR, or an object with no image (structured report, presentation state...)."""
    meta_class = ds.file_meta.get("MediaStorageSOPClassUID", "") if hasattr(ds, "file_meta") else ""
    if MEDIA_DIRECTORY_UID in (meta_class, h.get("SOPClassUID", "")) or \
            "DirectoryRecordSequence" in ds:
        return FileSkip(rel, "dicomdir", "a DICOMDIR (media directory), not an image")
    if "Rows" not in h and "PixelData" not in ds and "PerFrameFunctionalGroupsSequence" not in ds:
        return FileSkip(rel, "not_image", f"no image in this object (SOP class "
                                          f"{h.get('SOPClassUID') or meta_class or 'unknown'})")
    return None


def _multiframe_frames(ds: pydicom.Dataset, rel: str, h: dict[str, str]) -> list[DicomFrame]:
    """One frame per frame of an (enhanced) multi-frame image; ValueError/KeyError if its
    geometry is incomplete, decode errors as raised by ``pixel_array``."""
    headers = frame_headers(ds)
    base = _frame_from_header(rel, {**h, "ImagePositionPatient": "0\\0\\0",
                                    "ImageOrientationPatient": "1\\0\\0\\0\\1\\0",
                                    "PixelSpacing": h.get("PixelSpacing") or "1\\1"})
    arr = decode_pixels(ds).reshape(len(headers), base.rows, base.cols)
    photometric, bits = h.get("PhotometricInterpretation", ""), int(_num(h.get("BitsStored"), 16))
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
            ipp=_floats("\\".join(map(str, fh.ipp)), 3, "ImagePositionPatient"),
            iop=_floats("\\".join(map(str, fh.iop)), 6, "ImageOrientationPatient"),
            pixel_spacing=tuple(_floats("\\".join(map(str, fh.pixel_spacing)), 2,
                                        "PixelSpacing").tolist()),
            rows=base.rows, cols=base.cols, trigger_time_ms=fh.trigger_time_ms,
            slice_thickness=fh.slice_thickness or base.slice_thickness, pixels=pixels,
            study_uid=base.study_uid, series_description=base.series_description,
            cardiac_images=base.cardiac_images, pixel_note=note))
    return frames


def read_frame(path: Path, rel: str, *, with_metadata: bool = True, with_pixels: bool = True,
               max_bytes: int | None = None,
               ) -> tuple[DicomFrame | None, FileSkip | None, list[tuple[str, str, str, str, str]]]:
    """Read one single-frame file once. Returns (frame, None, metadata) or (None, skip, metadata).

    Metadata rows (file, tag, keyword, VR, value) are returned even for a file whose pixels
    fail to decode, so the ``dicom_metadata`` table documents skipped files too. A multi-frame
    file gives its first frame here; :func:`read_frames` gives all.
    """
    frames, skip, meta = read_frames(path, rel, with_metadata=with_metadata,
                                     with_pixels=with_pixels, max_bytes=max_bytes)
    return (frames[0] if frames else None), skip, meta


def read_frames(path: Path, rel: str, *, with_metadata: bool = True, with_pixels: bool = True,
                max_bytes: int | None = None,
                ) -> tuple[list[DicomFrame], FileSkip | None, list[tuple[str, str, str, str, str]]]:
    """Read one file once: ([frame], None, metadata) for a single-frame image, one frame per
    frame for a multi-frame image (``file`` and ``sop_uid`` get ``#<frame number>``), or
    ([], skip, metadata). ``max_bytes``: the decoded-size budget of
    :mod:`~hpc_seg.cardiac.decode_budget`, checked before each allocation it guards."""
    try:
        buf, pixel_at, whole = b"", 0, False
        if with_pixels:
            too_big = file_too_large(path, max_bytes)
            if too_big:
                return [], FileSkip(rel, "too_large", too_big), []
            # One read() of the whole file; the usual layout is parsed directly (fast_header),
            # anything else by pydicom from memory (~25 % faster than its many small reads
            # through a file object), stopping before the pixels, which are then viewed in
            # place (no copy) by _pixel_data_location/_view_pixels.
            with open(path, "rb") as fh:
                buf = fh.read()
            fast = _read_fast(buf, rel, with_metadata)
            if fast is not None:
                frame, skip, meta = fast
                return ([frame] if frame is not None else []), skip, meta
            # Pixels viewed in place (native little endian) are left out of the parse; files
            # pydicom decodes anyway (compressed, deflated, big endian) are parsed once, whole.
            meta = file_meta_syntax(buf)
            too_big = inflated_too_large(buf, meta[0], max_bytes) \
                if meta is not None and meta[1] == DEFLATED else None
            if too_big:
                return [], FileSkip(rel, "too_large", too_big), []
            whole = meta is not None and meta[1] not in _VIEWABLE
            ds = None
            if whole:
                try:
                    ds = _parse_whole(buf)
                except Exception:  # e.g. cut inside the pixels: classify as below, header first
                    ds = None
                whole = ds is not None
            if ds is None:
                bio = io.BytesIO(buf)
                ds = pydicom.dcmread(bio, stop_before_pixels=True)
                pixel_at = bio.tell()
        else:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError as exc:
        return [], FileSkip(rel, "not_dicom", f"not a DICOM file: {exc}"), []
    except OSError as exc:
        return [], FileSkip(rel, "unreadable", f"{exc.strerror or exc}"), []
    except Exception as exc:  # pydicom raises many types on garbage; the file is still just bad
        return [], FileSkip(rel, "not_dicom", f"cannot parse: {type(exc).__name__}: {exc}"), []
    elements = element_texts(ds)
    h = {kw: text for _tag, kw, _vr, text in elements if kw}
    meta = [(rel, *e) for e in elements] if with_metadata else []
    special = _special_skip(ds, h, rel)
    if special is not None:
        return [], special, meta
    too_big = header_too_large(h, max_bytes) if with_pixels else None
    if too_big:
        return [], FileSkip(rel, "too_large", too_big), meta
    if number_of_frames(ds) > 1 or "PerFrameFunctionalGroupsSequence" in ds:
        if not with_pixels:
            return [], FileSkip(rel, "decode_error", "multi-frame file read without pixels"), meta
        try:
            ds = ds if whole else _parse_whole(buf, pixel_at)
            if ds is None:
                return [], FileSkip(rel, "no_pixel_data", "header has no PixelData element"), meta
            return _multiframe_frames(ds, rel, h), None, meta
        except (KeyError, TypeError) as exc:
            return [], FileSkip(rel, "missing_tags", f"geometry header incomplete: {exc}"), meta
        except Exception as exc:
            return [], _decode_skip(rel, exc), meta
    try:
        frame = _frame_from_header(rel, h)
    except (KeyError, ValueError, TypeError) as exc:
        return [], FileSkip(rel, "missing_tags", f"geometry header incomplete: {exc}"), meta
    if not with_pixels:
        return [frame], None, meta
    try:
        where = _pixel_data_location(ds, h, buf, pixel_at)
        if where is None:     # not a layout viewed directly: let pydicom parse and decode
            ds = ds if whole else _parse_whole(buf, pixel_at)
            where = "absent" if ds is None else None
        if where == "absent":
            return [], FileSkip(rel, "no_pixel_data", "header has no PixelData element"), meta
        frame.pixels = _pixels(ds, h) if where is None else _view_pixels(buf, where, h)
        if frame.pixels.shape != (frame.rows, frame.cols):
            return [], FileSkip(rel, "decode_error",
                                f"pixels {frame.pixels.shape} != Rows x Columns"), meta
        _transform(frame, h)
    except Exception as exc:
        return [], _decode_skip(rel, exc), meta
    return [frame], None, meta
