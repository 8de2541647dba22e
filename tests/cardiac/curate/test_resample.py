"""The integer block-mean downscale (rows then columns, shift for power-of-two blocks) against a
plain reference: the exact block sum rounded half up, for several factors, offsets and dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from hpc_seg.cardiac.curate.resample import _block_mean


def _reference(flat: np.ndarray, fr: int, r0: int, out_r: int, fc: int, c0: int, out_c: int):
    region = flat[:, r0:r0 + fr * out_r, c0:c0 + fc * out_c].astype(np.int64)
    sums = region.reshape(flat.shape[0], out_r, fr, out_c, fc).sum(axis=(2, 4))
    return ((sums + (fr * fc) // 2) // (fr * fc)).astype(flat.dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32])
@pytest.mark.parametrize("fr, fc, r0, c0", [(2, 2, 0, 0), (2, 2, 1, 3), (3, 3, 2, 1),
                                            (4, 2, 0, 1), (3, 2, 1, 0)])
def test_block_mean_matches_rounded_block_sum(dtype, fr, fc, r0, c0):
    rng = np.random.default_rng(fr * 10 + fc + r0 + c0)
    out_r, out_c = 17, 11
    hi = np.iinfo(dtype).max
    flat = rng.integers(0, hi, size=(3, r0 + fr * out_r + 2, c0 + fc * out_c + 1),
                        dtype=np.uint64).astype(dtype)
    flat[0, r0:r0 + fr, c0:c0 + fc] = hi          # a saturated block must not overflow
    out = _block_mean(flat, fr, r0, out_r, fc, c0, out_c)
    assert out.dtype == flat.dtype and out.shape == (3, out_r, out_c)
    np.testing.assert_array_equal(out, _reference(flat, fr, r0, out_r, fc, c0, out_c))
    assert out[0, 0, 0] == hi
