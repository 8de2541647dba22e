"""QMass ``.con`` contour files: read, write, and rasterise onto an image's pixel grid.

A ``.con`` file is CRLF text: ``key=value`` header lines, then ``[XYCONTOUR]`` sections, each a
line ``slice phase type 1.0``, the number of points N and N lines ``x y`` (float pixel
coordinates). Type 0 is the LV endocardium, 1 the LV epicardium, 5 the RV endocardium, 2 the RV
epicardium. Any other ``[SECTION]`` ends the contour data.

Pixel convention: ``x`` is the column and ``y`` the row coordinate, with the *centre* of pixel
(row r, col c) at ``(x, y) = (c, r)`` (as PIL's ``ImageDraw.polygon``, which the public readers use).
A pixel belongs to a contour when its centre lies inside the polygon.

Slice order (:data:`SLICE_ORDERS`): QMass may number slices opposite to the DICOM order. Here the
DICOM order is the order of the slice positions along the stack normal (``dot(IPP, normal)``,
ascending). ``"reversed"`` (the default) maps contour slice ``s`` to DICOM slice ``n - 1 - s``, as
the public readers (cmr-seg-tl's converter among them) do and as our 7T generator writes;
``"dicom"`` takes ``s`` as the DICOM slice index itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpc_seg.errors import InputError

LV_ENDO, LV_EPI, RV_EPI, RV_ENDO = 0, 1, 2, 5
CONTOUR_TYPES = {LV_ENDO: "LV endocardium", LV_EPI: "LV epicardium", RV_EPI: "RV epicardium",
                 RV_ENDO: "RV endocardium"}
SLICE_ORDERS = ("reversed", "dicom")
SECTION = "[XYCONTOUR]"


@dataclass(frozen=True)
class Contour:
    """One closed polygon: contour ``type`` on (con-numbered) ``slice`` and ``phase``."""

    slice: int
    phase: int
    type: int
    points: np.ndarray          # [N, 2] float (x, y)
    line: int = 0               # 1-based line of the section header in its file (0 = not read)


@dataclass
class ConFile:
    """A parsed ``.con`` file: header values and contours in file order."""

    header: dict[str, str] = field(default_factory=dict)
    contours: list[Contour] = field(default_factory=list)
    path: Path | None = None

    def image_resolution(self) -> tuple[int, int] | None:
        """(cols, rows) from ``Image_resolution=<cols>x<rows>``, or None when absent."""
        value = self.header.get("Image_resolution")
        if not value:
            return None
        try:
            cols, rows = (int(float(v)) for v in value.lower().split("x"))
        except ValueError:
            raise InputError(f"{self.path}: Image_resolution={value!r} is not <cols>x<rows>") from None
        return cols, rows


def _fail(path: Path | str, line: int, reason: str) -> InputError:
    return InputError(f"{path}: line {line}: {reason}")


def read_con(path: str | Path) -> ConFile:
    """Parse ``path``; a malformed file raises one :class:`InputError` naming file, line and reason.

    A file that is not a contour file at all (binary data, no ``[XYCONTOUR]`` section) is an
    :class:`InputError` too: read as text it would parse as a header with no contours, which
    reads as a volunteer whose ventricle has 0 mL.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read contour file ({exc.strerror or exc})") from None
    if b"\x00" in raw:
        raise InputError(f"{path}: binary data (NUL bytes), not a QMass contour file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")     # QMass writes the host code page; keys are ASCII
    lines = text.splitlines()
    con = ConFile(path=path)
    i, n = 0, len(lines)
    in_contours = False
    while i < n:
        line = lines[i].strip()
        i += 1
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise _fail(path, i, f"unterminated section name {line!r}")
            in_contours = line.upper() == SECTION
            if in_contours:
                contour, i = _read_contour(path, lines, i)
                con.contours.append(contour)
            continue
        if in_contours:
            # A section body was consumed by _read_contour: anything else up to the next section
            # would be silently ignored, so it is an error.
            raise _fail(path, i, f"unexpected text after a contour: {line[:40]!r}")
        if "=" in line:
            key, _, value = line.partition("=")
            con.header[key.strip()] = value.strip()
        # Lines of other sections ([POINT], [DISTANCE LABELS], ...) are not contour data: skipped.
    if not con.contours:
        raise InputError(f"{path}: no {SECTION} section; not a QMass contour file")
    return con


