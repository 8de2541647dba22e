"""How much memory one DICOM file may take once decoded, checked before anything is allocated.

A 1,284-byte RLE file may claim 60000 x 60000 pixels, and a 4 MB deflated file may inflate to
4 GiB: decoders allocate what the header claims before they find out the data is short, and
pydicom inflates a deflated dataset whole before it parses one element. One such file can take a
worker (and on a shared node its neighbours) down. So each file is checked three times, each
time before the allocation it guards:

1. its size on disk (the file is read into memory whole);
2. for the deflated transfer syntax, its inflated size, measured by inflating into a small
   reusable buffer and stopping at the budget;
3. the decoded size its header declares: Rows x Columns x NumberOfFrames x SamplesPerPixel x
   bytes per sample (float32 after a rescale, so a rescaled image counts 4 bytes a sample).

A file over the budget is skipped with the reason ``too_large``. The budget is ``ingest``'s
``max_decoded_mb`` (:data:`DEFAULT_MAX_DECODED_MB` by default: a 512 x 512 cine of 30 phases on
25 slices as one enhanced multi-frame file is ~400 MB).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

#: default per-file budget (MB, 10**6 bytes)
DEFAULT_MAX_DECODED_MB = 1024.0
DEFLATED = b"1.2.840.10008.1.2.1.99"
_CHUNK = 1 << 20


def budget_bytes(max_decoded_mb: float | None) -> int | None:
    """The budget in bytes (None: no budget)."""
    return None if max_decoded_mb is None else int(max_decoded_mb * 1e6)


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n:,} bytes"


def file_too_large(path: Path, budget: int | None) -> str | None:
    """Why the file at ``path`` is over ``budget`` before it is read (None: it is not)."""
    if budget is None:
        return None
    try:
        size = os.stat(path).st_size
    except OSError:
        return None           # the reader reports an unreadable file itself
    if size > budget:
        return f"file is {_mb(size)}, over the {_mb(budget)} per-file budget"
    return None


def inflated_too_large(buf: bytes, start: int, budget: int | None) -> str | None:
    """For a deflated dataset starting at ``buf[start:]``: why it inflates beyond ``budget``
    (None: it does not, or it is not valid deflate data, which the parser then reports).

    Inflates in 1 MB steps without keeping the output, so the check itself needs no memory."""
    if budget is None:
        return None
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    data = memoryview(buf)[start:]
    try:
        while True:
            out = d.decompress(data, _CHUNK)
            total += len(out)
            if total > budget:
                return (f"deflated data inflates to over {_mb(budget)} (the per-file budget) "
                        f"from {_mb(len(buf))} on disk")
            data = d.unconsumed_tail
            if not data or d.eof:
                return None
    except zlib.error:
        return None


def _int(h: dict[str, str], key: str, default: int) -> int:
    text = (h.get(key) or "").split("\\")[0].strip()
    try:
        return int(float(text)) if text else default
    except (ValueError, OverflowError):
        return default


def declared_bytes(h: dict[str, str]) -> int:
    """Decoded size the header ``h`` (keyword → text) declares, in bytes."""
    rows, cols = max(0, _int(h, "Rows", 0)), max(0, _int(h, "Columns", 0))
    frames = max(1, _int(h, "NumberOfFrames", 1))
    samples = max(1, _int(h, "SamplesPerPixel", 1))
    sample_bytes = max(1, (_int(h, "BitsAllocated", 16) + 7) // 8)
    if (h.get("RescaleSlope") or "1").strip() not in ("1", "1.0", "") or \
            (h.get("RescaleIntercept") or "0").strip() not in ("0", "0.0", ""):
        sample_bytes = max(sample_bytes, 4)      # pixels become float32
    return rows * cols * frames * samples * sample_bytes


def header_too_large(h: dict[str, str], budget: int | None) -> str | None:
    """Why the image the header ``h`` declares is over ``budget`` (None: it is not)."""
    if budget is None:
        return None
    need = declared_bytes(h)
    if need > budget:
        return (f"header declares {_int(h, 'Rows', 0)} x {_int(h, 'Columns', 0)} x "
                f"{max(1, _int(h, 'NumberOfFrames', 1))} frame(s) = {_mb(need)} decoded, over "
                f"the {_mb(budget)} per-file budget")
    return None
