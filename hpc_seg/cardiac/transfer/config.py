"""Typed configuration of the transfer study (``[transfer]`` of a job TOML; spec §5).

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

from hpc_seg.cardiac.transfer.subsets import SUBSETS
from hpc_seg.errors import ConfigError

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
    inits: list[str] = field(default_factory=lambda: list(INITS))
    base_epochs: int = field(default=10, metadata={
        "help": "epochs per phase on the full training set; a subset of n images gets "
                "round(base_epochs * N_full / n)"})
    max_epochs: int = field(default=0, metadata={"help": "cap on epochs per phase (0 = none)"})
    tl2_head_phase: Literal["whole", "frozen"] = "whole"
    imagenet_weights: Path | None = field(default=None, metadata={
        "help": "local torchvision .pth of the encoder for TL (never downloaded)"})
    base_model: Path | None = field(default=None, metadata={
        "help": "TL2's start: an hpc-seg model.pt (default: the cardiac search's best model)"})
    base_search: Path | None = field(default=None, metadata={
        "help": "a cardiac search folder (or Optuna storage): TL2 starts from its best model"})
    train: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "TrainConfig keys over the published schedule (encoder, image_size, ...)"})
    nice: int = field(default=0, metadata={"help": "os.nice() increment inside each task"})
    seed: int = 0

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
