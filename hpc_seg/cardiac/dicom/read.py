"""Read one DICOM file once, with a guard: its image frames, or why it was not used.

:func:`read_frames` reads the whole file with one ``read()``. The common layout (explicit VR
little endian, native grey pixels) is parsed by :func:`~.header.fast_header` and its pixels are
viewed in place; anything else is parsed by pydicom from memory, stopping before native pixels
(which are then viewed in place too) or parsing the whole file where pydicom must decode them
(compressed, deflated, big endian, multi-frame). Enhanced multi-frame images give one
:class:`DicomFrame` per frame (:mod:`.multiframe`).

A file that cannot be used never raises; it gives a :class:`FileSkip` whose reason says why:
``not_dicom``, ``unreadable``, ``truncated``, ``no_pixel_data``, ``missing_tags``,
``decode_error`` (no decoder plugin could decode it), ``colour`` (an RGB/YBR/palette image), and,
quietly because every export holds some, ``dicomdir``, ``secondary_capture`` and ``not_image``
(reports, documents, presentation states). What pydicom itself logged or warned while reading
the file is returned as one-line messages (:mod:`.pydicom_log`) instead of reaching the console.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import NamedTuple

import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, MediaStorageDirectoryStorage

from hpc_seg.cardiac.decode_budget import (DEFLATED, file_too_large, header_too_large,
                                           inflated_too_large)
from hpc_seg.cardiac.dicom import pydicom_log
from hpc_seg.cardiac.dicom.frame import DicomFrame, FileSkip
from hpc_seg.cardiac.dicom.header import (PIXEL_DATA_TAG, VIEWABLE_SYNTAXES, element_texts,
                                          fast_header, file_meta_syntax, frame_from_header,
                                          header_dict)
from hpc_seg.cardiac.dicom.multiframe import multiframe_frames, number_of_frames
from hpc_seg.cardiac.dicom.pixels import (colour_reason, first_line, header_to_pixels,
                                          native_grey, native_pixels, pixel_data_location,
                                          view_pixels)

MetaRow = tuple[str, str, str, str, str]
#: Secondary Capture Image Storage and its multi-frame variants: screenshots, scanned reports
SECONDARY_CAPTURE_UIDS = "1.2.840.10008.5.1.4.1.1.7"


class FileRead(NamedTuple):
    """What reading one file gave."""

    frames: list[DicomFrame]
    skip: FileSkip | None
    meta: list[MetaRow]
    """(file, tag, keyword, VR, value) rows for ``dicom_metadata``, skipped files included"""
    pydicom_log: tuple[str, ...] = ()
    """what pydicom logged or warned while reading this file, one line each"""


def read_frame(path: Path, rel: str, *, with_metadata: bool = True, with_pixels: bool = True,
               with_acquisition: bool = True, max_bytes: int | None = None,
               ) -> tuple[DicomFrame | None, FileSkip | None, list[MetaRow]]:
    """Read one single-frame file once: (frame, None, metadata) or (None, skip, metadata). A
    multi-frame file gives its first frame here; :func:`read_frames` gives all."""
    got = read_frames(path, rel, with_metadata=with_metadata, with_pixels=with_pixels,
                      with_acquisition=with_acquisition, max_bytes=max_bytes)
    return (got.frames[0] if got.frames else None), got.skip, got.meta


def read_frames(path: Path, rel: str, *, with_metadata: bool = True,
                with_pixels: bool = True, with_acquisition: bool = True,
                max_bytes: int | None = None) -> FileRead:
    """Read one file once: one frame for a single-frame image, one per frame for a
    multi-frame image (``file`` and ``sop_uid`` get ``#<frame number>``), or a skip.

    Metadata rows are returned even for a file whose pixels fail to decode, so the
    ``dicom_metadata`` table documents skipped files too. ``with_acquisition=False`` leaves
    each frame's :class:`~.frame.Acquisition` empty (it is only needed to tell series apart).
    ``max_bytes``: the decoded-size budget of :mod:`~hpc_seg.cardiac.decode_budget`, checked
    before each allocation it guards (a file over it is skipped as ``too_large``).
    """
    buf = b""
    if with_pixels:
        too_big = file_too_large(path, max_bytes)
        if too_big:
            return FileRead([], FileSkip(rel, "too_large", too_big), [])
        try:
            with open(path, "rb") as fh:
                buf = fh.read()
        except OSError as exc:
            return FileRead([], FileSkip(rel, "unreadable", f"{exc.strerror or exc}"), [])
        fast = _read_fast(buf, rel, with_metadata, with_acquisition)
        if fast is not None:
            return fast
    with pydicom_log.captured() as messages:
        got = _read_with_pydicom(path, buf, rel, with_metadata, with_pixels, with_acquisition,
                                 max_bytes)
    return got._replace(pydicom_log=tuple(messages))


def _decode_skip(rel: str, exc: Exception) -> FileSkip:
    text = " ".join(str(exc).split()) or type(exc).__name__      # one line, however long
    text = text if len(text) <= 500 else text[:497] + "..."
    reason = "truncated" if ("truncated" in text or "less than expected" in text) else "decode_error"
    return FileSkip(rel, reason, f"cannot decode pixels: {text}")


def _read_fast(buf: bytes, rel: str, with_metadata: bool, with_acquisition: bool,
               ) -> FileRead | None:
    """:func:`read_frames` for the layout :func:`fast_header` parses; None = not that layout."""
    parsed = fast_header(buf)
    if parsed is None:
        return None
    elements, where = parsed
    h = header_dict(elements)
    if not native_grey(h):
        return None
    meta = [(rel, *e) for e in elements] if with_metadata else []
    try:
        frame = frame_from_header(rel, h, with_acquisition)
    except (KeyError, ValueError, TypeError) as exc:
        return FileRead([], FileSkip(rel, "missing_tags", f"geometry header incomplete: {exc}"), meta)
    if where == "absent":
        return FileRead([], FileSkip(rel, "no_pixel_data", "header has no PixelData element"), meta)
    try:
        frame.pixels, frame.pixel_note = header_to_pixels(view_pixels(buf, where, h), h)
    except Exception as exc:
        return FileRead([], _decode_skip(rel, exc), meta)
    return FileRead([frame], None, meta)


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


def _sop_class_name(uid: str) -> str:
    name = UID(uid).name if uid else ""
    return f"{name} ({uid})" if name and name != uid else (uid or "unknown")


def _not_an_mr_image(ds: pydicom.Dataset, h: dict[str, str], rel: str) -> FileSkip | None:
    """A DICOMDIR, an object with no image (report, document, presentation state...), a
    secondary capture, or a colour image."""
    meta_class = ds.file_meta.get("MediaStorageSOPClassUID", "") if hasattr(ds, "file_meta") else ""
    sop_class = h.get("SOPClassUID") or str(meta_class)
    if MediaStorageDirectoryStorage in (meta_class, sop_class) or "DirectoryRecordSequence" in ds:
        return FileSkip(rel, "dicomdir", "a DICOMDIR (media directory), not an image")
    if "Rows" not in h and "PixelData" not in ds and "PerFrameFunctionalGroupsSequence" not in ds:
        return FileSkip(rel, "not_image", f"no image in this object (SOP class "
                                          f"{_sop_class_name(sop_class)})")
    if sop_class.startswith(SECONDARY_CAPTURE_UIDS):
        return FileSkip(rel, "secondary_capture", f"a secondary capture (a screenshot or scanned "
                        f"page, SOP class {_sop_class_name(sop_class)}), not an acquired image")
    colour = colour_reason(h)
    if colour is not None:
        return FileSkip(rel, "colour", colour)
    return None


def _read_with_pydicom(path: Path, buf: bytes, rel: str, with_metadata: bool,
                       with_pixels: bool, with_acquisition: bool,
                       max_bytes: int | None = None) -> FileRead:
    """:func:`read_frames` for every layout that :func:`fast_header` does not take."""
    try:
        pixel_at, whole = 0, False
        if with_pixels:
            # Pixels viewed in place (native little endian) are left out of the parse; files
            # pydicom decodes anyway (compressed, deflated, big endian) are parsed once, whole.
            meta = file_meta_syntax(buf)
            too_big = inflated_too_large(buf, meta[0], max_bytes) \
                if meta is not None and meta[1] == DEFLATED else None
            if too_big:     # pydicom would inflate the whole dataset into memory first
                return FileRead([], FileSkip(rel, "too_large", too_big), [])
            whole = meta is not None and meta[1] not in VIEWABLE_SYNTAXES
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
        return FileRead([], FileSkip(rel, "not_dicom", f"not a DICOM file: {exc}"), [])
    except OSError as exc:
        return FileRead([], FileSkip(rel, "unreadable", f"{exc.strerror or exc}"), [])
    except Exception as exc:  # pydicom raises many types on garbage; the file is still just bad
        return FileRead([], FileSkip(rel, "not_dicom",
                                     f"cannot parse: {type(exc).__name__}: {first_line(exc)}"), [])
    elements = element_texts(ds)
    h = header_dict(elements)
    meta = [(rel, *e) for e in elements] if with_metadata else []
    special = _not_an_mr_image(ds, h, rel)
    if special is not None:
        return FileRead([], special, meta)
    too_big = header_too_large(h, max_bytes) if with_pixels else None
    if too_big:
        return FileRead([], FileSkip(rel, "too_large", too_big), meta)
    if number_of_frames(ds) > 1 or "PerFrameFunctionalGroupsSequence" in ds:
        if not with_pixels:
            return FileRead([], FileSkip(rel, "decode_error", "multi-frame file read without pixels"),
                            meta)
        try:
            ds = ds if whole else _parse_whole(buf, pixel_at)
            if ds is None:
                return FileRead([], FileSkip(rel, "no_pixel_data", "header has no PixelData element"),
                                meta)
            return FileRead(multiframe_frames(ds, rel, h), None, meta)
        except (KeyError, TypeError) as exc:
            return FileRead([], FileSkip(rel, "missing_tags", f"geometry header incomplete: {exc}"),
                            meta)
        except Exception as exc:
            return FileRead([], _decode_skip(rel, exc), meta)
    try:
        frame = frame_from_header(rel, h, with_acquisition)
    except (KeyError, ValueError, TypeError) as exc:
        return FileRead([], FileSkip(rel, "missing_tags", f"geometry header incomplete: {exc}"), meta)
    if not with_pixels:
        return FileRead([frame], None, meta)
    try:
        where = pixel_data_location(ds, h, buf, pixel_at)
        if where is None:     # not a layout viewed directly: let pydicom parse and decode
            ds = ds if whole else _parse_whole(buf, pixel_at)
            where = "absent" if ds is None else None
        if where == "absent":
            return FileRead([], FileSkip(rel, "no_pixel_data", "header has no PixelData element"),
                            meta)
        pixels = native_pixels(ds, h) if where is None else view_pixels(buf, where, h)
        if pixels.shape != (frame.rows, frame.cols):
            return FileRead([], FileSkip(rel, "decode_error",
                                         f"pixels {pixels.shape} != Rows x Columns"), meta)
        frame.pixels, frame.pixel_note = header_to_pixels(pixels, h)
    except Exception as exc:
        return FileRead([], _decode_skip(rel, exc), meta)
    return FileRead([frame], None, meta)