def _read_contour(path: Path, lines: list[str], i: int) -> tuple[Contour, int]:
    """Parse one ``[XYCONTOUR]`` body starting at 0-based line ``i``."""
    start = i + 1
    if i >= len(lines):
        raise _fail(path, start - 1, "[XYCONTOUR] without 'slice phase type' line")
    parts = lines[i].split()
    if len(parts) < 3:
        raise _fail(path, start, f"expected 'slice phase type 1.0', got {lines[i].strip()!r}")
    try:
        s, p, t = int(parts[0]), int(parts[1]), int(parts[2])
    except ValueError:
        raise _fail(path, start, f"slice, phase and type must be integers, got {lines[i].strip()!r}") from None
    if s < 0 or p < 0:
        raise _fail(path, start, f"negative slice or phase in {lines[i].strip()!r}")
    i += 1
    if i >= len(lines):
        raise _fail(path, i, "missing the number of points")
    try:
        count = int(lines[i].strip())
    except ValueError:
        raise _fail(path, i + 1, f"number of points must be an integer, got {lines[i].strip()!r}") from None
    if count < 3:
        raise _fail(path, i + 1, f"a contour needs at least 3 points, got {count}")
    i += 1
    if i + count > len(lines):
        raise _fail(path, len(lines), f"file ends after {len(lines) - i} of {count} points")
    pts = np.empty((count, 2))
    for k in range(count):
        xy = lines[i + k].split()
        try:
            if len(xy) != 2:
                raise ValueError
            pts[k] = float(xy[0]), float(xy[1])
        except ValueError:
            raise _fail(path, i + k + 1, f"expected 'x y', got {lines[i + k].strip()!r}") from None
    if not np.isfinite(pts).all():
        raise _fail(path, i + 1, "non-finite point coordinate")
    return Contour(s, p, t, pts, start - 1), i + count


def write_con(path: str | Path, contours: Iterable[Contour], header: dict[str, str]) -> Path:
    """Write a ``.con`` file (CRLF, header first, one ``[XYCONTOUR]`` section per contour)."""
    path = Path(path)
    out = ["[PATIENT_INFO]"] + [f"{k}={v}" for k, v in header.items()]
    for c in contours:
        out += [SECTION, f"{c.slice} {c.phase} {c.type} 1.0", str(len(c.points))]
        out += [f"{x:.4f} {y:.4f}" for x, y in c.points]
    out.append("[POINT]")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_bytes(("\r\n".join(out) + "\r\n").encode("ascii"))
    tmp.replace(path)
    return path


def dicom_slice(con_slice: int, n_slices: int, order: str = "reversed") -> int:
    """The DICOM slice index (position order) of contour slice ``con_slice``."""
    if order not in SLICE_ORDERS:
        raise InputError(f"slice order must be one of {SLICE_ORDERS}, got {order!r}")
    return n_slices - 1 - con_slice if order == "reversed" else con_slice


