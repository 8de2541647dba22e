"""Preprocessing: the published normalisation, the fixed pad size, shards, and the exact inverse."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from hpc_seg.cli import main
from hpc_seg.hadnet.brats.preprocess import (bounding_box, brain_mask, case_tensors, normalise,
                                           preprocess_case, restore_to_original)
from hpc_seg.hadnet.brats.reader import SEQUENCES_TEACHER, find_cases, labels_to_classes, load_case
from hpc_seg.hadnet.brats.shards import PreprocessConfig, case_index, preprocess_cohort, read_cases
from hpc_seg.storage.shards import shard_files
from hpc_seg.errors import ConfigError, InputError

from tests.hadnet.fixtures import tiny_cohort, write_case


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("brats")
    raw = tiny_cohort(root / "raw", cases=5, seed=3)
    pre = preprocess_cohort(raw, root / "pre", PreprocessConfig(workers=2))
    return raw, pre


def _original(row):
    case = next(c for c in find_cases(row["source_dir"].rsplit("/", 2)[0])
                if c.subject == row["case_id"])
    return load_case(case)


def test_pad_size_is_the_largest_training_crop_rounded_up_to_16(cohort):
    raw, pre = cohort
    meta = json.loads((pre / "preprocess.json").read_text())
    crops = []
    for c in find_cases(raw):
        split = json.loads((raw / "manifest.json").read_text())["cases"]
        if {e["subject"]: e["split"] for e in split}[c.subject] == "train":
            b = bounding_box(brain_mask(load_case(c)[0]))
            crops.append((b[1] - b[0], b[3] - b[2], b[5] - b[4]))
    expected = [int(np.ceil(m / 16) * 16) for m in np.max(crops, axis=0)]
    assert meta["pad_size"] == expected and all(p % 16 == 0 for p in expected)
    assert {s: len(case_index(pre, s)) for s in ("train", "val", "test")} == \
        {"train": 3, "val": 1, "test": 1}


def test_restore_gives_back_the_original_label_exactly(cohort):
    _, pre = cohort
    rows = list(read_cases(pre))
    assert [r["case_id"] for r in rows] == sorted(r["case_id"] for r in rows) and len(rows) == 5
    for row in rows:
        images, seg, affine = _original(row)
        image, label, mask = case_tensors(row)
        assert image.shape == (4, *row["pad_size"]) and image.dtype == np.float32
        assert label.dtype == np.int64 and mask.dtype == bool
        restored = restore_to_original(label.astype(np.uint8), row)
        assert restored.dtype == np.uint8
        np.testing.assert_array_equal(restored, labels_to_classes(seg))
        # The mask restores to the "non-zero in all four" mask, the affine is FLAIR's.
        np.testing.assert_array_equal(restore_to_original(mask.astype(np.uint8), row),
                                      brain_mask(images).astype(np.uint8))
        assert np.allclose(np.reshape(row["affine"], (4, 4)), affine)
        assert row["image_dtype"] == np.dtype(np.float16).str


def test_images_are_normalised_inside_the_mask_and_zero_outside(cohort):
    _, pre = cohort
    row = next(read_cases(pre, split="val"))
    images, _, _ = _original(row)
    image, _, mask = case_tensors(row)
    assert not image[:, ~mask].any()
    for ch, seq in enumerate(SEQUENCES_TEACHER):
        inside = image[ch][mask]
        assert inside.min() == 0.0 and inside.max() == 1.0
        # Same values as the formula applied on the original grid (float16 rounding aside).
        ref = normalise(images[seq], brain_mask(images), seq)
        back = np.zeros(ref.shape, np.float32)
        b = row["bbox"]
        crop = image[ch][tuple(slice(p, p + (b[2 * i + 1] - b[2 * i]))
                               for i, p in enumerate(row["pad_before"]))]
        back[b[0]:b[1], b[2]:b[3], b[4]:b[5]] = crop
        np.testing.assert_allclose(back, ref, atol=1e-3)


def test_normalise_clips_the_top_at_three_sigma():
    v = np.array([0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 100.0], np.float32)
    m = v > 0
    out = normalise(v, m, "x")
    z = (v[m] - v[m].mean()) / v[m].std()
    z = np.minimum(z, 3.0)
    np.testing.assert_allclose(out[m], (z - z.min()) / (z.max() - z.min()), rtol=1e-6)
    assert out[0] == 0.0


def test_case_larger_than_the_pad_size_is_centre_cropped_and_restores_exactly(cohort, caplog):
    raw, _ = cohort
    case = find_cases(raw)[0]
    images, seg, _ = load_case(case)
    b = bounding_box(brain_mask(images))
    crop = np.array([b[1] - b[0], b[3] - b[2], b[5] - b[4]])
    pad = [int(crop[0]) - 5, int(crop[1]) + 3, int(crop[2]) - 2]      # cut, pad, cut
    row = preprocess_case(case, pad)
    assert row["cropped"] and row["pad_before"][0] < 0 and row["pad_before"][1] > 0
    assert "centre-cropping" in caplog.text
    _, label, _ = case_tensors(row)
    assert label.shape == tuple(pad)
    expected = labels_to_classes(seg).copy()
    # What the network never saw: the centre-crop margins (floor before, ceil after).
    for axis, cut in ((0, 5), (2, 2)):
        lo, hi = b[2 * axis] + cut // 2, b[2 * axis + 1] - (cut - cut // 2)
        keep = np.zeros(seg.shape[axis], bool)
        keep[lo:hi] = True
        expected = expected * keep.reshape([-1 if a == axis else 1 for a in range(3)])
    np.testing.assert_array_equal(restore_to_original(label.astype(np.uint8), row), expected)


def test_preprocess_case_from_a_paths_dict(cohort):
    raw, pre = cohort
    case = find_cases(raw)[1]
    stored = next(r for r in read_cases(pre) if r["case_id"] == case.subject)
    row = preprocess_case({**case.paths, "dir": case.directory, "subject": case.subject},
                          stored["pad_size"])
    assert row["case_id"] == case.subject and row["bbox"] == stored["bbox"]
    assert row["image"] == stored["image"] and row["label"] is None   # no seg in a paths dict


def test_ranks_split_the_cases_by_index(cohort):
    _, pre = cohort
    ids = case_index(pre, "train")
    r0 = [r["case_id"] for r in read_cases(pre, "train", rank=0, world_size=2)]
    r1 = [r["case_id"] for r in read_cases(pre, "train", rank=1, world_size=2)]
    assert r0 == ids[0::2] and r1 == ids[1::2]


def test_rerun_skips_finished_cases_and_redoes_lost_ones(cohort, tmp_path):
    raw, pre = cohort
    import shutil

    copy = tmp_path / "pre"
    shutil.copytree(pre, copy)
    files = shard_files(copy / "cases")
    before = {f.name: f.stat().st_mtime_ns for f in files}
    preprocess_cohort(raw, copy, PreprocessConfig(workers=1))
    assert {f.name: f.stat().st_mtime_ns for f in shard_files(copy / "cases")} == before
    lost = files[0]
    import pyarrow.parquet as pq

    lost_ids = pq.read_table(lost, columns=["case_id"]).column("case_id").to_pylist()
    lost.unlink()
    preprocess_cohort(raw, copy, PreprocessConfig(workers=1))
    assert case_index(copy) == case_index(pre)
    new = set(f.name for f in shard_files(copy / "cases")) - set(before)
    assert len(new) == 1
    redone = pq.read_table(copy / "cases" / new.pop(), columns=["case_id"])
    assert redone.column("case_id").to_pylist() == lost_ids
    with pytest.raises(ConfigError, match="pad size"):
        preprocess_cohort(raw, copy, PreprocessConfig(workers=1, pad_size=[16, 16, 16]))


def test_bad_case_is_skipped_with_its_reason_and_the_cli_says_so(tmp_path, capsys):
    raw = tmp_path / "raw"
    for i in range(3):
        write_case(raw, f"S{i}", seed=i)
    (raw / "HGG" / "S1" / "S1_t2.nii.gz").unlink()
    rc = main(["hadnet", "preprocess", str(raw), str(tmp_path / "pre"), "--workers", "1",
               "--val-fraction", "0", "--test-fraction", "0", "--image-dtype", "float32"])
    out = capsys.readouterr().out
    assert rc == 1 and "pad size: 16 x 16 x 16" in out and "1 skipped" in out
    skipped = (tmp_path / "pre" / "skipped.csv").read_text().splitlines()
    assert skipped[0] == "case_id,source_dir,reason" and skipped[1].startswith("S1,")
    assert "S1_t2.nii.gz: missing" in skipped[1]
    assert case_index(tmp_path / "pre") == ["S0", "S2"]
    row = next(read_cases(tmp_path / "pre"))
    assert row["image_dtype"] == np.dtype(np.float32).str


def test_inference_cohort_with_a_given_pad_size(tmp_path, capsys):
    raw = tmp_path / "infer"
    write_case(raw, "V1", grade=None, seg_values=None)
    assert main(["hadnet", "preprocess", str(raw), str(tmp_path / "pre"),
                 "--pad-size", "16", "16", "32", "--workers", "1"]) == 0
    (row,) = read_cases(tmp_path / "pre")
    assert row["split"] == "test" and row["label"] is None and row["pad_size"] == [16, 16, 32]
    image, label, mask = case_tensors(row)
    assert label is None and image.shape == (4, 16, 16, 32)
    # Without training cases and without --pad-size there is nothing to derive it from.
    assert main(["hadnet", "preprocess", str(raw), str(tmp_path / "pre2")]) == 2
    assert "--pad-size" in capsys.readouterr().err


def test_bad_config_values():
    with pytest.raises(ConfigError, match="pad_size"):
        PreprocessConfig(pad_size=[1, 2])
    with pytest.raises(ConfigError, match="image_dtype"):
        PreprocessConfig(image_dtype="int8")


def test_empty_brain_mask_names_the_flair_file(tmp_path):
    d = write_case(tmp_path, "E1")
    img = nib.load(d / "E1_t1.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros(img.shape, np.int16), img.affine), d / "E1_t1.nii.gz")
    with pytest.raises(InputError, match=r"E1_flair\.nii\.gz: empty brain mask"):
        preprocess_case(find_cases(tmp_path)[0], [16, 16, 16])
