"""Pre-training and distillation loops: outputs, skip when finished, resume after pre-emption."""

from __future__ import annotations

import json

import pytest
import torch

from hpc_seg.runtime.checkpoint import list_checkpoints, load_latest
from hpc_seg.hadnet.train.config import HadnetTrainConfig
from hpc_seg.hadnet.train.data import toy_cases
from hpc_seg.hadnet.models.io import file_sha256, load_model_file
from hpc_seg.hadnet.train.run import MemorySource, run_distill, run_pretrain

SHAPE = (32, 32, 32)


@pytest.fixture(scope="module")
def source() -> MemorySource:
    return MemorySource(train=toy_cases(4, SHAPE, seed=0), val=toy_cases(2, SHAPE, seed=1),
                        pad_size=list(SHAPE))


@pytest.fixture(scope="module")
def cfg() -> HadnetTrainConfig:
    return HadnetTrainConfig(k=4, epochs=2, distill_epochs=2, device="cpu", seed=3, threads=1)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, source, cfg):
    root = tmp_path_factory.mktemp("pre")
    return (run_pretrain(cfg, source, root / "teacher", "teacher"),
            run_pretrain(cfg, source, root / "student", "student"))


class Preempted(Exception):
    pass


def _preempt_after(epoch_to_stop: int):
    def hook(epoch: int) -> None:
        if epoch == epoch_to_stop:
            raise Preempted(f"simulated pre-emption after epoch {epoch + 1}")
    return hook


def _final_state(out_dir):
    return load_latest(out_dir / "checkpoints")


def _assert_same_state(a, b):
    for name, sd in a["modules"].items():
        for key, t in sd.items():
            assert torch.equal(t, b["modules"][name][key]), f"{name}.{key} differs"
    assert a["epoch"] == b["epoch"] and a["best_vm"] == b["best_vm"]
    assert a["optimizers"].keys() == b["optimizers"].keys()


def test_pretrain_writes_model_checkpoints_history_and_summary(pretrained, source, cfg):
    teacher, student = pretrained
    model, meta = load_model_file(teacher)
    assert model.in_channels == 4 and meta["role"] == "teacher" and meta["pad_size"] == [32, 32, 32]
    assert meta["config"]["k"] == 4 and meta["preprocess"] == {"pad_size": [32, 32, 32]}
    assert json.loads((teacher.parent / "preprocess.json").read_text())["pad_size"] == [32, 32, 32]
    s_model, s_meta = load_model_file(student)
    assert s_model.in_channels == 3 and s_meta["channels"] == [0, 2, 3]
    hist = json.loads((teacher.parent / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [0, 1] and all("val_VM" in h for h in hist)
    assert meta["vm"] == max(h["val_VM"] for h in hist)
    ckpts = list_checkpoints(teacher.parent / "checkpoints")
    assert [p.name for p in ckpts] == ["ckpt-000000.pt", "ckpt-000001.pt"]
    state = load_latest(teacher.parent / "checkpoints")
    assert set(state) >= {"modules", "optimizers", "epoch", "best_vm", "rng"}
    summary = json.loads((teacher.parent / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["best_path"] == str(teacher)


def test_rerunning_a_finished_run_skips_training(pretrained, source, cfg):
    teacher, _ = pretrained
    before = file_sha256(teacher)
    mtime = (teacher.parent / "checkpoints" / "ckpt-000001.pt").stat().st_mtime_ns
    assert run_pretrain(cfg, source, teacher.parent, "teacher") == teacher
    assert file_sha256(teacher) == before
    assert (teacher.parent / "checkpoints" / "ckpt-000001.pt").stat().st_mtime_ns == mtime


def test_pretrain_resumes_after_preemption_to_the_same_weights(tmp_path, source, cfg):
    cfg3 = cfg.with_(epochs=3)  # augmentation and dropout on
    run_pretrain(cfg3, source, tmp_path / "straight", "student")
    with pytest.raises(Preempted):
        run_pretrain(cfg3, source, tmp_path / "resumed", "student", on_epoch_end=_preempt_after(0))
    assert [p.name for p in list_checkpoints(tmp_path / "resumed" / "checkpoints")] == ["ckpt-000000.pt"]
    assert not (tmp_path / "resumed" / "summary.json").exists()
    run_pretrain(cfg3, source, tmp_path / "resumed", "student")
    _assert_same_state(_final_state(tmp_path / "straight"), _final_state(tmp_path / "resumed"))
    h = json.loads((tmp_path / "resumed" / "history.json").read_text())
    assert [r["epoch"] for r in h] == [0, 1, 2]


@pytest.mark.parametrize("variant", ["had", "ad"])
def test_distill_resumes_after_preemption_and_records_input_hashes(tmp_path, pretrained, source,
                                                                   cfg, variant):
    teacher, student = pretrained
    run_distill(cfg, source, teacher, student, tmp_path / "straight", variant)
    with pytest.raises(Preempted):
        run_distill(cfg, source, teacher, student, tmp_path / "resumed", variant,
                    on_epoch_end=_preempt_after(0))
    best = run_distill(cfg, source, teacher, student, tmp_path / "resumed", variant)
    a, b = _final_state(tmp_path / "straight"), _final_state(tmp_path / "resumed")
    _assert_same_state(a, b)
    assert set(a["modules"]) == {"generator", "discriminator"}
    # the student moved away from its pre-trained weights
    s0, _ = load_model_file(student)
    assert any(not torch.equal(t, a["modules"]["generator"][k]) for k, t in s0.state_dict().items())
    _, meta = load_model_file(best)
    assert meta["role"] == variant and meta["teacher_sha256"] == file_sha256(teacher)
    summary = json.loads((tmp_path / "resumed" / "summary.json").read_text())
    assert summary["student_sha256"] == file_sha256(student)


def test_distill_refuses_swapped_teacher_and_student(tmp_path, pretrained, source, cfg):
    from hpc_seg.errors import InputError

    teacher, student = pretrained
    with pytest.raises(InputError, match="4-channel teacher"):
        run_distill(cfg, source, student, teacher, tmp_path / "x", "had")


def test_a_run_folder_refuses_different_settings_but_allows_more_epochs(tmp_path, source, cfg):
    from hpc_seg.errors import ConfigError

    run_pretrain(cfg.with_(epochs=1), source, tmp_path / "r", "student")
    with pytest.raises(ConfigError, match="lr"):
        run_pretrain(cfg.with_(epochs=1, lr=1e-3), source, tmp_path / "r", "student")
    run_pretrain(cfg.with_(epochs=2), source, tmp_path / "r", "student")  # continues the run
    assert [h["epoch"] for h in json.loads((tmp_path / "r" / "history.json").read_text())] == [0, 1]
