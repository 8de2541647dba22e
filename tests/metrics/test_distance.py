"""HD95 on hand-made spheres with known distances, isotropic and anisotropic."""

import numpy as np
import pytest

from hpc_seg.metrics.distance import hd95, volume_diagonal_mm


def _sphere(shape, spacing, centre_mm, radius_mm) -> np.ndarray:
    axes = [np.arange(n) * s for n, s in zip(shape, spacing)]
    grids = np.meshgrid(*axes, indexing="ij")
    r2 = sum((g - c) ** 2 for g, c in zip(grids, centre_mm))
    return r2 <= radius_mm ** 2


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.8, 1.0, 2.5)])
def test_concentric_spheres_are_their_radius_difference_apart(spacing):
    """Every surface point of one is exactly r2 - r1 from the other's surface."""
    shape = tuple(int(round(64 / s)) for s in spacing)
    centre = (32.0, 32.0, 32.0)
    inner, outer = _sphere(shape, spacing, centre, 10.0), _sphere(shape, spacing, centre, 18.0)
    d = hd95(inner[None], outer[None], spacing).item()
    # Surface voxels sit up to one voxel inside the true surface, on both spheres alike.
    assert d == pytest.approx(8.0, abs=max(spacing))


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.0, 0.8, 1.0)])
def test_two_disjoint_spheres_at_a_known_distance(spacing):
    """Equal spheres (radius r) with centres D apart. For a point on one surface the distance to
    the other surface is |p - c2| - r, with |p - c2|^2 = D^2 + r^2 + 2 D r u, u uniform in
    [-1, 1] over the surface (Archimedes), so the 95th percentile is at u = 0.9."""
    r, dist = 8.0, 24.0
    shape = tuple(int(round(s_mm / s)) for s_mm, s in zip((64, 40, 40), spacing))
    a = _sphere(shape, spacing, (20.0, 20.0, 20.0), r)
    b = _sphere(shape, spacing, (20.0 + dist, 20.0, 20.0), r)
    expected = np.sqrt(dist ** 2 + r ** 2 + 2 * dist * r * 0.9) - r
    got = hd95(a[None], b[None], spacing).item()
    assert got == pytest.approx(expected, abs=max(spacing))
    # The spacing matters: ignoring it gives a different (wrong) answer on anisotropic grids.
    if len(set(spacing)) > 1:
        assert abs(hd95(a[None], b[None]).item() - expected) > 2 * max(spacing)


def test_identical_masks_and_empty_conventions():
    a = np.zeros((1, 20, 20, 20), bool)
    a[0, 5:10, 5:10, 5:10] = True
    empty = np.zeros_like(a)
    assert hd95(a, a).item() == 0.0
    assert hd95(empty, empty).item() == 0.0
    diag = volume_diagonal_mm((20, 20, 20), (1.0, 2.0, 3.0))
    assert hd95(empty, a, (1.0, 2.0, 3.0)).item() == pytest.approx(diag)
    assert hd95(a, empty, (1.0, 2.0, 3.0)).item() == pytest.approx(diag)
    assert hd95(a, empty, empty_distance=373.13).item() == 373.13


def test_brats_diagonal():
    assert volume_diagonal_mm((240, 240, 155), (1, 1, 1)) == pytest.approx(373.13, abs=0.01)


def test_batch_mixes_empty_and_non_empty():
    a = np.zeros((3, 12, 12), bool)
    b = np.zeros_like(a)
    a[0, 2:5, 2:5] = True
    b[0, 2:5, 2:5] = True
    a[1, 2:5, 2:5] = True
    got = hd95(a, b, (1.0, 1.0))
    assert got[0].item() == 0.0
    assert got[1].item() == pytest.approx(volume_diagonal_mm((12, 12), (1.0, 1.0)))
    assert got[2].item() == 0.0


def test_per_item_spacing():
    """One spacing per item (the cardiac slices each have their own pixel size)."""
    a = np.zeros((2, 30, 30), bool)
    b = np.zeros_like(a)
    a[:, 10:20, 10:20] = True
    b[:, 10:20, 14:24] = True    # shifted 4 pixels along the second axis
    got = hd95(a, b, [(1.0, 1.0), (1.0, 2.5)])
    assert got[0].item() == pytest.approx(4.0)
    assert got[1].item() == pytest.approx(10.0)
    with pytest.raises(ValueError, match="spacing"):
        hd95(a, b, [(1.0, 1.0)])
