"""Build a 2D U-Net from its training config, and load a trained hpc-seg ``model.pt``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hpc_seg.cardiac.models.unet2d import Unet2d
from hpc_seg.cardiac.resize import NORMALISATION
from hpc_seg.cardiac.train.config import TrainConfig
from hpc_seg.config import from_dict, to_dict
from hpc_seg.errors import InputError
from hpc_seg.runtime.checkpoint import load_weights
from hpc_seg.runtime.device import resolve_device

#: the classes of every cardiac model, in label order
CLASSES = ("background", "lv", "myocardium")


def build_model(cfg: TrainConfig, init: bool = False) -> Unet2d:
    """The U-Net of ``cfg``; with ``init`` also load ImageNet encoder / init-checkpoint weights."""
    model = Unet2d(cfg.encoder, cfg.num_classes, cfg.decoder_channels,
                   encoder_weights=cfg.encoder_weights if init else None)
    if init and cfg.init_checkpoint is not None:
        path = Path(cfg.init_checkpoint)
        if not path.is_file():
            raise InputError(f"{path}: init_checkpoint not found")
        state = load_weights(path)
        try:
            model.load_state_dict(state["model"] if "model" in state else state)
        except (RuntimeError, KeyError) as exc:
            raise InputError(f"{path}: does not fit a {cfg.encoder} U-Net with {cfg.num_classes} "
                             f"classes and decoder {cfg.decoder_channels} ({str(exc)[:200]})") from None
    return model


def model_state(model: torch.nn.Module, cfg: TrainConfig, **extra: Any) -> dict[str, Any]:
    """What a ``model.pt`` holds: the weights plus everything prediction on new scans needs
    (classes, input size, intensity normalisation, encoder, the full training config); ``extra``
    adds training facts (history, label source). Plain values only: loads with weights_only."""
    return {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "config": to_dict(cfg), "classes": list(CLASSES), "image_size": cfg.image_size,
            "normalisation": dict(NORMALISATION), "encoder": cfg.encoder, **extra}


def load_model(path: Path, device: str = "cpu") -> tuple[Unet2d, TrainConfig]:
    """A trained model (eval mode) and its config from an hpc-seg ``model.pt``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: model file not found")
    try:
        state = load_weights(path)
        cfg = from_dict(TrainConfig, state["config"], str(path))
    except (KeyError, RuntimeError, OSError) as exc:
        raise InputError(f"{path}: not an hpc-seg model file ({exc})") from None
    model = build_model(cfg)
    model.load_state_dict(state["model"])
    return model.to(resolve_device(device)).eval(), cfg
