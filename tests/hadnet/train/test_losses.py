"""Weighted CE decay, LSGAN losses and the discriminator gate on hand-made numbers."""

from __future__ import annotations

import pytest
import torch

from hpc_seg.launch.ddp import DistEnv
from hpc_seg.hadnet.models.unet3d import UNet3D
from hpc_seg.hadnet.train.config import HadnetTrainConfig
from hpc_seg.hadnet.train.data import toy_cases
from hpc_seg.hadnet.train.distill import DistillTrainer
from hpc_seg.hadnet.train.losses import (GateCounts, class_weights_at,
                                         discriminator_should_update,
                                         lsgan_discriminator_loss, lsgan_generator_loss,
                                         weighted_ce)


def test_class_weights_decay_by_0_98_per_epoch_with_floor_1():
    base = [1.0, 59.45, 23.32, 71.85]
    assert class_weights_at(base, 0) == base
    assert class_weights_at(base, 1) == pytest.approx([1.0, 59.45 * 0.98, 23.32 * 0.98, 71.85 * 0.98])
    w100 = class_weights_at(base, 100)
    assert w100 == pytest.approx([1.0, 59.45 * 0.98 ** 100, 23.32 * 0.98 ** 100, 71.85 * 0.98 ** 100])
    # 23.32 * 0.98**e < 1 from e = 156 on: floored at 1; 71.85 reaches 1 at e = 212
    assert class_weights_at(base, 160)[2] == 1.0 and class_weights_at(base, 160)[3] > 1.0
    assert class_weights_at(base, 399) == [1.0, 1.0, 1.0, 1.0]


def test_weighted_ce_matches_a_hand_computation():
    logits = torch.zeros(1, 4, 1, 1, 2)
    logits[0, 1, 0, 0, 0] = 2.0  # voxel 0 predicts class 1 strongly; voxel 1 is uniform
    target = torch.tensor([[[[1, 3]]]])
    w = [1.0, 2.0, 1.0, 4.0]
    p0 = torch.softmax(logits[0, :, 0, 0, 0], 0)[1]
    ce = (-2.0 * torch.log(p0) - 4.0 * torch.log(torch.tensor(0.25))) / (2.0 + 4.0)
    assert float(weighted_ce(logits, target, w)) == pytest.approx(float(ce), rel=1e-6)


def test_lsgan_losses_on_hand_made_scores():
    d_real = torch.tensor([1.0, 0.5, 0.0, 2.0])
    d_fake = torch.tensor([0.0, 0.5, 1.0, -1.0])
    # MSE(real, 1) = (0 + .25 + 1 + 1) / 4; MSE(fake, 0) = (0 + .25 + 1 + 1) / 4
    assert float(lsgan_discriminator_loss(d_real, d_fake)) == pytest.approx(0.5625 + 0.5625)
    # generator wants fake -> 1: (1 + .25 + 0 + 4) / 4
    assert float(lsgan_generator_loss(d_fake)) == pytest.approx(1.3125)


def test_gate_accuracy_and_threshold_on_hand_made_scores():
    c = GateCounts()
    c.add(torch.tensor([0.9, 0.5, 0.2, 0.7]), torch.tensor([0.1, 0.5, 0.8, 0.6]))
    # real correct: 0.9, 0.5, 0.7 -> 3/4; fake correct: 0.1, 0.5 -> 2/4
    assert c.accuracy == pytest.approx(0.625)
    assert discriminator_should_update(c.accuracy, 0.8)
    c.add(torch.tensor([1.0, 1.0, 1.0, 1.0]), torch.tensor([0.0, 0.0, 0.0, 0.0]))
    assert c.accuracy == pytest.approx(0.5 * (7 / 8 + 6 / 8))  # 0.8125: accumulated over micro-steps
    assert not discriminator_should_update(c.accuracy, 0.8)
    assert discriminator_should_update(0.8, 0.8)  # "at most" 0.8
    assert GateCounts().all_reduce() == GateCounts()  # no process group: unchanged


def _trainer_with_constant_discriminator(score: float) -> DistillTrainer:
    cfg = HadnetTrainConfig(k=4, device="cpu", seed=0)
    env = DistEnv(rank=0, local_rank=0, world_size=1, backend=None, device=torch.device("cpu"))
    torch.manual_seed(0)
    tr = DistillTrainer(cfg, env, UNet3D(4, k=4), UNet3D(3, k=4), "had")
    with torch.no_grad():  # D scores every patch exactly `score`, for real and fake alike
        tr.discriminator.final.weight.zero_()
        tr.discriminator.final.bias.fill_(score)
    return tr


@pytest.mark.parametrize("score, updates", [(0.5, False), (0.7, True), (0.3, True)])
def test_discriminator_steps_only_below_the_accuracy_threshold(score, updates):
    # score 0.5: real >= .5 and fake <= .5 both right -> acc 1.0 > 0.8 -> no D step
    # score 0.7: real right, fake wrong -> 0.5 -> step; 0.3: real wrong, fake right -> 0.5 -> step
    tr = _trainer_with_constant_discriminator(score)
    d_before = [p.detach().clone() for p in tr.discriminator.parameters()]
    g_before = [p.detach().clone() for p in tr.generator.parameters()]
    tr.micro_step(toy_cases(1, (32, 32, 32))[0], epoch=0)
    out = tr.finish_step()
    assert out["d_acc"] == pytest.approx(1.0 if score == 0.5 else 0.5)
    assert out["d_updates"] == float(updates)
    d_changed = any(not torch.equal(a, b) for a, b in zip(d_before, tr.discriminator.parameters()))
    assert d_changed == updates
    # the student always steps, and its L_G never wrote gradients into D
    assert any(not torch.equal(a, b) for a, b in zip(g_before, tr.generator.parameters()))
    assert all(p.grad is None for p in tr.discriminator.parameters())


def test_teacher_is_frozen_during_distillation():
    tr = _trainer_with_constant_discriminator(0.7)
    before = [p.detach().clone() for p in tr.teacher.parameters()]
    tr.micro_step(toy_cases(1, (32, 32, 32))[0], epoch=0)
    tr.finish_step()
    assert all(torch.equal(a, b) for a, b in zip(before, tr.teacher.parameters()))
    assert tr.teacher.training  # dropout stays active while it produces targets
