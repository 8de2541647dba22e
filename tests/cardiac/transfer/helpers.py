"""A tiny transfer study for tests: 9 volunteers at 48 px, a random base model and 'ImageNet' file."""

from __future__ import annotations

from pathlib import Path

import torch

from hpc_seg.cardiac.synth.domain_7t import Synth7TConfig, generate_7t_cohort
from hpc_seg.cardiac.transfer import study
from hpc_seg.cardiac.transfer.data import DataConfig
from hpc_seg.cardiac.transfer.subsets import SubsetConfig
from hpc_seg.config import to_dict

TRAIN = {"encoder": "resnet18", "decoder_channels": [8, 8, 8, 8, 8], "image_size": 32,
         "batch_size": 8, "threads": 1, "device": "cpu", "max_val_images": 16,
         "keep_checkpoints": 2}


def tiny_study(root: Path) -> Path:
    """Cohort + prepared data (split 4 train / 2 validate / 3 test) under ``root/run``."""
    cohort = root / "cohort"
    generate_7t_cohort(cohort, Synth7TConfig(volunteers=9, second_observer=3, max_matrix=48,
                                             slices=(6, 6), frames=(4, 4)))
    out = root / "run"
    study.prepare(DataConfig(src=cohort, image_size=32, n_validate=2,
                             subsets=SubsetConfig(n_v7=3, n_v3=2, n_v1=1)), out)
    return out


def random_base_model(path: Path) -> Path:
    """An hpc-seg model.pt with random weights (stands in for the cardiac search's best model)."""
    from hpc_seg.cardiac.train.model_file import build_model
    from hpc_seg.cardiac.train.config import TrainConfig

    cfg = TrainConfig(**{k: v for k, v in TRAIN.items()})
    torch.manual_seed(5)
    model = build_model(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "config": to_dict(cfg), "image_size": 32}, path)
    return path


def random_imagenet(path: Path) -> Path:
    """A torchvision-format resnet18 .pth with random weights (names as torchvision's)."""
    from hpc_seg.cardiac.models.encoders import build_encoder

    torch.manual_seed(6)
    state = build_encoder("resnet18").state_dict()
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path
