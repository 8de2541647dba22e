"""What each GPU check runs, at the published sizes (``gpu``) and at toy sizes on CPU (``dry-run``).

Both profiles drive the same check functions; only sizes, the device, the collective backend and
the resource kind differ. The GPU sizes are the issue's (resnet34 U-Net at 256 px and batch 32,
HAD-Net at 160x192x160 with k = 32, the 20-patient ingest cohort, 1-16 ingest workers) and the
steps are few, because a lent GPU machine is available for about 15 minutes in all, start-up and a
second run included. Time limits are ceilings for a hang, not expected durations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hpc_seg.config import from_dict, to_dict
from hpc_seg.errors import ConfigError


@dataclass(kw_only=True)
class TrainCheck:
    """Check 1: the 2D training step by precision and memory format, streaming vs in memory."""

    encoder: str = "resnet34"
    image_size: int = 256
    batch_size: int = 32
    images: int = 1024
    """synthetic slices written for the streaming part"""
    modes: tuple[str, ...] = ("fp32", "bf16", "fp32+cl", "bf16+cl")
    steps: int = 6
    rounds: int = 3
    warmup: int = 2
    num_workers: int = 8
    """DataLoader processes of the streaming part"""
    max_overhead: float = 0.10
    """target: streaming at most this much slower than the same model fed from memory"""
    overrides: dict[str, Any] = field(default_factory=dict)
    """TrainConfig values on top of the published preset (the dry run's narrow decoder)"""


@dataclass(kw_only=True)
class TuneCheck:
    """Check 2: ``hpc-seg tune``'s search with trials packed onto one device."""

    encoder: str = "resnet34"
    image_size: int = 256
    batch_size: int = 32
    images: int = 384
    """synthetic training images (each trial trains one epoch over them)"""
    val_images: int = 64
    trials: int = 4
    """trials of the packed search, all at once"""
    gpus_per_trial: float = 0.25
    cpus_per_trial: float = 2.0
    baseline_trials: int = 2
    """trials of the one-trial-per-device baseline, one after another"""
    num_workers: int = 1
    """DataLoader processes of each trial"""
    overrides: dict[str, Any] = field(default_factory=dict)
    """TrainConfig values of every trial on top of the check's own"""
    num_cpus: int | None = None
    """CPUs of the local Ray instance (None: Ray's own count)"""
    sample_interval_s: float = 0.5
    """utilisation sampling period (nvidia-smi, or /proc/stat on CPU)"""
    min_packed: int = 4
    """target: at least this many trials at once on one device ..."""
    min_utilisation: float = 80.0
    """... while it is at least this busy (%)"""


@dataclass(kw_only=True)
class HadnetCheck:
    """Check 3: HAD-Net step time and peak memory, fp32 and bf16, and whole-volume inference."""

    size: tuple[int, int, int] = (160, 192, 160)
    k: int = 32
    steps: int = 2
    warmup: int = 1
    precisions: tuple[str, ...] = ("fp32", "bf16")
    threads: int = 4
    """torch CPU threads per measuring process"""
    max_memory_gb: float = 12.0
    """target for bf16 training (the paper needed 18 GB); GB = 10^9 bytes"""


@dataclass(kw_only=True)
class DdpCheck:
    """Check 4: gradient averaging over the process group, one backend against the other."""

    size: tuple[int, int, int] = (64, 64, 64)
    k: int = 8
    steps: int = 2
    backend: str = "nccl"
    reference_backend: str = "gloo"
    world_sizes: tuple[int, ...] = (1, 2)
    tolerance: float = 2e-2
    """largest relative L2 difference of the averaged gradients counted as equal (bf16 carries
    8 bits of mantissa: 2^-8 = 0.4 % per rounding, and a forward pass rounds many times)"""


@dataclass(kw_only=True)
class IngestCheck:
    """Check 5: ingest files/s by worker count, local and Ray engines, and the pydicom floor."""

    patients: int = 20
    seed: int = 0
    max_matrix: int | None = None
    workers: tuple[int, ...] = (1, 2, 4, 8, 16)
    engines: tuple[str, ...] = ("local", "ray")
    min_efficiency: float = 0.7
    """near-linear: files/s per worker at least this fraction of the 1-worker rate"""


@dataclass(kw_only=True)
class TestsCheck:
    """The tests marked ``gpu`` (they need CUDA; skipped elsewhere)."""

    paths: tuple[str, ...] = ("tests/gpu",)
    """where they live (a test checks that none is elsewhere): collecting the whole suite on the
    GPU machine would import what only other tests need"""
    marker: str = "gpu"


CHECK_NAMES = ("tests", "train", "hadnet", "ddp", "tune", "ingest")
"""The checks in the order they run: correctness first, then figures, the longest last."""


@dataclass(kw_only=True)
class GpuBenchProfile:
    """Everything one ``hpc-seg bench gpu`` run does."""

    name: str = "gpu"
    dry_run: bool = False
    device: str = "cuda"
    tests: TestsCheck = field(default_factory=TestsCheck)
    train: TrainCheck = field(default_factory=TrainCheck)
    hadnet: HadnetCheck = field(default_factory=HadnetCheck)
    ddp: DdpCheck = field(default_factory=DdpCheck)
    tune: TuneCheck = field(default_factory=TuneCheck)
    ingest: IngestCheck = field(default_factory=IngestCheck)
    limits: dict[str, float] = field(default_factory=lambda: {
        "tests": 120, "train": 120, "hadnet": 150, "ddp": 120, "tune": 180, "ingest": 200})
    """seconds each check may take before it is killed and recorded as an error"""
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    """extra environment of a check's process, by check name ("*": every check)"""

    def check_env(self, check: str) -> dict[str, str]:
        """The extra environment of one check's process."""
        return {**self.env.get("*", {}), **self.env.get(check, {})}

    def __post_init__(self) -> None:
        if self.device not in ("cuda", "cpu"):
            raise ConfigError(f"device must be cuda or cpu, but got {self.device!r}")
        bad = sorted(k for k, v in self.limits.items() if v <= 0)
        if bad:
            raise ConfigError(f"limits must be > 0 seconds, but got {bad}")

    def settings(self, check: str) -> Any:
        """The sub-config of a built-in check (None for a check added from outside)."""
        return getattr(self, check, None) if check in CHECK_NAMES else None

    def to_json(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GpuBenchProfile:
        return from_dict(cls, data, "gpu bench profile")


def gpu_profile() -> GpuBenchProfile:
    """The published sizes on one CUDA GPU (the defaults above)."""
    return GpuBenchProfile()


TOY_DECODER = [16, 8, 8, 8, 8]
"""decoder widths of the dry run's U-Nets (the published ones cost seconds per CPU step)"""


def dry_run_profile() -> GpuBenchProfile:
    """Toy sizes on CPU, same code: gloo for NCCL, fractional CPUs for fractional GPUs.

    Sized for a 2-core CI machine (a couple of minutes in all). bf16 runs where this CPU has bf16
    units; the training modes and HAD-Net precisions named bf16 force it anyway, and so does the
    Tune check with ``HPC_SEG_CPU_BF16=on``, so a bf16 bug cannot hide on a CPU without those
    units. The DDP check is left to choose: in fp32 its runs agree to the bit, while emulated bf16
    on such a CPU differs from run to run (about 4 % in the HAD-Net bottleneck's weight gradient).
    """
    return GpuBenchProfile(
        name="dry-run", dry_run=True, device="cpu",
        train=TrainCheck(image_size=32, batch_size=2, images=16, steps=1, rounds=1, warmup=1,
                         num_workers=1, overrides={"decoder_channels": TOY_DECODER}),
        hadnet=HadnetCheck(size=(32, 32, 32), k=4, steps=1, warmup=0, threads=1),
        ddp=DdpCheck(size=(32, 32, 32), k=2, steps=2, backend="gloo"),
        tune=TuneCheck(image_size=32, batch_size=2, images=8, val_images=4,
                       overrides={"decoder_channels": TOY_DECODER},
                       gpus_per_trial=0.0, cpus_per_trial=0.25, baseline_trials=1, num_cpus=1,
                       num_workers=0),
        ingest=IngestCheck(patients=2, max_matrix=64, workers=(1, 2)),
        limits={"tests": 240, "train": 240, "hadnet": 300, "ddp": 300, "tune": 420, "ingest": 300},
        # One thread per process: toy sizes gain nothing from more, and on a loaded 2-core
        # machine two OpenMP threads per process made a step 15x slower (spinning at barriers).
        # The gpu-marked tests run on CPU, so their own code is checked too.
        env={"*": {"OMP_NUM_THREADS": "1"}, "tune": {"HPC_SEG_CPU_BF16": "on"},
             "tests": {"HPC_SEG_GPU_TESTS_DEVICE": "cpu"}})


def with_limits(profile: GpuBenchProfile, limits: dict[str, float]) -> GpuBenchProfile:
    """A copy with some checks' time limits replaced."""
    return dataclasses.replace(profile, limits={**profile.limits, **limits})
