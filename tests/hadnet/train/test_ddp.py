"""2-process gloo DDP gives the same weights as 1 process accumulating the same 2 samples.

Both runs see the same samples in each optimiser step (the order depends on the global batch
only), every sample's dropout/augmentation is seeded from (seed, epoch, case index), and the
gradients are averaged (DDP) or accumulated with 1/2 scaling (single process): the same sums, so
the weights match to float tolerance (exactly, in practice: halving is exact in binary).
"""

from __future__ import annotations

import json

import pytest
import torch

from hpc_seg.runtime.checkpoint import load_latest
from hpc_seg.hadnet.train.config import HadnetTrainConfig
from hpc_seg.hadnet.train.data import toy_cases
from hpc_seg.hadnet.models.io import load_model_file
from hpc_seg.hadnet.train.run import MemorySource, run_distill, run_pretrain
from hpc_seg.launch.spawn import spawn_ranks

SHAPE = (32, 32, 32)


@pytest.fixture(scope="module")
def source() -> MemorySource:
    return MemorySource(train=toy_cases(5, SHAPE, seed=0), val=toy_cases(3, SHAPE, seed=1),
                        pad_size=list(SHAPE))


@pytest.fixture(scope="module")
def cfg() -> HadnetTrainConfig:
    return HadnetTrainConfig(k=4, epochs=1, distill_epochs=2, device="cpu", seed=11, threads=1)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, source, cfg):
    root = tmp_path_factory.mktemp("pre")
    return (run_pretrain(cfg, source, root / "teacher", "teacher"),
            run_pretrain(cfg, source, root / "student", "student"))


def assert_same_training(single_dir, ddp_dir, atol=1e-6):
    """Final checkpoints hold (nearly) equal weights, and the logged gate decisions agree."""
    a, b = load_latest(single_dir / "checkpoints"), load_latest(ddp_dir / "checkpoints")
    assert a["epoch"] == b["epoch"]
    for name, sd in a["modules"].items():
        for key, t in sd.items():
            torch.testing.assert_close(b["modules"][name][key], t, atol=atol, rtol=0,
                                       msg=f"{name}.{key} differs")
    ha, hb = json.loads(a["history_json"]), json.loads(b["history_json"])
    for ra, rb in zip(ha, hb):
        for key in ("d_acc", "d_updates", "val_VM"):
            if key in ra:
                assert ra[key] == pytest.approx(rb[key], abs=1e-9), key
    return a


def test_two_rank_pretrain_equals_single_process_accumulation(tmp_path, source, cfg):
    cfg2 = cfg.with_(epochs=2)  # augmentation and dropout on
    run_pretrain(cfg2.with_(grad_accum=2), source, tmp_path / "single", "student")
    spawn_ranks(2, run_pretrain, cfg2, source, tmp_path / "ddp", "student")
    assert_same_training(tmp_path / "single", tmp_path / "ddp")
    assert json.loads((tmp_path / "ddp" / "summary.json").read_text())["world_size"] == 2


def test_two_rank_distill_equals_single_process_accumulation(tmp_path, pretrained, source, cfg):
    teacher, student = pretrained
    run_distill(cfg.with_(grad_accum=2), source, teacher, student, tmp_path / "single", "had")
    paths = spawn_ranks(2, run_distill, cfg, source, teacher, student, tmp_path / "ddp", "had")
    assert paths == [tmp_path / "ddp" / "best.pt"] * 2
    state = assert_same_training(tmp_path / "single", tmp_path / "ddp")
    s0, _ = load_model_file(student)
    assert any(not torch.equal(t, state["modules"]["generator"][k])
               for k, t in s0.state_dict().items()), "the student did not train"
