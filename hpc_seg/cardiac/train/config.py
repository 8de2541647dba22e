"""Typed configuration of one 2D U-Net training run (the ``[train]`` table of a job TOML).

Defaults are the published best model (r34 / p05 / size 256 / ce / normal transforms),
with a shorter 5+5 epoch schedule; the published schedules are 5/10/15 epochs per stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hpc_seg.errors import ConfigError
from hpc_seg.cardiac.models.widths import DEFAULT_DECODER_CHANNELS

CONFIDENCE_SETS = ("p05", "p10", "p15", "all")


@dataclass(kw_only=True)
class TrainConfig:
    """Everything that decides what a 2D segmentation training run computes."""

    encoder: Literal["resnet18", "resnet34", "resnet50", "vgg16_bn"] = "resnet34"
    """U-Net encoder (resnet18 is an extra small option)"""
    encoder_weights: Path | None = None
    """local torchvision ImageNet .pth for the encoder (never downloaded)"""
    decoder_channels: list[int] = field(default_factory=lambda: list(DEFAULT_DECODER_CHANNELS))
    """5 decoder widths (smp default)"""
    loss: Literal["ce", "focal", "softdice", "dicece"] = "ce"
    """ce (cross-entropy), focal, softdice (generalised Dice) or dicece (nnU-Net's Dice +
    cross-entropy)"""
    image_size: int = 256
    """must match the slices dataset"""
    augment: Literal["none", "normal", "extreme", "nnunet"] = "normal"
    """published fastai transforms (normal, extreme), nnU-Net's 2D pipeline from MONAI
    transforms (nnunet), or none"""
    appearance: Literal["image", "random", "tissue", "hybrid"] = "image"
    """image: train on the stored images; random: render every training image from its label
    map with random appearance, a random mean per structure (a slices dataset from `hpc-seg
    label-maps`); tissue: the same, but structures of one tissue (blood pools; myocardium,
    papillary muscles and other muscle; fat) share their random mean; hybrid: half of each batch
    the stored images, half tissue renderings (`hpc-seg label-maps --images`)"""
    min_zoom: float = 1.0
    """smallest zoom of the normal/extreme augmentation (the published 1.0 only enlarges); below 1
    it also shrinks the image, for scans of hearts smaller than the training set's"""
    intensity_remap: float = 0.0
    """probability that a training image (after the augmentation) is remapped through a random
    shallow convolutional network (GIN, Ouyang et al. 2023): new tissue contrasts and textures, the
    same shapes. 0 = off"""
    banding: float = 0.0
    """probability that a training image (after the augmentation, before the remap) gets a random
    dark band, as balanced SSFP's off-resonance banding draws across a scan. 0 = off"""
    coil_noise: float = 0.0
    """probability that a training image (after the bands, before the remap) is received through a
    random array of 1-8 surface coils: shading and the root-sum-of-squares noise floor. 0 = off"""
    confidence_set: Literal["p05", "p10", "p15", "all"] = "p05"
    """patients whose label confidence score is within 5/10/15 % (train and validate)"""
    lr: float = 1e-4
    """max lr of the frozen stage's one-cycle"""
    unfrozen_lr_factor: float = 0.1
    """unfrozen stage max lr = lr * this (published 1e-4 -> 1e-5)"""
    batch_size: int = 32
    """images per optimiser step"""
    weight_decay: float = 0.01
    """AdamW weight decay"""
    epochs_frozen: int = 5
    """stage 1 epochs (encoder frozen)"""
    epochs_unfrozen: int = 5
    """stage 2 epochs (all trainable)"""
    freeze_encoder: bool = True
    """freeze the encoder in stage 1 (TL); false trains everything in both stages (the
    published R model: random init, 1e-4 then 1e-5)"""
    num_classes: int = 3
    """classes of the output (background, LV cavity, myocardium)"""
    seed: int = 0
    """seed of the initialisation, the data order and the augmentation"""
    init_checkpoint: Path | None = None
    """an hpc-seg model.pt to start from (transfer learning, TL2)"""
    device: str = "auto"
    """auto, cpu, cuda or cuda:N"""
    amp: bool = True
    """bf16 autocast where the hardware has bf16 units (CUDA GPUs, CPUs with AMX or AVX-512
    BF16; detected at run time); false = fp32 everywhere"""
    channels_last: bool = True
    """channels_last memory for the 2D convolutions"""
    num_workers: int = 0
    """DataLoader processes streaming shards"""
    max_val_images: int = 2000
    """deterministic subsample of the validate split per epoch (0 = all)"""
    max_train_images: int = 0
    """at most this many training images per epoch (0 = all; CPU debug runs)"""
    shuffle_buffer: int = 2048
    """streaming shuffle buffer (images)"""
    keep_checkpoints: int = 2
    """epoch checkpoints kept (older ones are deleted)"""
    threads: int = 0
    """torch CPU threads (0 = the process's CPU allocation: affinity mask, SLURM_CPUS_PER_TASK,
    cgroup quota)"""

    def __post_init__(self) -> None:
        if not 0.1 <= self.min_zoom <= 1.2:
            raise ConfigError(f"min_zoom must be in [0.1, 1.2] (the zoom's upper end), but got "
                              f"{self.min_zoom}")
        if self.min_zoom != 1.0 and self.augment not in ("normal", "extreme"):
            raise ConfigError(f"min_zoom {self.min_zoom} needs augment normal or extreme (the "
                              f"published zoom), not {self.augment!r}")
        if not 0.0 <= self.intensity_remap <= 1.0:
            raise ConfigError(f"intensity_remap must be in [0, 1], but got {self.intensity_remap}")
        for name in ("banding", "coil_noise"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], but got {getattr(self, name)}")
        for name in ("image_size", "batch_size", "num_classes", "keep_checkpoints", "shuffle_buffer"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, but got {getattr(self, name)}")
        if self.image_size % 32:
            raise ConfigError(f"image_size must be a multiple of 32, but got {self.image_size}")
        for name in ("epochs_frozen", "epochs_unfrozen", "num_workers", "max_val_images",
                     "max_train_images", "threads", "seed"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, but got {getattr(self, name)}")
        if self.epochs_frozen + self.epochs_unfrozen < 1:
            raise ConfigError("epochs_frozen + epochs_unfrozen must be >= 1, but got "
                              f"{self.epochs_frozen} + {self.epochs_unfrozen}")
        for name in ("lr", "unfrozen_lr_factor"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, but got {getattr(self, name)}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, but got {self.weight_decay}")
        if len(self.decoder_channels) != 5 or min(self.decoder_channels) < 1:
            raise ConfigError(f"decoder_channels must be 5 positive widths, but got {self.decoder_channels}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, but got {self.device!r}")
        for name in ("encoder_weights", "init_checkpoint"):
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, Path(value))

    @property
    def epochs(self) -> int:
        return self.epochs_frozen + self.epochs_unfrozen


# Named starting points (``hpc-seg train --preset``); a job's own keys override them.
PRESETS: dict[str, dict[str, Any]] = {
    # the published best model (r34 / p05 / 256 / ce / normal), shortest published schedule
    "published": {},
    # CPU-sized: a random-init resnet18 trained end to end at 128 px on capped epochs. Without
    # ImageNet weights a frozen random encoder learns nothing, hence freeze_encoder = false.
    # 8 + 4 epochs: on 100 synthetic patients 4 + 2 left the myocardium mostly labelled LV (EF
    # error 7.4), 8 + 4 reached EF error 1.3 and Dice LV 0.96 (README, Measured).
    "cpu": {"encoder": "resnet18", "decoder_channels": [64, 32, 32, 16, 16], "image_size": 128,
            "batch_size": 16, "lr": 1e-3, "freeze_encoder": False, "epochs_frozen": 8,
            "epochs_unfrozen": 4, "max_train_images": 2000, "max_val_images": 400,
            "confidence_set": "p10"},
    # seconds on CPU: tests and smoke runs
    "debug": {"encoder": "resnet18", "decoder_channels": [32, 16, 16, 8, 8], "image_size": 64,
              "batch_size": 8, "lr": 1e-3, "freeze_encoder": False, "epochs_frozen": 1,
              "epochs_unfrozen": 1, "max_train_images": 256, "max_val_images": 64,
              "confidence_set": "all"},
}
