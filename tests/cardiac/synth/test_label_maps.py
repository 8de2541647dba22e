"""Multi-structure label maps of the cine generator: every structure, the exact masks, the geometry."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from hpc_seg.cardiac.synth import phantom as ph
from hpc_seg.cardiac.synth.cohort import generate_cine_cohort
from hpc_seg.cardiac.synth.config import CineSynthConfig
from tests.cardiac.synth.helpers import TINY, load_manifest, read_patient

LABELLED = dict(TINY, variety=True, no_random_quirks=True, label_error={"none": 1.0},
                label_maps=True)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("label_maps") / "c"
    generate_cine_cohort(root, 3, 5, CineSynthConfig(**LABELLED))
    return root


def _label_map(root, pid: str, split: str):
    img = nib.load(root / "label_maps" / split / f"{pid}.nii.gz")
    return img, np.asarray(img.dataobj).transpose(3, 2, 1, 0)      # (i,j,k,t) -> [t,k,j,i]


def test_label_maps_hold_the_truth_masks_pixel_for_pixel(cohort):
    manifest = load_manifest(cohort)
    doc = json.loads((cohort / "label_maps" / "structures.json").read_text())
    assert doc["classes"] == {"lv": [ph.S_LV_BLOOD, ph.S_LV_PAPILLARY], "myocardium": [ph.S_LV_MYO],
                              "rv": [ph.S_RV_BLOOD]}
    for pid, entry in manifest["patients"].items():
        img, data = _label_map(cohort, pid, entry["split"])
        stack = entry["expected_stacks"][0]
        assert list(data.shape) == stack["shape"] and data.dtype == np.uint8
        series = read_patient(cohort, pid, manifest)
        masks = np.load(cohort / "truth_masks" / f"{pid}.npz")
        for k, sn in enumerate(stack["kept_series_by_position"]):
            for im in series[sn]:
                expected = masks[im.ds.SOPInstanceUID]
                got = np.zeros_like(expected)
                for name, label in (("rv", 3), ("myocardium", 2), ("lv", 1)):
                    got[np.isin(data[int(im.ds.InstanceNumber) - 1, k], doc["classes"][name])] = label
                assert np.array_equal(got, expected), (pid, sn, im.path.name)
        # The affine puts voxel (i, j, k) where the DICOM header puts pixel (row j, col i).
        first = series[stack["kept_series_by_position"][0]][0]
        last = series[stack["kept_series_by_position"][-1]][0]
        for (i, j), k, im in (((5, 3), 0, first), ((2, 7), len(stack["kept_series_by_position"]) - 1,
                                                    last)):
            ras = img.affine @ np.array([i, j, k, 1.0])
            assert np.allclose(ras[:3] * [-1, -1, 1], im.lps(np.array([j]), np.array([i]))[0],
                               atol=0.05)


def test_label_maps_name_every_structure_the_phantom_draws(cohort):
    manifest = load_manifest(cohort)
    seen = set()
    for pid, entry in manifest["patients"].items():
        seen |= set(np.unique(_label_map(cohort, pid, entry["split"])[1]).tolist())
    names = json.loads((cohort / "label_maps" / "structures.json").read_text())["structures"]
    assert {names[str(s)] for s in seen} == set(ph.STRUCTURES)
    assert {"lungs", "liver", "body_wall_muscle", "descending_aorta", "atria_aortic_root",
            "pericardial_fat", "body_fat"} <= set(names.values())
    assert manifest["generator"]["label_maps"] is True and "label_maps" in manifest


def test_without_label_maps_the_cohort_and_its_manifest_are_unchanged(tmp_path):
    cfg = dict(TINY, n_frames=4, no_random_quirks=True)
    generate_cine_cohort(tmp_path / "c", 1, 0, CineSynthConfig(**cfg))
    manifest = load_manifest(tmp_path / "c")
    assert "label_maps" not in manifest["generator"] and "label_maps" not in manifest
    assert not (tmp_path / "c" / "label_maps").exists()
