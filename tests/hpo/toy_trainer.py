"""A self-contained stand-in trainer with the ``train_segmenter`` contract, for fast search tests.

Its "Dice" depends only on the learning rate and the epoch, so which trial ASHA stops is known in
advance: the further ``lr`` is from 1e-3 (in decades), the worse. It writes one checkpoint file per
epoch and a ``model.pt`` stand-in, like the real trainer.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal


@dataclass(kw_only=True)
class ToyConfig:
    encoder: str = "resnet34"
    loss: str = "ce"
    image_size: int = 256
    augment: str = "normal"
    confidence_set: str = "p05"
    lr: float = 1e-3
    batch_size: int = 32
    epochs: int = 3
    sleep_s: float = 0.3
    fail_on_lr_above: float = 0.0
    device: Literal["auto", "cpu", "cuda"] = "auto"


@dataclass
class ToyResult:
    model_path: Path
    epochs: int


def toy_dice(lr: float, epoch: int) -> float:
    return max(0.0, 0.9 - 0.3 * abs(math.log10(lr) + 3)) * (1 - 0.5 ** epoch)


def toy_train(cfg: ToyConfig, slices_dir: Path, out_dir: Path,
              report: Callable[[dict], None] | None = None, resume: bool = True) -> ToyResult:
    if not Path(slices_dir).is_dir():
        raise FileNotFoundError(slices_dir)
    if cfg.fail_on_lr_above and cfg.lr > cfg.fail_on_lr_above:
        raise RuntimeError(f"toy failure for lr={cfg.lr}")
    ckpts = Path(out_dir) / "checkpoints"
    ckpts.mkdir(parents=True, exist_ok=True)
    for epoch in range(1, cfg.epochs + 1):
        time.sleep(cfg.sleep_s)
        dice = toy_dice(cfg.lr, epoch)
        ckpt = ckpts / f"ckpt-{epoch}.pt"
        ckpt.write_text(json.dumps({"epoch": epoch, "device": cfg.device}))
        if report:
            report({"epoch": epoch, "val_loss": 1 - dice, "dice_fg": dice, "dice_lv": dice,
                    "dice_my": dice, "accuracy": dice, "checkpoint": str(ckpt), "stage": "toy"})
    model = Path(out_dir) / "model.pt"
    model.write_text(json.dumps({"lr": cfg.lr, "device": cfg.device}))
    return ToyResult(model, cfg.epochs)
