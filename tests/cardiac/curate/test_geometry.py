"""Geometry of curated stacks: affines map every voxel to its true DICOM position (< 0.05 mm).

Checked for plain slices, an in-plane rotated slice, a resampled slice (other pixel spacing),
and the rot90 copy of a Rows < Columns stack.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hpc_seg.cardiac.curate.geometry import PlaneGrid, grid_from_dicom, rot90_stack, stack_affine
from hpc_seg.cardiac.curate.resample import resample_to_grid
from hpc_seg.cardiac.ingest.run import IngestConfig, ingest
from hpc_seg.storage.shards import decode_array
from tests.cardiac.ingest.dicom_fixtures import (resampled_slice_geometry, rotated_slice_geometry,
                                            value_at, write_slice, write_stack)

TOL_MM = 0.05


def corners(ipp, iop, spacing, rows, cols, *, edges: bool) -> np.ndarray:
    """The 4 in-plane corners of a DICOM image: pixel centres, or the outer pixel edges."""
    iop = np.asarray(iop, float)
    lo, hi_r, hi_c = (-0.5, rows - 0.5, cols - 0.5) if edges else (0.0, rows - 1.0, cols - 1.0)
    return np.array([np.asarray(ipp, float) + i * spacing[1] * iop[:3] + j * spacing[0] * iop[3:]
                     for j in (lo, hi_r) for i in (lo, hi_c)])


def affine_corners(affine: np.ndarray, k: int, rows: int, cols: int, *, edges: bool) -> np.ndarray:
    lo, hi_r, hi_c = (-0.5, rows - 0.5, cols - 0.5) if edges else (0.0, rows - 1.0, cols - 1.0)
    return np.array([(affine @ [i, j, k, 1.0])[:3] for j in (lo, hi_r) for i in (lo, hi_c)])


def same_point_set(a: np.ndarray, b: np.ndarray, tol: float = TOL_MM) -> bool:
    """Every point of ``a`` has a partner in ``b`` within ``tol`` (4 corners, any order)."""
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    return bool((d.min(axis=1) < tol).all() and (d.min(axis=0) < tol).all())


@pytest.fixture(scope="module")
def quirky_cohort(tmp_path_factory) -> tuple[Path, dict[str, dict], Path]:
    """Rows < Columns stack of 5 slices; slice 2 stored rotated, slice 3 at another spacing."""
    root = tmp_path_factory.mktemp("geo") / "src"
    iop = np.array([0.8, 0.6, 0.0, -0.6, 0.8, 0.0])     # oblique in-plane axes, normal +z
    origin, spacing, rows, cols = np.array([-12.0, -7.0, 20.0]), (1.5, 1.5), 8, 12
    masks: dict[str, np.ndarray] = {}
    info = {}
    for k in range(5):
        ipp = origin + 8.0 * k * np.array([0, 0, 1.0])
        geo = (ipp, iop, spacing, rows, cols)
        if k == 2:
            geo = rotated_slice_geometry(*geo)
        elif k == 3:
            geo = resampled_slice_geometry(*geo, new_spacing=(1.0, 1.0))
        g_ipp, g_iop, g_sp, g_rows, g_cols = geo
        files = write_slice(root, f"train/1/study/sax_{k + 1}", pid="1", series=k + 1, ipp=g_ipp,
                            iop=g_iop, spacing=g_sp, rows=g_rows, cols=g_cols, n_frames=3,
                            masks=masks)
        for f in files.values():
            f["slice"] = k
        info.update(files)
    write_stack(root, "2", "validate", rows=8, cols=8, n_frames=3)  # a plain square stack
    (root / "masks").mkdir()
    np.savez(root / "masks" / "1.npz", **masks)
    out = root.parent / "out"
    ingest(root, out, IngestConfig(engine="local", workers=1, progress=False))
    return root, info, out


def test_affine_maps_every_slice_corner_to_its_dicom_position(quirky_cohort):
    _root, info, out = quirky_cohort
    vols = pd.read_parquet(out / "volumes").set_index("stack_id")
    files = pd.read_parquet(out / "files")
    assert {"1", "1_rot90", "2"} <= set(vols.index)
    for stack_id in ("1", "1_rot90"):
        row = vols.loc[stack_id]
        affine = np.asarray(row["affine"]).reshape(4, 4)
        t, k_n, rows, cols = row["shape"]
        assert k_n == 5
        used = files[(files.stack_id == stack_id) & ~files.filled]
        assert len(used) == 15
        for _, f in used.iterrows():
            d = info[f.file]
            assert d["slice"] == f.slice
            # Pixel edges (field of view) hold for plain, rotated and resampled slices alike.
            assert same_point_set(affine_corners(affine, f.slice, rows, cols, edges=True),
                                  corners(d["ipp"], d["iop"], d["spacing"], d["rows"], d["cols"],
                                          edges=True)), (stack_id, f.file)
            if d["slice"] != 3:   # not resampled: pixel centres coincide too
                assert same_point_set(affine_corners(affine, f.slice, rows, cols, edges=False),
                                      corners(d["ipp"], d["iop"], d["spacing"], d["rows"],
                                              d["cols"], edges=False)), (stack_id, f.file)


def test_every_voxel_holds_the_value_of_its_position(quirky_cohort):
    """The fixture's pixel value is a linear function of position: a wrong affine shows."""
    _root, _info, out = quirky_cohort
    vols = pd.read_parquet(out / "volumes").set_index("stack_id")
    for stack_id in ("1", "1_rot90"):
        row = vols.loc[stack_id]
        px = decode_array(row["pixels"], row["shape"], row["dtype"]).astype(float)
        affine = np.asarray(row["affine"]).reshape(4, 4)
        t_n, k_n, rows, cols = px.shape
        jj, ii = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        for k in range(k_n):
            pos = (np.stack([ii, jj, np.full_like(ii, k), np.ones_like(ii)], -1) @ affine.T)[..., :3]
            for t in range(t_n):
                err = np.abs(px[t, k] - value_at(pos, t))
                assert err.max() <= 1.0, (stack_id, k, t, err.max())


