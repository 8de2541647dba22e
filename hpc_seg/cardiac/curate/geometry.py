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
