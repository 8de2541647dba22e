"""Resampling a slice's frames from its own in-plane grid onto the stack's grid (step 3).

One operation covers every odd slice: another pixel spacing (rescale), an in-plane rotation or
flip (normal parallel), a shift, the centre crop / zero pad (target points outside the source
become 0) and the downscale of matrices over 256. The map from target index (i, j) to source
index is affine, so the cheap special cases are recognised from its 2x3 matrix:

- integer map (90-degree rotations, flips, integer shifts; nearest for masks): exact copies;
- axis-aligned map: separable linear interpolation, and for an integer downscale (512 → 256,
  target pixels at block centres) the exact block mean with integer adds;
- anything else: ``scipy.ndimage.map_coordinates`` (order 1).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from hpc_seg.cardiac.curate.geometry import PlaneGrid

#: index tolerance: a map this close to integer steps/offsets copies instead of interpolating
_TOL = 1e-3


def index_map(src: PlaneGrid, dst: PlaneGrid) -> np.ndarray:
    """2x3 matrix M with (i_src, j_src) = M @ (i_dst, j_dst, 1) (least squares in-plane)."""
    pinv = np.linalg.pinv(np.stack([src.u, src.v], axis=1))        # (2, 3)
    return np.stack([pinv @ dst.u, pinv @ dst.v, pinv @ (dst.origin - src.origin)], axis=1)


def resample_to_grid(stack: np.ndarray, src: PlaneGrid, dst: PlaneGrid, *, order: int) -> np.ndarray:
    """Resample ``stack[..., rows, cols]`` from grid ``src`` onto grid ``dst`` (same plane).

    ``order`` 1 = linear (pixels), 0 = nearest (label masks).
    """
    m = index_map(src, dst)
    lead = stack.shape[:-2]
    flat = stack.reshape((-1,) + stack.shape[-2:])
    aligned = abs(m[0, 1]) < _TOL and abs(m[1, 0]) < _TOL
    integer = np.abs(m - np.rint(m)).max() < _TOL
    if aligned:
        cols_src = m[0, 0] * np.arange(dst.cols) + m[0, 2]
        rows_src = m[1, 1] * np.arange(dst.rows) + m[1, 2]
        if order == 0 or integer:
            out = _take_nearest(flat, rows_src, cols_src)
        else:
            blocks = _block_factors(rows_src, src.rows), _block_factors(cols_src, src.cols)
            if blocks[0] and blocks[1] and np.issubdtype(stack.dtype, np.unsignedinteger):
                out = _block_mean(flat, *blocks[0], *blocks[1])
            else:
                out = _separable_linear(flat, rows_src, cols_src)
    else:
        jj, ii = np.meshgrid(np.arange(dst.rows), np.arange(dst.cols), indexing="ij")
        i_s = m[0, 0] * ii + m[0, 1] * jj + m[0, 2]
        j_s = m[1, 0] * ii + m[1, 1] * jj + m[1, 2]
        if order == 0 or integer:
            ri, rj = np.rint(i_s).astype(int), np.rint(j_s).astype(int)
            inside = (ri >= 0) & (ri < src.cols) & (rj >= 0) & (rj < src.rows)
            out = np.zeros((flat.shape[0], dst.rows, dst.cols), dtype=stack.dtype)
            out[:, inside] = flat[:, rj[inside], ri[inside]]
        else:
            out = np.zeros((flat.shape[0], dst.rows, dst.cols), dtype=stack.dtype)
            coords = np.stack([j_s, i_s])
            for t in range(flat.shape[0]):
                out[t] = _to_dtype(ndimage.map_coordinates(
                    flat[t].astype(np.float32), coords, order=1, mode="constant", cval=0.0),
                    stack.dtype)
    return out.reshape(lead + (dst.rows, dst.cols))


def _take_nearest(flat: np.ndarray, rows_src: np.ndarray, cols_src: np.ndarray) -> np.ndarray:
    """Nearest source pixel per target row/column (0 outside the source).

    Target rows/columns inside the source form one contiguous run, and their source indices an
    arithmetic progression in the usual cases (shift, flip, integer downscale), which become
    strided slices instead of gathers.
    """
    n, r, c = flat.shape
    out = np.zeros((n, len(rows_src), len(cols_src)), dtype=flat.dtype)
    ri, ci = np.rint(rows_src).astype(int), np.rint(cols_src).astype(int)
    r_ok, c_ok = np.flatnonzero((ri >= 0) & (ri < r)), np.flatnonzero((ci >= 0) & (ci < c))
    if not len(r_ok) or not len(c_ok):
        return out
    out[:, r_ok[0]:r_ok[-1] + 1, c_ok[0]:c_ok[-1] + 1] = \
        _take_axis(_take_axis(flat, ri[r_ok], 1), ci[c_ok], 2)
    return out


def _take_axis(a: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    """``np.take`` along ``axis``, as a strided slice when ``idx`` is an arithmetic progression."""
    if len(idx) > 1:
        step = idx[1] - idx[0]
        if step != 0 and np.array_equal(idx, idx[0] + step * np.arange(len(idx))):
            stop = idx[-1] + (1 if step > 0 else -1)
            sl = slice(idx[0], stop if stop >= 0 else None, step)
            return a[(slice(None),) * axis + (sl,)]
    return np.take(a, idx, axis=axis)


def _block_factors(coords: np.ndarray, n_in: int) -> tuple[int, int, int] | None:
    """(factor f, first index, count) when ``coords`` are the centres of consecutive f-blocks
    inside the source (coords[k] = start + f*k + (f-1)/2, integer f >= 2); else None."""
    if len(coords) < 2:
        return None
    step = coords[1] - coords[0]
    f = int(round(step))
    start = coords[0] - (f - 1) / 2
    if f < 2 or abs(step - f) > _TOL or abs(start - round(start)) > _TOL:
        return None
    start = int(round(start))
    if start < 0 or start + f * len(coords) > n_in:
        return None
    return f, start, len(coords)


def _block_mean(flat: np.ndarray, fr: int, r0: int, out_r: int, fc: int, c0: int,
                out_c: int) -> np.ndarray:
    """Mean over fr x fc blocks by integer adds (no float copies), rounded half up.

    Rows first (each term is a run of whole source rows, read contiguously), then columns on
    the already-halved array; a power-of-two block divides by a shift. ~1.5x faster than
    adding the fr*fc doubly strided planes into one accumulator.
    """
    acc_t = np.uint64 if flat.dtype.itemsize > 2 else np.uint32
    cols = slice(c0, c0 + fc * out_c)
    acc = flat[:, r0: r0 + fr * out_r: fr, cols].astype(acc_t)
    for dr in range(1, fr):
        acc += flat[:, r0 + dr: r0 + fr * out_r: fr, cols]
    out = acc[..., 0::fc].copy()
    for dc in range(1, fc):
        out += acc[..., dc::fc]
    k = fr * fc
    out += k // 2
    if k & (k - 1) == 0:
        out >>= k.bit_length() - 1
    else:
        out //= k
    return out.astype(flat.dtype)


def _to_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        values = np.clip(np.rint(values), info.min, info.max)
    return values.astype(dtype)


def _phase_plan(coords: np.ndarray, n: int, max_period: int = 32,
                ) -> tuple[int, int, list[tuple[int, float]]] | None:
    """For coords = a*k + b with a*P = Q integers (a rational scale such as 320 → 256, a = 5/4),
    the (P, Q, [(first source index, weight of the next one) per phase]); None otherwise or
    when a coordinate falls outside the source (crop/pad: the general path handles zeros)."""
    if len(coords) < 2 or coords.min() < 0 or coords.max() > n - 1:
        return None
    a = coords[1] - coords[0]
    if not np.allclose(coords, coords[0] + a * np.arange(len(coords)), atol=1e-6):
        return None
    for period in range(1, max_period + 1):
        q = a * period
        if q >= 0.5 and abs(q - round(q)) * len(coords) / period < 1e-4:
            plan = []
            for p in range(min(period, len(coords))):
                lo = int(np.floor(coords[p] + 1e-9))
                plan.append((lo, float(coords[p] - lo)))
            return period, int(round(q)), plan
    return None


def _linear_1d(a: np.ndarray, coords: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``a`` along ``axis`` at ``coords`` (0 outside), as float32.

    A rational scale (the usual downscale or other pixel spacing) runs as a few strided
    multiply-adds, one per phase of the repeating weight pattern; anything else gathers.
    """
    n = a.shape[axis]
    shape = list(a.shape)
    shape[axis] = len(coords)

    def along(sl: slice) -> tuple:
        return (slice(None),) * axis + (sl,)

    plan = _phase_plan(coords, n)
    if plan is not None:
        period, q, phases = plan
        out = np.empty(shape, np.float32)
        for p, (lo, frac) in enumerate(phases):
            count = len(range(p, len(coords), period))
            dst = out[along(slice(p, None, period))]
            np.multiply(a[along(slice(lo, lo + q * (count - 1) + 1, q))], np.float32(1.0 - frac),
                        out=dst)
            if frac > 1e-6:
                dst += a[along(slice(lo + 1, lo + 1 + q * (count - 1) + 1, q))] * np.float32(frac)
        return out
    a = a.astype(np.float32, copy=False)
    # Within the source's field of view (half a pixel beyond the outer centres) the edge pixel
    # holds; beyond it is zero padding.
    inside = ((coords >= -0.5) & (coords <= n - 0.5)).astype(np.float32)
    clamped = np.clip(coords, 0, n - 1)
    lo = np.minimum(np.floor(clamped).astype(int), max(n - 2, 0))
    frac = (clamped - lo).astype(np.float32)
    w0 = (1.0 - frac) * inside
    w1 = frac * inside
    wshape = [1] * a.ndim
    wshape[axis] = -1
    return (np.take(a, lo, axis=axis) * w0.reshape(wshape)
            + np.take(a, np.minimum(lo + 1, n - 1), axis=axis) * w1.reshape(wshape))


def _separable_linear(flat: np.ndarray, rows_src: np.ndarray, cols_src: np.ndarray) -> np.ndarray:
    """Bilinear resampling of ``flat[t, r, c]`` at rows ``rows_src`` x columns ``cols_src``,
    one 1D pass per axis over all frames at once."""
    out = _linear_1d(flat, rows_src, axis=1)
    return _to_dtype(_linear_1d(out, cols_src, axis=2), flat.dtype)