def test_rotated_copy_has_rows_ge_cols_and_same_metadata(quirky_cohort):
    _root, _info, out = quirky_cohort
    vols = pd.read_parquet(out / "volumes").set_index("stack_id")
    a, b = vols.loc["1"], vols.loc["1_rot90"]
    assert list(a["shape"]) == [3, 5, 8, 12] and list(b["shape"]) == [3, 5, 12, 8]
    assert not a["rotated_90"] and b["rotated_90"]
    assert list(a["slice_positions_mm"]) == list(b["slice_positions_mm"])
    assert np.allclose(a["pixel_spacing_mm"], [1.5, 1.5]) and np.allclose(b["pixel_spacing_mm"], [1.5, 1.5])
    issues = pd.read_parquet(out / "issues")
    problems = set(issues[issues.subject_id == "1"].problem)
    assert {"inplane_rotated", "other_geometry", "rows_lt_cols"} <= problems


def test_masks_follow_the_pixels(quirky_cohort):
    """Mask = (pixel // 7) % 4 in the source: after curation the relation must still hold
    wherever pixels were copied, not interpolated (all slices but the resampled one)."""
    _root, _info, out = quirky_cohort
    vols = pd.read_parquet(out / "volumes").set_index("stack_id")
    for stack_id in ("1", "1_rot90"):
        row = vols.loc[stack_id]
        px = decode_array(row["pixels"], row["shape"], row["dtype"])
        mk = decode_array(row["mask"], row["shape"], "|u1")
        for k in (0, 1, 2, 4):
            assert np.array_equal(mk[:, k], ((px[:, k] // 7) % 4).astype(np.uint8)), (stack_id, k)
        assert mk[:, 3].max() <= 3


def test_rot90_stack_keeps_each_voxel_position():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    affine = stack_affine(PlaneGrid(rng.normal(size=3) * 10, q[:, 0] * 1.3, q[:, 1] * 0.9, 5, 7),
                          q[:, 2] * 6.0)
    vol = rng.integers(0, 1000, size=(2, 3, 5, 7)).astype(np.uint16)
    rot, new = rot90_stack(vol, affine)
    assert rot.shape == (2, 3, 7, 5)
    where = {}
    for j in range(5):
        for i in range(7):
            for k in range(3):
                where[(vol[0, k, j, i], vol[1, k, j, i])] = (affine @ [i, j, k, 1])[:3]
    for j in range(7):
        for i in range(5):
            for k in range(3):
                key = (rot[0, k, j, i], rot[1, k, j, i])
                assert np.allclose((new @ [i, j, k, 1])[:3], where[key], atol=1e-9)


def test_resample_exact_for_rotation_and_linear_for_spacing():
    ipp, iop, sp, rows, cols = np.array([1.0, 2.0, 3.0]), np.array([1, 0, 0, 0, 1, 0.0]), (2.0, 1.0), 6, 4
    target = grid_from_dicom(ipp, iop, sp, rows, cols)
    pos = np.stack([np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")[1] * 1.0 + 1.0,
                    np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")[0] * 2.0 + 2.0,
                    np.full((rows, cols), 3.0)], -1)
    truth = np.rint(value_at(pos, 0)).astype(np.uint16)
    r_ipp, r_iop, r_sp, r_rows, r_cols = rotated_slice_geometry(ipp, iop, sp, rows, cols)
    rotated = np.rot90(truth)
    assert rotated.shape == (r_rows, r_cols)
    back = resample_to_grid(rotated[None], grid_from_dicom(r_ipp, r_iop, r_sp, r_rows, r_cols),
                            target, order=1)[0]
    assert np.array_equal(back, truth)


def test_axis_aligned_resampling_matches_pointwise_interpolation():
    """The separable fast path (downscale, other spacing) equals scipy's map_coordinates."""
    from scipy import ndimage

    rng = np.random.default_rng(1)
    src = PlaneGrid(np.array([0.0, 0, 0]), np.array([0.7, 0, 0]), np.array([0, 0.7, 0]), 40, 30)
    dst = PlaneGrid(np.array([-1.1, 0.3, 0]), np.array([1.3, 0, 0]), np.array([0, 1.3, 0]), 25, 20)
    stack = rng.integers(0, 4000, size=(3, 40, 30)).astype(np.uint16)
    fast = resample_to_grid(stack, src, dst, order=1)
    jj, ii = np.meshgrid(np.arange(25), np.arange(20), indexing="ij")
    coords = np.stack([(0.3 + jj * 1.3) / 0.7, (-1.1 + ii * 1.3) / 0.7])
    for t in range(3):
        slow = ndimage.map_coordinates(stack[t].astype(float), coords, order=1, mode="constant")
        inside = (coords[0] <= 39) & (coords[1] <= 29) & (coords[1] >= 0)
        assert np.abs(fast[t][inside].astype(float) - np.rint(slow[inside])).max() <= 1
        assert (fast[t][coords[1] < -1] == 0).all()


def test_integer_downscale_is_the_block_mean():
    from hpc_seg.cardiac.curate.geometry import downscaled_grid

    rng = np.random.default_rng(2)
    src = PlaneGrid(np.array([5.0, 1, 2]), np.array([0, 0.6, 0]), np.array([0.6, 0, 0]), 512, 300)
    dst, scale = downscaled_grid(src)
    assert scale == 0.5 and (dst.rows, dst.cols) == (256, 150)
    stack = rng.integers(0, 4000, size=(2, 512, 300)).astype(np.uint16)
    out = resample_to_grid(stack, src, dst, order=1)
    expect = stack.reshape(2, 256, 2, 150, 2).astype(float).mean(axis=(2, 4))
    assert np.abs(out - expect).max() <= 0.5
    # The same through the general separable path, by making the dtype signed.
    general = resample_to_grid(stack.astype(np.int32), src, dst, order=1)
    assert np.abs(general - expect).max() <= 0.5 + 1e-6


@pytest.mark.parametrize("flip", [False, True])
def test_nearest_resampling_of_masks_matches_pointwise_rounding(flip):
    rng = np.random.default_rng(3)
    u = np.array([0, -0.5, 0]) if flip else np.array([0, 0.5, 0])
    src = PlaneGrid(np.array([0.0, 3.0 if flip else 0, 0]), u, np.array([0.5, 0, 0]), 12, 7)
    dst = PlaneGrid(np.array([-0.25, 0.25, 0]), np.array([0, 1.0, 0]), np.array([1.0, 0, 0]), 8, 5)
    mask = rng.integers(0, 4, size=(2, 12, 7)).astype(np.uint8)
    out = resample_to_grid(mask, src, dst, order=0)
    for j in range(8):
        for i in range(5):
            p = dst.origin + i * dst.u + j * dst.v - src.origin
            ii = int(np.rint(p @ src.u / (src.u @ src.u)))
            jj = int(np.rint(p @ src.v / (src.v @ src.v)))
            want = mask[:, jj, ii] if 0 <= ii < 7 and 0 <= jj < 12 else [0, 0]
            assert list(out[:, j, i]) == list(want), (j, i)


@pytest.mark.parametrize("rows,cols,new_rows,new_cols", [(320, 260, 256, 208), (40, 30, 30, 23),
                                                         (24, 20, 30, 25)])
def test_rational_rescale_matches_pointwise_interpolation(rows, cols, new_rows, new_cols):
    """Same field of view at another matrix (the downscale and other_geometry cases)."""
    from scipy import ndimage

    rng = np.random.default_rng(4)
    src = PlaneGrid(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), rows, cols)
    su, sv = cols / new_cols, rows / new_rows
    origin = np.array([(su - 1) / 2, (sv - 1) / 2, 0.0])
    dst = PlaneGrid(origin, np.array([su, 0, 0]), np.array([0, sv, 0]), new_rows, new_cols)
    stack = rng.integers(0, 4000, size=(2, rows, cols)).astype(np.uint16)
    fast = resample_to_grid(stack, src, dst, order=1)
    jj, ii = np.meshgrid(np.arange(new_rows), np.arange(new_cols), indexing="ij")
    coords = np.stack([origin[1] + jj * sv, origin[0] + ii * su])
    for t in range(2):
        slow = np.rint(ndimage.map_coordinates(stack[t].astype(float), coords, order=1,
                                               mode="nearest"))
        assert np.abs(fast[t].astype(float) - slow).max() <= 1
