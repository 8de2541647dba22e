"""NIfTI export: data layout (X, Y, Z, T), RAS affine, frame interval, geometry round trip."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from hpc_seg.cli import main
from hpc_seg.storage.shards import decode_array
from tests.cardiac.curate.test_geometry import (affine_corners, corners, quirky_cohort,  # noqa: F401
                                      same_point_set)

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@pytest.mark.parametrize("stack_id", ["1", "1_rot90"])
def test_nifti_affine_maps_voxel_corners_to_dicom_positions(quirky_cohort, tmp_path, stack_id):  # noqa: F811
    _root, info, out = quirky_cohort
    path = tmp_path / f"{stack_id}.nii.gz"
    assert main(["export", "nifti", str(out / "volumes"), stack_id, str(path)]) == 0
    img = nib.load(path)
    row = pd.read_parquet(out / "volumes").set_index("stack_id").loc[stack_id]
    px = decode_array(row["pixels"], row["shape"], row["dtype"])
    data = np.asarray(img.dataobj)
    t_n, k_n, rows, cols = px.shape
    assert data.shape == (cols, rows, k_n, t_n)
    assert np.array_equal(data[2, 1, 3, 1], px[1, 3, 1, 2])
    assert np.isclose(img.header.get_zooms()[3], 30.0)
    assert img.header.get_xyzt_units() == ("mm", "msec")
    assert int(img.header["qform_code"]) == 1 and int(img.header["sform_code"]) == 1
    lps = RAS_TO_LPS @ img.affine
    files = pd.read_parquet(out / "files")
    used = files[(files.stack_id == stack_id) & ~files.filled]
    for _, f in used.iterrows():
        d = info[f.file]
        if d["slice"] == 3:   # resampled slice: the field of view (pixel edges) must match
            ok = same_point_set(affine_corners(lps, f.slice, rows, cols, edges=True),
                                corners(d["ipp"], d["iop"], d["spacing"], d["rows"], d["cols"], edges=True))
        else:
            ok = same_point_set(affine_corners(lps, f.slice, rows, cols, edges=False),
                                corners(d["ipp"], d["iop"], d["spacing"], d["rows"], d["cols"], edges=False))
        assert ok, f.file


def test_nifti_mask_export_and_errors(quirky_cohort, tmp_path, capsys):  # noqa: F811
    _root, _info, out = quirky_cohort
    path = tmp_path / "m.nii"
    assert main(["export", "nifti", str(out / "volumes"), "1", str(path), "--mask"]) == 0
    row = pd.read_parquet(out / "volumes").set_index("stack_id").loc["1"]
    mask = decode_array(row["mask"], row["shape"], "|u1")
    assert np.array_equal(np.asarray(nib.load(path).dataobj), np.transpose(mask, (3, 2, 1, 0)))
    assert main(["export", "nifti", str(out / "volumes"), "2", str(tmp_path / "n.nii.gz"), "--mask"]) == 2
    assert "has no mask" in capsys.readouterr().err
    assert main(["export", "nifti", str(out / "volumes"), "nope", str(tmp_path / "x.nii.gz")]) == 2
    assert "no stack 'nope'" in capsys.readouterr().err
    assert not list(tmp_path.glob(".tmp-*"))
