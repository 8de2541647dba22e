"""Typed configuration of the transfer study (``[transfer]`` of a job TOML).

Published defaults: R (random init, everything trains, 10 epochs at 1e-4 + 10 at 1e-5), TL
(ImageNet encoder frozen for phase 1, then unfrozen), TL2 (the cardiac base model); batch 8,
size 256, extreme augmentation, cross-entropy; epochs per phase ``round(10 * N_full / n)``.

TL2's phase 1 (``tl2_head_phase``): ``"whole"`` (default) trains the whole network at 1e-4 and
then 1e-5, which is what the published code effectively did (the reloaded base model had lost its
layer groups, so "freeze all but the head" froze nothing) and so what produced the published
numbers; ``"frozen"`` freezes the encoder in phase 1, as the paper describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hpc_seg.errors import ConfigError

SUBSETS = ("v7", "v3", "v1", "r7", "r3", "r1", "esed", "r_esed")
INITS = ("R", "TL", "TL2")
ALL_SUBSETS = ("full", *SUBSETS)
NO_IMAGENET = "not run: no ImageNet weights"
NO_BASE = "not run: no base model"

# The published transfer schedule as TrainConfig keys (the rest comes from ``train``).
PUBLISHED_TRAIN: dict[str, Any] = {"batch_size": 8, "image_size": 256, "augment": "extreme",
                                   "loss": "ce", "lr": 1e-4, "unfrozen_lr_factor": 0.1,
                                   "confidence_set": "all", "max_train_images": 0,
                                   "max_val_images": 0}


@dataclass(kw_only=True)
class TransferConfig:
    """What the transfer array trains."""

    subsets: list[str] = field(default_factory=lambda: list(ALL_SUBSETS))
    """training subsets to train on (full, v7, v3, v1, r7, r3, r1, esed, r_esed)"""
    inits: list[str] = field(default_factory=lambda: list(INITS))
    """initialisations: R (random), TL (ImageNet encoder), TL2 (the cardiac base model)"""
    base_epochs: int = 10
    """epochs per phase on the full training set; a subset of n images gets
    round(base_epochs * N_full / n)"""
    max_epochs: int = 0
    """cap on epochs per phase (0 = none)"""
    tl2_head_phase: Literal["whole", "frozen"] = "whole"
    """TL2's phase 1: whole (what the published code did) or frozen (the encoder, as the paper
    describes)"""
    imagenet_weights: Path | None = None
    """local torchvision .pth of the encoder for TL (never downloaded)"""
    base_model: Path | None = None
    """TL2's start: an hpc-seg model.pt (default: the cardiac search's best model)"""
    base_search: Path | None = None
    """a cardiac search folder (or Optuna storage): TL2 starts from its best model"""
    train: dict[str, Any] = field(default_factory=dict)
    """TrainConfig keys over the published schedule (encoder, image_size, ...)"""
    nice: int = 0
    """os.nice() increment inside each task"""
    seed: int = 0
    """seed of the trainings"""

    def __post_init__(self) -> None:
        bad = [s for s in self.subsets if s not in ALL_SUBSETS]
        if bad or not self.subsets:
            raise ConfigError(f"transfer: subsets {bad or '[]'} invalid; choose from {list(ALL_SUBSETS)}")
        bad = [i for i in self.inits if i not in INITS]
        if bad or not self.inits:
            raise ConfigError(f"transfer: inits {bad or '[]'} invalid; choose from {list(INITS)}")
        if self.base_epochs < 1 or self.max_epochs < 0 or self.nice < 0:
            raise ConfigError("transfer: base_epochs must be >= 1, max_epochs and nice >= 0")
        if self.tl2_head_phase not in ("whole", "frozen"):
            raise ConfigError(f"transfer: tl2_head_phase must be whole or frozen, got "
                              f"{self.tl2_head_phase!r}")
        for name in ("imagenet_weights", "base_model", "base_search"):
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, Path(value) if value else None)


@dataclass(kw_only=True)
class SubsetConfig:
    """How many volunteers the volunteer subsets hold, and the seed of the one random stream."""

    seed: int = 42
    """seed of the one random stream all subsets are drawn from"""
    n_v7: int = 7
    """volunteers of the v7 subset"""
    n_v3: int = 3
    """volunteers of the v3 subset (drawn from v7)"""
    n_v1: int = 1
    """volunteers of the v1 subset (drawn from v3)"""

    def __post_init__(self) -> None:
        if not self.n_v7 >= self.n_v3 >= self.n_v1 >= 1:
            raise ConfigError(f"subsets: need n_v7 >= n_v3 >= n_v1 >= 1, got "
                              f"{self.n_v7}, {self.n_v3}, {self.n_v1}")


@dataclass(kw_only=True)
class DataConfig:
    """``[transfer_data]``: where the volunteers are and how they are split and sized."""

    src: Path | None = None
    """the volunteers' folder"""
    layout: str = "con"                 # "con": DICOM + .con per volunteer; "png": cmr-seg-tl PNGs
    """con: DICOM + QMass .con per volunteer; png: the cmr-seg-tl PNG layout"""
    con_slice_order: str = "reversed"
    """how .con slice numbers map to DICOM positions (reversed: as QMass writes them)"""
    image_size: int = 256
    """size of the slices dataset (a multiple of 32)"""
    n_validate: int = 5
    """training volunteers held out for validation"""
    split_seed: int = 42
    """seed of the train/validate split"""
    split: dict[str, list[str]] = field(default_factory=dict)
    """override: {train = [...], validate = [...], test = [...]} volunteer ids."""
    png_pixel_spacing_mm: float = 1.25
    """pixel spacing assumed for PNG input"""
    png_slice_spacing_mm: float = 6.0
    """slice spacing assumed for PNG input"""
    subsets: SubsetConfig = field(default_factory=SubsetConfig)
    """sizes and seed of the training subsets"""
    ingest_workers: int = 1
    """ingest processes"""

    def __post_init__(self) -> None:
        if isinstance(self.src, str):
            self.src = Path(self.src)
        if isinstance(self.subsets, dict):
            self.subsets = SubsetConfig(**self.subsets)
        if self.layout not in ("con", "png"):
            raise ConfigError(f"transfer_data: layout must be con or png, got {self.layout!r}")
        if self.split and set(self.split) != {"train", "validate", "test"}:
            raise ConfigError(f"transfer_data: split needs train, validate and test lists, got "
                              f"{sorted(self.split)}")
