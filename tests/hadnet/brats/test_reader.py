"""The BraTS reader: both layouts, the label mapping, and errors that name the file."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from hpc_seg.hadnet.brats.reader import (SEQUENCES_STUDENT, SEQUENCES_TEACHER, STUDENT_CHANNELS,
                                       classes_to_labels, find_cases, labels_to_classes,
                                       load_case)
from hpc_seg.errors import InputError

from tests.hadnet.fixtures import write_case


def test_label_mapping_both_ways():
    seg = np.array([[0, 1], [2, 4]], np.uint8)
    cls = labels_to_classes(seg)
    assert cls.dtype == np.uint8 and cls.tolist() == [[0, 1], [2, 3]]
    assert classes_to_labels(cls).tolist() == seg.tolist()
    assert classes_to_labels(np.arange(4)).tolist() == [0, 1, 2, 4]
    with pytest.raises(ValueError, match=r"\[3\]"):
        labels_to_classes(np.array([0, 3]))
    with pytest.raises(ValueError, match="0..3"):
        classes_to_labels(np.array([4]))
    assert [SEQUENCES_TEACHER[i] for i in STUDENT_CHANNELS] == list(SEQUENCES_STUDENT)


def test_training_and_inference_layouts(tmp_path):
    write_case(tmp_path / "train", "S2", grade="LGG")
    write_case(tmp_path / "train", "S1", grade="HGG")
    (tmp_path / "train" / "HGG" / "notes").mkdir()          # no NIfTI: ignored
    cases = find_cases(tmp_path / "train")
    assert [(c.subject, c.grade) for c in cases] == [("S1", "HGG"), ("S2", "LGG")]
    images, seg, affine = load_case(cases[0])
    assert sorted(images) == ["flair", "t1", "t1ce", "t2"] and images["t1"].dtype == np.float32
    assert seg.dtype == np.uint8 and set(np.unique(seg)) == {0, 1, 2, 4}
    assert np.allclose(affine, np.diag([-1.0, -1.0, 1.0, 1.0]))

    write_case(tmp_path / "infer", "V1", grade=None, seg_values=None)
    (case,) = find_cases(tmp_path / "infer")
    assert case.seg is None and case.grade is None
    assert load_case(case)[1] is None


def test_empty_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no BraTS subjects"):
        find_cases(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        find_cases(tmp_path / "nope")


def _one(tmp_path, **kw):
    d = write_case(tmp_path, "S1", **kw)
    (case,) = find_cases(tmp_path)
    return d, case


def test_missing_sequence_names_the_file(tmp_path):
    d, case = _one(tmp_path)
    (d / "S1_t1ce.nii.gz").unlink()
    with pytest.raises(InputError, match=r"S1_t1ce\.nii\.gz: missing"):
        load_case(case)


def test_missing_seg_in_training_layout_names_the_file(tmp_path):
    d, case = _one(tmp_path)
    (d / "S1_seg.nii.gz").unlink()
    with pytest.raises(InputError, match=r"S1_seg\.nii\.gz: missing"):
        load_case(case)


def test_mismatched_shape_names_the_file(tmp_path):
    d, case = _one(tmp_path)
    nib.save(nib.Nifti1Image(np.ones((10, 12, 9), np.int16), np.diag([-1.0, -1.0, 1.0, 1.0])),
             d / "S1_t2.nii.gz")
    with pytest.raises(InputError, match=r"S1_t2\.nii\.gz: shape \(10, 12, 9\) differs"):
        load_case(case)


def test_mismatched_affine_names_the_file(tmp_path):
    d, case = _one(tmp_path)
    img = nib.load(d / "S1_t1.nii.gz")
    affine = img.affine.copy()
    affine[0, 3] += 2.0
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), affine), d / "S1_t1.nii.gz")
    with pytest.raises(InputError, match=r"S1_t1\.nii\.gz: affine differs .* by up to 2 mm"):
        load_case(case)


def test_unknown_labels_name_the_file_and_values(tmp_path):
    _, case = _one(tmp_path, seg_values=(0, 1, 3, 4))
    with pytest.raises(InputError, match=r"S1_seg\.nii\.gz: unknown label value\(s\) 3;"):
        load_case(case)


def test_corrupt_file_names_the_file(tmp_path):
    d, case = _one(tmp_path)
    (d / "S1_flair.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(InputError, match=r"S1_flair\.nii\.gz: cannot read"):
        load_case(case)
