"""Variety cohorts of the cine generator: structures where anatomy puts them, exact masks, vendor
depths, determinism, and that the shipped defaults are untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pydicom
import pytest

from hpc_seg.cardiac.synth import phantom as ph
from hpc_seg.cli import main
from hpc_seg.cardiac.synth.cohort import generate_cine_cohort, generate_patient
from hpc_seg.cardiac.synth.config import VARIETY_KEYS, CineSynthConfig
from hpc_seg.cardiac.synth.plan import build_plan
from hpc_seg.errors import ConfigError
from tests.cardiac.synth.helpers import (TINY, curated_lv_volumes, load_manifest, read_patient,
                                         score, truth_rows)

VARIETY = dict(TINY, variety=True, no_random_quirks=True, label_error={"none": 1.0})
PIDS = range(1, 6)


def _grid(anat: ph.Anatomy, step: float = 2.0):
    """An in-plane grid (x (1, C), y (R, 1)) covering the torso, in plane coordinates."""
    reach = max(anat.torso[2], anat.torso[3]) + abs(anat.torso[0]) + 20.0
    axis = np.arange(-reach, reach, step)
    return axis[None, :], axis[:, None]


def _scene(anat: ph.Anatomy, t: float, z: float):
    x, y = _grid(anat)
    st = ph.heart_state(anat, t)
    classes = ph.overlay_heart(anat, st, x, y, z, ph.background_classes(anat, x, y, z))
    xa, ya, za = ph.posed(anat, x, y, z)    # anatomy coordinates of each pixel
    shape = classes.shape
    return (classes, ph.heart_labels(anat, st, x, y, z), ph.structure_maps(anat, st, x, y, z), st,
            *(np.broadcast_to(v, shape) for v in (xa, ya, za)))


@pytest.fixture(scope="module")
def plans():
    cfg = CineSynthConfig(**VARIETY)
    return [build_plan(11, pid, 10, cfg) for pid in PIDS]


def test_each_structure_sits_where_anatomy_puts_it(plans):
    liver_seen = 0
    for plan in plans:
        anat = plan.anat
        assert anat.extra is not None
        top, mid, low = plan.z_positions[0], plan.z_positions[len(plan.z_positions) // 2], \
            plan.z_positions[-1]
        for z in (top + 15.0, top, mid, low, low - 15.0):
            classes, labels, maps, st, xa, ya, za = _scene(anat, 0.0, z)
            # Atria and aortic root only above the base plane, LV labels only below it.
            assert (za[maps["atria_aortic_root"]] > st.z_base).all()
            assert (za[labels == ph.LV_CAVITY] <= st.z_base).all()
            # Liver below the diaphragm: never above the base, on the patient's right (x < 0).
            liver = classes == ph.LIVER
            if liver.any():
                liver_seen += 1
                assert (za[liver] < st.z_base - 10.0).all()
                assert xa[liver].mean() < 0
            lv = (labels == ph.LV_CAVITY) | (labels == ph.LV_MYO)
            spine = classes == ph.SPINE
            assert spine.any(), f"patient {plan.pid}: no spine at z={z:.0f}"
            if lv.any():
                # Spine posterior to the heart (y points posterior in the heart frame).
                assert ya[spine].min() > ya[lv].max()
        classes, labels, maps, st, xa, ya, za = _scene(anat, 0.0, mid)
        lv = (labels == ph.LV_CAVITY) | (labels == ph.LV_MYO)
        spine = classes == ph.SPINE
        # Descending aorta: blood posterior to the heart, left of the spine's centre.
        aorta = (classes == ph.BLOOD) & (ya > ya[lv].max() + 5.0)
        assert aorta.any() and xa[aorta].mean() > xa[spine].mean()
        # Lungs on both sides: right of the heart, and left of the LV axis (x = 0).
        lung = classes == ph.LUNG
        assert (xa[lung] < xa[lv].min()).any() and (xa[lung] > 0).any()
        # Pericardial fat hugs the myocardium; the body wall is fat at its edge.
        fat = maps["pericardial_fat"]
        assert fat.any() and (classes[fat] == ph.FAT).all()
        assert (classes[maps["lv_myo"]] == ph.MYO).all()
        # Papillary muscles / trabeculae: muscle signal inside the labelled cavity.
        inside = maps["papillary_trabeculae"]
        assert inside.any() and (labels[inside] == ph.LV_CAVITY).all()
        assert (classes[inside] == ph.MYO).all()
    assert liver_seen, "the liver never reached the imaged slices"


def test_base_descends_and_myocardium_keeps_its_volume(plans):
    for plan in plans[:3]:
        anat = plan.anat
        ed, es = ph.heart_state(anat, 0.0), ph.heart_state(anat, anat.t_es)
        assert ed.z_base - es.z_base > 0.05 * anat.c_ed          # base descent, mm
        assert es.wall > ed.wall                                   # systolic thickening
        zs = np.arange(-anat.c_ed - 2 * anat.wall_ed, 5.0, 1.0)
        x, y = np.arange(-80, 80, 0.7)[None, :], np.arange(-80, 80, 0.7)[:, None]
        myo = [sum(int(ph.structure_maps(anat, st, x, y, z)["lv_myo"].sum()) for z in zs)
               for st in (ed, es)]
        assert myo[1] == pytest.approx(myo[0], rel=0.03)
        # The atrium enters the basal slice as the base descends.
        top = plan.z_positions[0]
        atria = [int(ph.structure_maps(anat, st, x, y, top)["atria_aortic_root"].sum())
                 for st in (ed, es)]
        assert atria[1] > atria[0]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("variety") / "cohort"
    generate_cine_cohort(root, 4, 5, CineSynthConfig(**VARIETY))
    return root


def test_masks_sum_to_the_truth_and_the_model_volumes(cohort):
    manifest, truth = load_manifest(cohort), truth_rows(cohort)
    assert manifest["generator"]["variety"] is True
    for pid, entry in manifest["patients"].items():
        vols = curated_lv_volumes(cohort, pid, manifest, entry["expected_stacks"][0])
        assert score(vols, *truth[pid]) < 0.02
        model = entry["model"]
        # Truth is measured on the masks; the drawn model volume (scaled by size^3) agrees with it
        # up to the slice discretisation.
        assert truth[pid][1] == pytest.approx(model["edv_ml"], rel=0.2)
        assert model["pediatric"] == (model["size_scale"] < 0.8)


def test_vendor_depth_reaches_the_headers_and_pixels(cohort, tmp_path):
    manifest = load_manifest(cohort)
    for pid, entry in manifest["patients"].items():
        im = next(iter(read_patient(cohort, pid, manifest).values()))[0]
        ds = pydicom.dcmread(im.path)
        bits = entry["model"]["bits_stored"]
        assert ds.BitsStored == bits and ds.HighBit == bits - 1 and ds.BitsAllocated == 16
        assert ds.Manufacturer == entry["model"]["vendor"]
        assert int(ds.pixel_array.max()) < 2**bits
    # Through the CLI: --variety turns it on, the TOML narrows the vendors to a 16-bit one.
    sixteen, job = tmp_path / "ge", tmp_path / "ge.toml"
    job.write_text("[synth_cine]\nvendors = ['ge']\nmatrices = [[256, 208]]\nmatrix_weights = [1.0]\n"
                   "label_error = {none = 1.0}\n")
    assert main(["synth", "cine", str(sixteen), "--patients", "1", "--seed", "5", "--variety",
                 "--max-matrix", "64", "--n-frames", "6", "--workers", "1", "--no-random-quirks",
                 "--job", str(job)]) == 0
    m = load_manifest(sixteen)
    assert m["generator"]["variety"] is True and m["patients"]["1"]["model"]["bits_stored"] == 16
    im = next(iter(read_patient(sixteen, "1", m).values()))[0]
    assert pydicom.dcmread(im.path).pixel_array.max() > 4095     # really 16-bit grey values


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_variety_is_deterministic_in_seed_and_pid(cohort, tmp_path):
    alone = tmp_path / "alone"
    alone.mkdir()
    generate_patient(5, 3, 4, CineSynthConfig(**{**VARIETY, "workers": 2}), alone)
    mine = {k: v for k, v in _digest(alone).items() if k.startswith("validate/3/")}
    theirs = {k: v for k, v in _digest(cohort).items() if k.startswith("validate/3/")}
    assert mine == theirs and len(mine) > 20
    # Another seed draws another patient; variety off leaves the shipped manifest as it was.
    assert build_plan(6, 3, 4, CineSynthConfig(**VARIETY)).anat != \
        build_plan(5, 3, 4, CineSynthConfig(**VARIETY)).anat
    shipped = tmp_path / "shipped"
    generate_cine_cohort(shipped, 1, 5, CineSynthConfig(**TINY))
    gen = load_manifest(shipped)["generator"]
    assert not set(VARIETY_KEYS) & set(gen)
    assert "size_scale" not in load_manifest(shipped)["patients"]["1"]["model"]


def test_variety_ranges_are_validated():
    with pytest.raises(ConfigError, match="size_scale"):
        CineSynthConfig(size_scale=(0.9, 0.5))
    with pytest.raises(ConfigError, match="snr"):
        CineSynthConfig(snr=(0.5, 10.0))
    with pytest.raises(ConfigError, match="vendors"):
        CineSynthConfig(vendors=["hitachi"])
