"""In-plane grids, resampling between them, affines and the rot90 copy.

Affine convention (used by the ``volumes`` table and everything downstream): a 4x4 matrix that
maps ``(col i, row j, slice k, 1)`` to DICOM LPS millimetres, i.e. ``pixels[t, k, j, i]`` sits at
``affine @ [i, j, k, 1]``. Columns 0 and 1 are the row direction times the column spacing and the
column direction times the row spacing; column 2 is the step between slices along the stack
normal; column 3 is the centre of voxel (0, 0, 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, sparse

#: integer-index tolerance: sampling points this close to integers are copied, not interpolated
_INTEGER_TOL = 1e-3


@dataclass(frozen=True, slots=True)
class PlaneGrid:
    """A 2D pixel grid in space: pixel (j, i) sits at ``origin + i * u + j * v``."""

    origin: np.ndarray   # (3,) centre of pixel (0, 0), LPS mm
    u: np.ndarray        # (3,) step of one column (row direction x column spacing)
    v: np.ndarray        # (3,) step of one row (column direction x row spacing)
    rows: int
    cols: int

    @property
    def spacing(self) -> tuple[float, float]:
        """(row spacing, column spacing) in mm."""
        return float(np.linalg.norm(self.v)), float(np.linalg.norm(self.u))

    @property
    def normal(self) -> np.ndarray:
        n = np.cross(self.u, self.v)
        return n / np.linalg.norm(n)

    def at_position(self, normal: np.ndarray, position: float) -> "PlaneGrid":
        """The same in-plane grid moved along ``normal`` so that dot(origin, normal) = position."""
        origin = self.origin + (position - float(self.origin @ normal)) * normal
        return PlaneGrid(origin, self.u, self.v, self.rows, self.cols)


def grid_from_dicom(ipp: np.ndarray, iop: np.ndarray, spacing: tuple[float, float],
                    rows: int, cols: int) -> PlaneGrid:
    """The grid of one DICOM image (``spacing`` = PixelSpacing = (row, column))."""
    return PlaneGrid(np.asarray(ipp, float), np.asarray(iop[:3], float) * spacing[1],
                     np.asarray(iop[3:], float) * spacing[0], int(rows), int(cols))


def downscaled_grid(grid: PlaneGrid, max_side: int = 256) -> tuple[PlaneGrid, float]:
    """Shrink a grid whose larger side exceeds ``max_side`` about its field-of-view centre.

    Returns (grid, scale_factor); scale_factor is 1.0 when nothing changes. The spacing grows
    by 1/scale so that the field of view is kept.
    """
    big = max(grid.rows, grid.cols)
    if big <= max_side:
        return grid, 1.0
    scale = max_side / big
    rows, cols = max(1, round(grid.rows * scale)), max(1, round(grid.cols * scale))
    u, v = grid.u / scale, grid.v / scale
    centre = grid.origin + (grid.cols - 1) / 2 * grid.u + (grid.rows - 1) / 2 * grid.v
    origin = centre - (cols - 1) / 2 * u - (rows - 1) / 2 * v
    return PlaneGrid(origin, u, v, rows, cols), scale


def same_grid(a: PlaneGrid, b: PlaneGrid, tol_px: float = 0.01) -> bool:
    """True when pixel (j, i) of ``a`` and of ``b`` are the same point (in-plane)."""
    if (a.rows, a.cols) != (b.rows, b.cols):
        return False
    if not (np.allclose(a.u, b.u, atol=1e-4) and np.allclose(a.v, b.v, atol=1e-4)):
        return False
    d = b.origin - a.origin
    n = a.normal
    d = d - (d @ n) * n   # only the in-plane offset matters; slices differ along the normal
    return float(np.linalg.norm(d)) <= tol_px * min(a.spacing)


def resample_to_grid(stack: np.ndarray, src: PlaneGrid, dst: PlaneGrid, *, order: int) -> np.ndarray:
    """Resample ``stack[..., rows, cols]`` from grid ``src`` onto grid ``dst`` (same plane).

    This one operation covers the curation of odd slices: another pixel spacing (rescale),
    an in-plane rotation or flip (normal parallel), and the centre crop / zero pad (points of
    ``dst`` outside ``src`` become 0). ``order`` 1 = linear for pixels, 0 = nearest for masks.
    When every sampling point falls on a source pixel (pure 90-degree rotations, flips and
    integer shifts) pixels are copied exactly.
    """
    jj, ii = np.meshgrid(np.arange(dst.rows), np.arange(dst.cols), indexing="ij")
    points = dst.origin + ii[..., None] * dst.u + jj[..., None] * dst.v - src.origin
    # Solve points = i_s * u_s + j_s * v_s (least squares handles the off-plane residual).
    basis = np.stack([src.u, src.v], axis=1)                       # (3, 2)
    coeffs = points.reshape(-1, 3) @ np.linalg.pinv(basis).T        # (N, 2): i_s, j_s
    i_s, j_s = coeffs[:, 0].reshape(ii.shape), coeffs[:, 1].reshape(ii.shape)
    lead = stack.shape[:-2]
    flat = stack.reshape((-1,) + stack.shape[-2:])
    ri, rj = np.rint(i_s), np.rint(j_s)
    if order == 0 or (np.abs(i_s - ri).max() < _INTEGER_TOL and np.abs(j_s - rj).max() < _INTEGER_TOL):
        out = np.zeros((flat.shape[0], dst.rows, dst.cols), dtype=stack.dtype)
        ri, rj = ri.astype(int), rj.astype(int)
        inside = (ri >= 0) & (ri < src.cols) & (rj >= 0) & (rj < src.rows)
        out[:, inside] = flat[:, rj[inside], ri[inside]]
    elif np.ptp(i_s, axis=0).max() < _INTEGER_TOL and np.ptp(j_s, axis=1).max() < _INTEGER_TOL:
        # Axis-aligned (rescale, shift, flip): separable. An integer downscale (512 → 256)
        # samples block centres, where linear interpolation is exactly the block mean.
        blocks = _block_factors(j_s[:, 0], src.rows), _block_factors(i_s[0, :], src.cols)
        if blocks[0] and blocks[1] and np.issubdtype(stack.dtype, np.unsignedinteger):
            out = _block_mean(flat, *blocks[0], *blocks[1])
        else:
            out = _separable_linear(flat, j_s[:, 0], i_s[0, :])
    else:
        out = np.zeros((flat.shape[0], dst.rows, dst.cols), dtype=stack.dtype)
        coords = np.stack([j_s, i_s])
        for t in range(flat.shape[0]):
            out[t] = _to_dtype(ndimage.map_coordinates(flat[t].astype(np.float32), coords,
                                                       order=1, mode="constant", cval=0.0),
                               stack.dtype)
    return out.reshape(lead + (dst.rows, dst.cols))


def _block_factors(coords: np.ndarray, n_in: int) -> tuple[int, int, int] | None:
    """(factor, first index, count) when ``coords`` are the centres of consecutive blocks inside the
    source (coords[k] = start + f*k + (f-1)/2 for an integer f >= 1); else None."""
    if len(coords) < 2:
        return None
    step = coords[1] - coords[0]
    f = int(round(step))
    if f < 1 or abs(step - f) > _INTEGER_TOL:
        return None
    start = coords[0] - (f - 1) / 2
    if abs(start - round(start)) > _INTEGER_TOL or not np.allclose(np.diff(coords), f, atol=_INTEGER_TOL):
        return None
    start = int(round(start))
    if start < 0 or start + f * len(coords) > n_in:
        return None
    return f, start, len(coords)


def _block_mean(flat: np.ndarray, fr: int, r0: int, out_r: int, fc: int, c0: int,
                out_c: int) -> np.ndarray:
    """Mean over fr x fc blocks by strided integer adds (no float copies), rounded half up."""
    n = flat.shape[0]
    acc = np.zeros((n, out_r, out_c), np.uint64 if flat.dtype.itemsize > 2 else np.uint32)
    for dr in range(fr):
        for dc in range(fc):
            acc += flat[:, r0 + dr: r0 + dr + fr * out_r: fr, c0 + dc: c0 + dc + fc * out_c: fc]
    k = fr * fc
    return ((acc + k // 2) // k).astype(flat.dtype)


def _to_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        values = np.clip(np.rint(values), info.min, info.max)
    return values.astype(dtype)


def _linear_weights(coords: np.ndarray, n_in: int) -> sparse.csr_matrix:
    """(len(coords) x n_in) matrix of linear interpolation weights; outside samples count as 0."""
    lo = np.floor(coords).astype(int)
    frac = coords - lo
    rows = np.repeat(np.arange(len(coords)), 2)
    cols = np.stack([lo, lo + 1], axis=1).reshape(-1)
    vals = np.stack([1.0 - frac, frac], axis=1).reshape(-1)
    keep = (cols >= 0) & (cols < n_in) & (vals > 0)
    return sparse.csr_matrix((vals[keep].astype(np.float32), (rows[keep], cols[keep])),
                             shape=(len(coords), n_in))


def _separable_linear(flat: np.ndarray, rows_src: np.ndarray, cols_src: np.ndarray) -> np.ndarray:
    """Bilinear resampling of ``flat[t, r, c]`` at rows ``rows_src`` x columns ``cols_src``.

    Far cheaper than per-point interpolation for the common cases (downscaling a 512 matrix,
    another pixel spacing): two sparse products over all frames at once.
    """
    n, r, c = flat.shape
    wr, wc = _linear_weights(rows_src, r), _linear_weights(cols_src, c)
    a = np.ascontiguousarray(flat.transpose(1, 0, 2), dtype=np.float32).reshape(r, n * c)
    b = (wr @ a).reshape(len(rows_src), n, c).transpose(1, 0, 2).reshape(n * len(rows_src), c)
    out = (wc @ b.T).T.reshape(n, len(rows_src), len(cols_src))
    return _to_dtype(out, flat.dtype)


def stack_affine(grid0: PlaneGrid, slice_step: np.ndarray) -> np.ndarray:
    """4x4 affine of a stack whose slice 0 has in-plane grid ``grid0`` (see module docstring)."""
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2], affine[:3, 3] = grid0.u, grid0.v, slice_step, grid0.origin
    return affine


def rot90_stack(volume: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotate ``volume[..., rows, cols]`` by 90 degrees in-plane and derive the matching affine.

    The new affine comes from the index permutation itself: the same ``np.rot90`` is applied to
    grids holding each voxel's old (i, j), and the new origin and steps are read from them. So
    every voxel keeps its true position, whatever the rotation's direction convention.
    """
    rows, cols = volume.shape[-2:]
    jj, ii = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    rj, ri = np.rot90(jj), np.rot90(ii)
    rotated = np.ascontiguousarray(np.rot90(volume, axes=(-2, -1)))

    def old_index_step(dj: int, di: int) -> np.ndarray:
        return np.array([ri[dj, di] - ri[0, 0], rj[dj, di] - rj[0, 0]], dtype=float)

    new = np.eye(4)
    a = affine[:3, :2]
    new[:3, 0] = a @ old_index_step(0, 1)     # new column step
    new[:3, 1] = a @ old_index_step(1, 0)     # new row step
    new[:3, 2] = affine[:3, 2]
    new[:3, 3] = affine[:3, 3] + a @ np.array([ri[0, 0], rj[0, 0]], dtype=float)
    return rotated, new


def voxel_to_world(affine: np.ndarray, i: float, j: float, k: float) -> np.ndarray:
    """LPS position of voxel (col i, row j, slice k)."""
    return (np.asarray(affine) @ np.array([i, j, k, 1.0]))[:3]
