"""What ``hpc-seg synth brats`` generates (its flags, the ``[synth_brats]`` table of a job)."""

from __future__ import annotations

from dataclasses import dataclass

from hpc_seg.errors import ConfigError


@dataclass(kw_only=True)
class SynthBratsConfig:
    """What ``synth brats`` generates."""

    cases: int = 20
    """number of cases"""
    seed: int = 0
    """cohort seed (case i uses [seed, i])"""
    shape: tuple[int, int, int] = (96, 96, 64)
    """Grid (x, y, z). (240, 240, 155) with spacing 1.0 is the real BraTS grid."""
    spacing: float = 2.0
    """Isotropic voxel size in mm (the head is ~170x200x150 mm whatever the grid; tests use
    32x32x24 at 6.5 mm)."""
    noise: float = 0.03
    """Rician noise sigma as a fraction of the WM T1 intensity."""
    lgg_fraction: float = 0.25
    """share of low-grade cases (little or no enhancement)"""
    workers: int = 0
    """worker processes; 0 = the CPUs this process is allocated (at most one per case)"""
    compresslevel: int = 1
    """gzip level of the .nii.gz files (1 is ~5x faster to write than nibabel's 9, ~10 % larger)."""
    preview: int = 4
    """Cases shown in ``OUT/preview.png`` (0: no preview)."""

    def __post_init__(self) -> None:
        if self.cases < 1:
            raise ConfigError(f"synth brats: cases must be >= 1, but got {self.cases}")
        if len(self.shape) != 3 or min(self.shape) < 16:
            raise ConfigError(f"synth brats: shape must be 3 sizes >= 16, but got {self.shape}")
        if not 0.5 <= self.spacing <= 8.0:
            raise ConfigError(f"synth brats: spacing must be in [0.5, 8] mm, "
                              f"but got {self.spacing}")
        if not 0.0 <= self.noise <= 0.5:
            raise ConfigError(f"synth brats: noise must be in [0, 0.5], but got {self.noise}")
        if not 0.0 <= self.lgg_fraction <= 1.0:
            raise ConfigError(f"synth brats: lgg_fraction must be in [0, 1], "
                              f"but got {self.lgg_fraction}")
        if self.preview < 0:
            raise ConfigError(f"synth brats: preview must be >= 0, but got {self.preview}")
        if self.workers < 0:
            raise ConfigError(f"synth brats: workers must be >= 0, but got {self.workers}")
        self.shape = tuple(int(s) for s in self.shape)