def fill_polygon(points: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Boolean ``[rows, cols]``: pixels whose centre ``(c, r)`` lies inside the polygon (even-odd)."""
    out = np.zeros((rows, cols), dtype=bool)
    pts = np.asarray(points, dtype=np.float64)
    x0, y0 = pts[:, 0], pts[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    r_lo = max(0, int(np.ceil(y0.min())))
    r_hi = min(rows - 1, int(np.floor(y0.max())))
    cidx = np.arange(cols, dtype=np.float64)
    for r in range(r_lo, r_hi + 1):
        y = float(r)
        # Half-open rule on edges: an edge counts when y is in [min, max): no double counting.
        hit = (y0 <= y) != (y1 <= y)
        if not hit.any():
            continue
        xs = np.sort(x0[hit] + (y - y0[hit]) * (x1[hit] - x0[hit]) / (y1[hit] - y0[hit]))
        # Centres strictly between crossing pairs (even-odd rule).
        count = np.searchsorted(xs, cidx, side="right")
        out[r] = count % 2 == 1
    return out


def contours_to_mask(contours: Iterable[Contour], rows: int, cols: int) -> np.ndarray:
    """Label mask (0 bg, 1 LV, 2 MY) of one image: LV = endocardium, MY = epicardium minus it.

    The published converter filled epicardium and endocardium as 1 and took ``2 epi - endo``;
    that is the same for nested contours, and here endocardium wins where they cross.
    """
    endo = np.zeros((rows, cols), dtype=bool)
    epi = np.zeros((rows, cols), dtype=bool)
    for c in contours:
        if c.type == LV_ENDO:
            endo |= fill_polygon(c.points, rows, cols)
        elif c.type == LV_EPI:
            epi |= fill_polygon(c.points, rows, cols)
    mask = np.zeros((rows, cols), dtype=np.uint8)
    mask[epi] = 2
    mask[endo] = 1
    return mask


def mask_outline(region: np.ndarray) -> np.ndarray | None:
    """A polygon (``[N, 2]`` x, y) along the pixel edges of the largest connected outline of
    ``region`` (boolean), collinear vertices merged; None when empty.

    Rasterised with :func:`fill_polygon` it gives back ``region`` exactly when the region is one
    4-connected piece without holes: every vertex sits on a pixel corner (c +- 0.5, r +- 0.5).
    """
    m = np.pad(np.asarray(region, dtype=bool), 1)
    if not m.any():
        return None
    # Directed boundary edges, filled pixel on the left: a map from start corner to end corners.
    nxt: dict[tuple[int, int], list[tuple[int, int]]] = {}
    rr, cc = np.nonzero(m)
    for r, c in zip(rr.tolist(), cc.tolist()):
        # Corner (i, j) = (row edge index, col edge index); pixel (r, c) spans corners r..r+1, c..c+1.
        if not m[r - 1, c]:
            nxt.setdefault((r, c + 1), []).append((r, c))          # top edge, right to left
        if not m[r + 1, c]:
            nxt.setdefault((r + 1, c), []).append((r + 1, c + 1))  # bottom edge, left to right
        if not m[r, c - 1]:
            nxt.setdefault((r, c), []).append((r + 1, c))          # left edge, downwards
        if not m[r, c + 1]:
            nxt.setdefault((r + 1, c + 1), []).append((r, c + 1))  # right edge, upwards
    loops = []
    while nxt:
        start = next(iter(nxt))
        loop, cur = [start], start
        while True:
            ends = nxt[cur]
            end = ends.pop()
            if not ends:
                del nxt[cur]
            cur = end
            if cur == start:
                break
            loop.append(cur)
            if cur not in nxt:     # cannot happen for a closed edge set; guard against a hang
                break
        loops.append(loop)
    loop = max(loops, key=_area)
    pts = np.asarray(loop, dtype=np.float64)
    # Merge collinear vertices.
    prev, nxt_pts = np.roll(pts, 1, axis=0), np.roll(pts, -1, axis=0)
    cross = (pts[:, 0] - prev[:, 0]) * (nxt_pts[:, 1] - pts[:, 1]) - \
        (pts[:, 1] - prev[:, 1]) * (nxt_pts[:, 0] - pts[:, 0])
    pts = pts[cross != 0]
    # Corner (i, j) in padded indices -> (x, y) = (j - 1 - 0.5, i - 1 - 0.5) in image pixels.
    return np.stack([pts[:, 1] - 1.5, pts[:, 0] - 1.5], axis=1)


def _area(loop: list[tuple[int, int]]) -> float:
    p = np.asarray(loop, dtype=np.float64)
    return abs(float(np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1)))) / 2
