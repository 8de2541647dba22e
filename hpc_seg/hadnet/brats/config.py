"""Options of the BraTS preprocessing (``hpc-seg hadnet preprocess`` flags, ``[hadnet_preprocess]``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hpc_seg.errors import ConfigError


@dataclass(kw_only=True)
class PreprocessConfig:
    """Options of ``hadnet preprocess``."""

    pad_size: list[int] | None = None
    """Fixed [D, H, W]; default: derived from the training cases (multiple of 16)."""
    workers: int | None = None
    """Processes (default: the process's CPU allocation)."""
    image_dtype: Literal["float16", "float32"] = "float16"
    """float16 halves the shards (values in [0, 1]: ~5e-4 resolution); or float32."""
    val_fraction: float = 0.15
    """validation share when SRC has no manifest.json"""
    test_fraction: float = 0.15
    """test share when SRC has no manifest.json"""
    split_seed: int = 0
    """Split rule when SRC has no manifest.json: hash(split_seed, subject) -> train/val/test."""
    shard_mb: float = 256.0
    """target size of a case shard"""

    def __post_init__(self) -> None:
        if self.pad_size is not None:
            self.pad_size = [int(p) for p in self.pad_size]
            if len(self.pad_size) != 3 or min(self.pad_size) < 1:
                raise ConfigError(f"preprocess: pad_size must be 3 positive sizes, but got "
                                  f"{self.pad_size}")
        if self.image_dtype not in ("float16", "float32"):
            raise ConfigError(f"preprocess: image_dtype must be float16 or float32, but got "
                              f"{self.image_dtype!r}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"preprocess: workers must be >= 1, but got {self.workers}")
        if not (0 <= self.val_fraction and 0 <= self.test_fraction
                and self.val_fraction + self.test_fraction < 1):
            raise ConfigError(f"preprocess: val_fraction + test_fraction must be in [0, 1), "
                              f"but got {self.val_fraction} + {self.test_fraction}")
