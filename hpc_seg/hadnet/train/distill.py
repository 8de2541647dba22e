"""Hierarchical adversarial distillation (HAD-Net) and its AD-Net ablation.

Per volume, as published:

- teacher (frozen, dropout active) -> teacher logits + feature pairs, from all 4 sequences;
- student -> logits + pairs from FLAIR, T1, T2;
- L_G = wCE(student, labels; initial weights, no decay) + 0.2 * MSE(D(student), 1), with D's
  parameters frozen so L_G only moves the student;
- L_D = MSE(D(teacher logits, x_student, teacher pairs), 1) + MSE(D(student, detached), 0);
- at each optimiser step the student always steps; the discriminator steps only if its accuracy on
  this step's samples (summed over micro-batches and ranks) is at most 0.8. Its gradients are
  accumulated either way and dropped when the gate is closed, so every rank runs the same
  collectives and takes the same branch.
"""

from __future__ import annotations

import torch

from hpc_seg.errors import InputError
from hpc_seg.launch.ddp import DistEnv
from hpc_seg.hadnet.models.discriminator import build_discriminator
from hpc_seg.hadnet.models.unet3d import UNet3D
from hpc_seg.hadnet.train.config import HadnetTrainConfig
from hpc_seg.hadnet.train.data import STUDENT_CHANNELS, TEACHER_CHANNELS, Case
from hpc_seg.hadnet.train.loop import average_gradients, frozen
from hpc_seg.runtime.device import autocast
from hpc_seg.hadnet.train.losses import (GateCounts, discriminator_should_update,
                                         lsgan_discriminator_loss, lsgan_generator_loss,
                                         weighted_ce)


class DistillTrainer:
    """Student (generator) + discriminator, teacher frozen."""

    def __init__(self, cfg: HadnetTrainConfig, env: DistEnv, teacher: UNet3D, student: UNet3D,
                 variant: str):
        if teacher.k != student.k:
            raise InputError(f"the teacher's base width k {teacher.k} and the student's "
                             f"{student.k} differ; the discriminator needs feature pairs of "
                             "equal widths")
        self.cfg, self.env, self.variant = cfg, env, variant
        self.in_channels = STUDENT_CHANNELS
        self.teacher = teacher.to(env.device).train()  # dropout stays active (published)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.generator = student.to(env.device).train()
        self.discriminator = build_discriminator(variant, student.k).to(env.device)
        self.modules = {"generator": self.generator, "discriminator": self.discriminator}
        betas = tuple(cfg.distill_betas)
        self.optimizers = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=cfg.lr, betas=betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=cfg.lr,
                                              betas=betas)}
        self.counts = GateCounts()
        self._sums = {"loss_g": 0.0, "loss_ce": 0.0, "loss_adv": 0.0, "loss_d": 0.0}

    def begin_epoch(self, epoch: int) -> None:
        pass  # CE weights are fixed at their initial values during distillation

    def micro_step(self, case: Case, epoch: int) -> None:
        cfg, dev, accum = self.cfg, self.env.device, self.cfg.grad_accum
        image, label = case.image.to(dev).float()[None], case.label.to(dev).long()[None]
        x_t, x_s = image[:, list(TEACHER_CHANNELS)], image[:, list(STUDENT_CHANNELS)]
        with autocast(dev, cfg.amp):
            with torch.no_grad():
                t_logits, t_pairs = self.teacher(x_t)
            s_logits, s_pairs = self.generator(x_s)
            pairs_g = s_pairs if self.discriminator.hierarchical else None
            with frozen(self.discriminator):
                d_fake_g = self.discriminator(s_logits, x_s, pairs_g)
        ce = weighted_ce(s_logits, label, cfg.class_weights)
        adv = lsgan_generator_loss(d_fake_g)
        loss_g = ce + cfg.lambda_adv * adv
        (loss_g / accum).backward()

        detached = [(a.detach(), b.detach()) for a, b in s_pairs]
        hier = self.discriminator.hierarchical
        with autocast(dev, cfg.amp):
            d_real = self.discriminator(t_logits, x_s, t_pairs if hier else None)
            d_fake = self.discriminator(s_logits.detach(), x_s, detached if hier else None)
        loss_d = lsgan_discriminator_loss(d_real, d_fake)
        (loss_d / accum).backward()
        self.counts.add(d_real, d_fake)
        for k, v in (("loss_g", loss_g), ("loss_ce", ce), ("loss_adv", adv), ("loss_d", loss_d)):
            self._sums[k] += float(v.detach()) / accum

    def finish_step(self) -> dict[str, float]:
        average_gradients(self.generator, self.env)
        opt_g, opt_d = self.optimizers["generator"], self.optimizers["discriminator"]
        opt_g.step()
        opt_g.zero_grad(set_to_none=True)
        acc = self.counts.all_reduce(self.env.device).accuracy
        update = discriminator_should_update(acc, self.cfg.d_acc_threshold)
        if update:
            average_gradients(self.discriminator, self.env)
            opt_d.step()
        opt_d.zero_grad(set_to_none=True)
        self.counts = GateCounts()
        out = {**self._sums, "d_acc": acc, "d_updates": float(update)}
        self._sums = dict.fromkeys(self._sums, 0.0)
        return out
