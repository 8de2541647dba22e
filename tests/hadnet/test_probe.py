"""The linear probe: T1ce carries the enhancing tumour in the synthetic cohort, and bad input fails."""

from __future__ import annotations

import pytest

from hpc_seg.hadnet.brats.shards import PreprocessConfig, preprocess_cohort
from hpc_seg.hadnet.synth.cohort import SynthBratsConfig, synth_brats
from hpc_seg.errors import InputError
from hpc_seg.hadnet.probe import probe_region, probe_table


@pytest.fixture(scope="module")
def pre(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    synth_brats(root / "src", SynthBratsConfig(cases=6, seed=5, shape=(40, 40, 24), spacing=4.0,
                                                workers=1, preview=0))
    return preprocess_cohort(root / "src", root / "pre", PreprocessConfig(workers=1))


# The probe is fitted and scored on the same (train) cases: enough to compare what the two roles'
# inputs can express, and robust to a tiny test split without ET.


def test_teacher_inputs_separate_enhancing_tumour_better_than_student_inputs(pre):
    teacher, student = probe_region(pre, "ET", fit_split="train", eval_split="train")
    assert (teacher.role, student.role) == ("teacher", "student")
    assert teacher.channels == (0, 1, 2, 3) and student.channels == (0, 2, 3)
    assert teacher.cases == student.cases > 0
    assert teacher.dice_mean > 0.5
    assert teacher.dice_mean > student.dice_mean + 0.2
    table = probe_table([teacher, student])
    assert "| teacher | [0, 1, 2, 3] | ET |" in table


def test_whole_tumour_is_visible_without_t1ce(pre):
    teacher, student = probe_region(pre, "WT", fit_split="train", eval_split="train")
    assert student.dice_mean > 0.5
    assert abs(teacher.dice_mean - student.dice_mean) < 0.15


def test_bad_region_and_empty_split_are_named(pre):
    with pytest.raises(InputError, match="unknown region 'XX'"):
        probe_region(pre, "XX")
    with pytest.raises(InputError, match="no case in split 'holdout'"):
        probe_region(pre, "ET", fit_split="holdout", eval_split="train")
    with pytest.raises(InputError, match="no case of split 'holdout' .* contains ET"):
        probe_region(pre, "ET", eval_split="holdout")


def test_a_folder_that_is_not_a_preprocessed_cohort_is_one_line_and_exit_2(tmp_path, capsys):
    from hpc_seg.cli import main
    from hpc_seg.errors import MissingTableError

    with pytest.raises(MissingTableError, match=r"cases: no finished parquet shard"):
        probe_region(tmp_path / "nowhere")
    assert main(["hadnet", "probe", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hpc-seg: error: ") and "nowhere/cases" in err and "\n" not in err
