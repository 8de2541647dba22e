"""Pixels of a DICOM image: viewed in place where they are stored plainly, decoded otherwise.

Native (uncompressed) little-endian single-frame grey images, the bulk of any cohort, are viewed
with numpy directly in the bytes of the file (:func:`pixel_data_location`, :func:`view_pixels`):
no copy, and none of ``pixel_array``'s per-call validation. Anything else is decoded by pydicom
(:func:`decode_pixels`): every transfer syntax it handles (implicit VR, big endian, deflate, and
with the pylibjpeg/pyjpegls plugins RLE, JPEG lossless, JPEG-LS and JPEG 2000), trying each
decoder plugin in turn, the fastest first, before a file is given up.

Stored values become pixels as the header says (:func:`stored_to_pixels`): RescaleSlope/Intercept
other than 1/0 give float32 ``stored * slope + intercept``, MONOCHROME1 is inverted to
MONOCHROME2, signed data stay signed, each with a note that ingest records.
"""

from __future__ import annotations

import struct

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.pixels import get_decoder, pixel_array

from hpc_seg.cardiac.dicom.header import LONG_VRS, PIXEL_DATA_TAG, num

#: decoder plugins tried before the others, where pydicom's own order is slower: for JPEG-LS
#: pydicom picks pylibjpeg (libjpeg), which decoded 256x208 uint16 cine frames 3.2x slower than
#: pyjpegls (CharLS) here (48 vs 15 ms per image on the shared 2-core machine). Same pixels.
PREFERRED_PLUGINS = {"1.2.840.10008.1.2.4.80": "pyjpegls", "1.2.840.10008.1.2.4.81": "pyjpegls"}
#: photometric interpretations of colour images (ingest reads grey images only)
COLOUR = ("RGB", "YBR", "PALETTE", "ARGB", "CMYK", "HSV")

_PLUGINS: dict[str, tuple[str, ...]] = {}


def _plugins(tsyntax: str) -> tuple[str, ...]:
    """The decoder plugins pydicom can use for ``tsyntax``, preferred first (cached)."""
    if tsyntax not in _PLUGINS:
        try:
            found = list(get_decoder(tsyntax).available_plugins)
        except (NotImplementedError, ValueError):
            found = []
        first = PREFERRED_PLUGINS.get(tsyntax)
        if first in found:
            found.remove(first)
            found.insert(0, first)
        _PLUGINS[tsyntax] = tuple(found)
    return _PLUGINS[tsyntax]


def decode_pixels(ds: pydicom.Dataset) -> np.ndarray:
    """The pixel array of ``ds``, trying each available decoder plugin in turn.

    One plugin failing on a valid stream is not rare: CharLS (pyjpegls) refuses a JPEG-LS frame
    split over several fragments that libjpeg (pylibjpeg) decodes. ValueError lists every
    plugin's error when none succeeds.
    """
    tsyntax = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    plugins = _plugins(tsyntax)
    if len(plugins) < 2:
        return ds.pixel_array
    errors = []
    for plugin in plugins:
        try:
            return pixel_array(ds, decoding_plugin=plugin)
        except Exception as exc:  # each plugin raises its own types; the next may succeed
            errors.append(f"{plugin}: {_plugin_error(exc, plugin)}")
    raise ValueError("no decoder plugin could decode the pixels (" + "; ".join(errors) + ")")


def _plugin_error(exc: BaseException, plugin: str) -> str:
    """One plugin's own error: pydicom wraps it as "Unable to decode ...:\n  <plugin>: <why>"."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Unable to decode"):
        lines = lines[1:]
    text = " ".join(lines) or type(exc).__name__
    return text.removeprefix(f"{plugin}: ")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (pydicom's often go on for pages)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def colour_reason(h: dict[str, str]) -> str | None:
    """Why a header describes a colour image (None for a grey one)."""
    samples = h.get("SamplesPerPixel", "1") or "1"
    photometric = (h.get("PhotometricInterpretation") or "").strip().upper()
    if samples != "1" or photometric.startswith(COLOUR):
        return (f"colour image ({photometric or '?'}, {samples} samples per pixel): a colour map "
                f"or screenshot, not a grey MR image")
    return None


def native_grey(h: dict[str, str]) -> bool:
    """Pixels that :func:`view_pixels` views directly (1 sample, 1 frame, 8/16/32 bits)."""
    return (h.get("SamplesPerPixel", "1") == "1" and h.get("NumberOfFrames", "1") in ("", "1")
            and h.get("BitsAllocated") in ("8", "16", "32"))


def native_pixels(ds: pydicom.Dataset, h: dict[str, str]) -> np.ndarray:
    """Decode the 2D pixel array of a parsed dataset; ValueError("truncated ...") on short data.

    Native single-frame grey images are viewed with numpy directly (what ``pixel_array``
    does too, minus its per-call validation); anything else goes through :func:`decode_pixels`.
    """
    tsyntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    raw = ds._dict.get(PIXEL_DATA_TAG)
    native = (tsyntax is not None and not tsyntax.is_compressed and not tsyntax.is_deflated
              and isinstance(raw, RawDataElement) and isinstance(raw.value, bytes)
              and native_grey(h))
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


def pixel_data_location(ds: pydicom.Dataset, h: dict[str, str], buf: bytes, pos: int,
                        ) -> tuple[int, int] | str | None:
    """Where the native PixelData value starts in ``buf``, for a header parse that stopped at
    ``pos``: (offset, declared length); "absent" when the file ends there; None when the
    layout is not one read directly (compressed, big endian, colour, multi-frame...)."""
    tsyntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if tsyntax is None or tsyntax.is_compressed or tsyntax.is_deflated or not tsyntax.is_little_endian:
        return None
    if not native_grey(h):
        return None
    if len(buf) - pos < 8:
        return "absent"
    if struct.unpack_from("<HH", buf, pos) != (0x7FE0, 0x0010):
        return None
    if tsyntax.is_implicit_VR:
        length, offset = struct.unpack_from("<I", buf, pos + 4)[0], pos + 8
    elif buf[pos + 4:pos + 6] in LONG_VRS:
        length, offset = struct.unpack_from("<I", buf, pos + 8)[0], pos + 12
    else:
        length, offset = struct.unpack_from("<H", buf, pos + 6)[0], pos + 8
    if length == 0xFFFFFFFF:      # encapsulated (compressed) despite the transfer syntax
        return None
    return offset, length


def view_pixels(buf: bytes, where: tuple[int, int], h: dict[str, str]) -> np.ndarray:
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


def header_to_pixels(arr: np.ndarray, h: dict[str, str]) -> tuple[np.ndarray, str]:
    """:func:`stored_to_pixels` for a single-frame image whose header is ``h``; the common case
    (unsigned, MONOCHROME2, no rescale) is decided without a call and returns ``arr``."""
    slope, intercept = num(h.get("RescaleSlope"), 1.0), num(h.get("RescaleIntercept"), 0.0)
    photometric = h.get("PhotometricInterpretation", "")
    if slope == 1.0 and intercept == 0.0 and photometric != "MONOCHROME1" and arr.dtype.kind == "u":
        return arr, ""
    return stored_to_pixels(arr, slope, intercept, photometric,
                            int(num(h.get("BitsStored"), 16)))
