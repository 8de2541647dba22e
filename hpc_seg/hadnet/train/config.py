"""Typed configuration of the HAD-Net stages (the ``[hadnet]`` table of a job TOML).

Defaults are the published values (Vadacchino et al., MIDL 2021). A job overrides only what it
changes; :func:`load_hadnet_config` validates through :func:`hpc_seg.config.from_dict`, so an
unknown key fails with the list of valid ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from hpc_seg.config import from_dict, load_toml
from hpc_seg.errors import ConfigError

PUBLISHED_CLASS_WEIGHTS = (1.0, 59.45, 23.32, 71.85)

#: the ``[launch]`` defaults of HAD-Net training: it runs here unless a job asks for SLURM
LAUNCH_DEFAULTS = {"executor": "local"}


@dataclass(kw_only=True)
class HadnetTrainConfig:
    """Everything that decides what a HAD-Net training run computes."""

    k: int = 32
    """base width of the U-Net (published: 32)"""
    dropout: float = 0.2
    """Dropout3d probability"""
    epochs: int = 400
    """pre-training epochs (published: 400)"""
    distill_epochs: int = 800
    """distillation epochs (published: 800)"""
    lr: float = 2e-4
    """learning rate (pre-training and distillation)"""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """AdamW betas for pre-training"""
    weight_decay: float = 1e-5
    """AdamW weight decay in pre-training"""
    distill_betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    """Adam betas for distillation (G and D)"""
    class_weights: list[float] = field(default_factory=lambda: list(PUBLISHED_CLASS_WEIGHTS))
    """initial CE weights of background, necrosis, edema, enhancing tumour"""
    weight_decay_per_epoch: float = 0.98
    """class weights are multiplied by this each epoch after the first (floor 1)"""
    weight_floor: float = 1.0
    """the decaying class weights stop at this value"""
    lambda_adv: float = 0.2
    """weight of the LSGAN term in L_G"""
    d_acc_threshold: float = 0.8
    """the discriminator is updated only while its accuracy is at most this"""
    grad_accum: int = 1
    """micro-batches (of 1 volume) per optimiser step on each rank"""
    augment: bool = True
    """published augmentation in pre-training"""
    amp: bool = True
    """bf16 autocast where the hardware has bf16 units (CUDA GPUs, CPUs with AMX or AVX-512
    BF16; detected at run time); false = fp32 everywhere"""
    seed: int = 0
    """seed of the initialisation, the data order and the augmentation"""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """auto, cpu or cuda"""
    threads: int = 0
    """torch CPU threads per rank (0 = the rank's share of the CPU allocation)"""
    validate_every: int = 1
    """epochs between validations"""
    keep_checkpoints: int = 2
    """epoch checkpoints kept (older ones are deleted)"""
    pre_dir: Path | None = None
    """preprocessed cohort (PRE)"""
    teacher: Path | None = None
    """teacher model for distill"""
    student: Path | None = None
    """pre-trained student for distill"""
    variant: Literal["had", "ad"] = "had"
    """distillation: had (hierarchical discriminator with feature pairs) or ad (logits only, the paper's ablation)"""

    def __post_init__(self) -> None:
        for name in ("k", "epochs", "distill_epochs", "grad_accum", "validate_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, but got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), but got {self.dropout}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, but got {self.lr}")
        for name in ("betas", "distill_betas"):
            b = getattr(self, name)
            if len(b) != 2 or not all(0.0 <= x < 1.0 for x in b):
                raise ConfigError(f"{name} must be two numbers in [0, 1), but got {b}")
        if len(self.class_weights) != 4 or min(self.class_weights) <= 0:
            raise ConfigError(f"class_weights must be 4 positive numbers, but got {self.class_weights}")
        if not 0.0 < self.weight_decay_per_epoch <= 1.0:
            raise ConfigError("weight_decay_per_epoch must be in (0, 1], but got "
                             f"{self.weight_decay_per_epoch}")
        if not 0.0 <= self.d_acc_threshold <= 1.0:
            raise ConfigError(f"d_acc_threshold must be in [0, 1], but got {self.d_acc_threshold}")
        if self.keep_checkpoints < 1:
            raise ConfigError(f"keep_checkpoints must be >= 1, but got {self.keep_checkpoints}")

    def with_(self, **changes: Any) -> HadnetTrainConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


def load_hadnet_config(job_file: str | Path, table: str = "hadnet") -> HadnetTrainConfig:
    """Read ``[hadnet]`` (or ``table``) of a job TOML into a validated config."""
    data = load_toml(job_file)
    return from_dict(HadnetTrainConfig, data.get(table, {}), f"{job_file}: [{table}]")
