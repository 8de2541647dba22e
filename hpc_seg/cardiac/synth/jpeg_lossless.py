"""A minimal JPEG lossless encoder (ITU T.81 process 14, selection value 1) for grey images.

pydicom 3 has encoders for RLE, JPEG-LS and JPEG 2000 but none for JPEG Lossless, the most
common compressed transfer syntax of older cardiac exports; the test cohorts need it, and its
decoder (pylibjpeg-libjpeg) is what ingest uses. Encoding is vectorised with numpy: the
predictor differences, their SSSS categories and the bit packing are array operations, so a
512x512 frame takes milliseconds.

One Huffman table gives each of the 17 categories a 5-bit code. That is not optimal (a few
per cent larger than an optimised table) but valid for every image, and keeps the encoder short.
"""

from __future__ import annotations

import struct

import numpy as np

_CODE_BITS = 5          # 17 categories (0..16) fit in 5-bit codes; none is all ones


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", marker, len(payload) + 2) + payload


def _differences(img: np.ndarray, precision: int) -> np.ndarray:
    """Prediction differences modulo 2**precision in -(2**(P-1)-1) .. 2**(P-1) (T.81 H.1.2)."""
    x = img.astype(np.int64)
    pred = np.empty_like(x)
    pred[:, 1:] = x[:, :-1]                 # predictor 1: the left neighbour
    pred[1:, 0] = x[:-1, 0]                 # the first column uses the pixel above
    pred[0, 0] = 1 << (precision - 1)
    mod = 1 << precision
    d = (x - pred) % mod
    half = mod >> 1
    return np.where(d > half, d - mod, d).ravel()


def _bits(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The low ``lengths[i]`` bits of each ``values[i]``, most significant first, concatenated."""
    width = int(lengths.max()) if lengths.size else 0
    shifts = np.arange(width - 1, -1, -1, dtype=np.int64)
    table = (values[:, None] >> shifts[None, :]) & 1            # (n, width), right-aligned
    keep = shifts[None, :] < lengths[:, None]
    return table[keep].astype(np.uint8)


def encode_frame(img: np.ndarray, bits_stored: int = 16) -> bytes:
    """One JPEG lossless (SV1) codestream of a 2D uint16 image with 12 to 16 bits stored.

    (8-bit precision is refused: libjpeg decoded our 8-bit streams wrongly and the cohorts
    are 16-bit, so it is not worth the code.)
    """
    if img.ndim != 2 or img.dtype != np.uint16 or not 12 <= bits_stored <= 16:
        raise ValueError(f"expected a 2D uint16 image with 12-16 bits stored, got {img.dtype} "
                         f"{img.shape}, {bits_stored} bits")
    precision = bits_stored
    rows, cols = img.shape
    diff = _differences(img, precision)
    mag = np.abs(diff)
    ssss = np.zeros(diff.shape, np.int64)
    nz = mag > 0
    ssss[nz] = np.floor(np.log2(mag[nz])).astype(np.int64) + 1
    # Negative differences are sent as diff - 1 in ssss bits (ones' complement); 16: no extra bits.
    extra = np.where(diff < 0, diff - 1, diff) & ((1 << ssss) - 1)
    extra_len = np.where(ssss == 16, 0, ssss)
    values = (ssss << extra_len) | np.where(extra_len > 0, extra, 0)
    bits = _bits(values, _CODE_BITS + extra_len)
    pad = (-bits.size) % 8
    data = np.packbits(np.concatenate([bits, np.ones(pad, np.uint8)])).tobytes()
    data = data.replace(b"\xff", b"\xff\x00")           # byte stuffing
    counts = bytes(17 if n == _CODE_BITS else 0 for n in range(1, 17))
    dht = _segment(0xFFC4, b"\x00" + counts + bytes(range(17)))
    sof = _segment(0xFFC3, struct.pack(">BHHB", precision, rows, cols, 1) + b"\x01\x11\x00")
    sos = _segment(0xFFDA, b"\x01\x01\x00" + b"\x01\x00\x00")
    return b"\xff\xd8" + dht + sof + sos + data + b"\xff\xd9"
