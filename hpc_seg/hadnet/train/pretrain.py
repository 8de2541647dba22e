"""Pre-training of the teacher (4 sequences) or the student (3 pre-contrast sequences).

Weighted cross-entropy whose class weights decay by 0.98 per epoch (floor 1), AdamW lr 2e-4,
betas (0.9, 0.999), weight decay 1e-5, constant lr, batch 1 per rank, published augmentation.
"""

from __future__ import annotations

import torch

from hpc_seg.launch.ddp import DistEnv
from hpc_seg.hadnet.models.unet3d import UNet3D
from hpc_seg.hadnet.train.augment import augment_case
from hpc_seg.hadnet.train.config import HadnetTrainConfig
from hpc_seg.hadnet.train.data import Case, role_channels, sample_seed
from hpc_seg.hadnet.train.loop import average_gradients
from hpc_seg.runtime.device import autocast
from hpc_seg.hadnet.train.losses import class_weights_at, weighted_ce


def prepare_input(case: Case, channels: tuple[int, ...], device: torch.device, augment: bool,
                  seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Move one case to ``device``, optionally augment it, select the role's channels.

    Returns ``(x [1, C, D, H, W], label [1, D, H, W])``.
    """
    image = case.image.to(device).float()
    label, mask = case.label.to(device).long(), case.mask.to(device)
    if augment:
        gen = torch.Generator().manual_seed(seed)
        image, label, mask = augment_case(image, label, mask, gen)
    return image[list(channels)][None], label[None]


class PretrainTrainer:
    """One U-Net trained with decaying weighted CE (see :mod:`hpc_seg.hadnet.train.loop`)."""

    def __init__(self, cfg: HadnetTrainConfig, env: DistEnv, role: str):
        self.cfg, self.env, self.role = cfg, env, role
        self.in_channels = role_channels(role)
        self.generator = UNet3D(len(self.in_channels), k=cfg.k, dropout=cfg.dropout).to(env.device)
        self.modules = {"generator": self.generator}
        self.optimizers = {"generator": torch.optim.AdamW(
            self.generator.parameters(), lr=cfg.lr, betas=tuple(cfg.betas),
            weight_decay=cfg.weight_decay)}
        self.weights = list(cfg.class_weights)
        self._loss = 0.0

    def begin_epoch(self, epoch: int) -> None:
        self.weights = class_weights_at(self.cfg.class_weights, epoch,
                                        self.cfg.weight_decay_per_epoch, self.cfg.weight_floor)

    def micro_step(self, case: Case, epoch: int) -> None:
        x, y = prepare_input(case, self.in_channels, self.env.device, self.cfg.augment,
                             sample_seed(self.cfg.seed, epoch, case.index))
        with autocast(self.env.device, self.cfg.amp):
            logits, _ = self.generator(x)
        loss = weighted_ce(logits, y, self.weights) / self.cfg.grad_accum
        loss.backward()
        self._loss += float(loss.detach())

    def finish_step(self) -> dict[str, float]:
        average_gradients(self.generator, self.env)
        opt = self.optimizers["generator"]
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss, self._loss = self._loss, 0.0
        return {"loss": loss}
