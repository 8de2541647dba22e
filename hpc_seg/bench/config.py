"""What each benchmark measures: the configs behind ``hpc-seg bench ingest|generalise|slurm``.

Apart from the benchmarks themselves so that the CLI derives their flags without importing them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hpc_seg.errors import ConfigError
from hpc_seg.storage.codecs import Codec

ENGINES = ("floor", "local", "ray", "dcm2niix")
#: what ``bench train`` times side by side: precision, and channels_last (``+cl``) or not
MODES = ("fp32", "bf16", "fp32+cl", "bf16+cl")
#: ``bench generalise``'s training recipes: TrainConfig keys over the cpu preset ("today" is the
#: preset as it ships)
RECIPES: dict[str, dict[str, str | float]] = {
    "today": {"augment": "normal", "appearance": "image"},
    "augment": {"augment": "nnunet", "appearance": "image"},
    "random": {"augment": "normal", "appearance": "random"},
    "both": {"augment": "nnunet", "appearance": "random"},
    "tissue": {"augment": "normal", "appearance": "tissue"},
    "hybrid": {"augment": "normal", "appearance": "hybrid"},
    "hybrid_gin": {"augment": "normal", "appearance": "hybrid", "intensity_remap": 0.5},
    "hybrid_zoom_out": {"augment": "normal", "appearance": "hybrid", "min_zoom": 0.7},
    "hybrid_bands": {"augment": "normal", "appearance": "hybrid", "min_zoom": 0.7, "banding": 0.3},
    "hybrid_coils": {"augment": "normal", "appearance": "hybrid", "min_zoom": 0.7,
                     "coil_noise": 0.5},
}


@dataclass(kw_only=True)
class BenchIngestConfig:
    """Options of ``hpc-seg bench ingest``."""

    workdir: Path
    """the cohort (generated once, reused) and the outputs go here"""
    src: Path | None = None
    """an existing cohort; None = generate one in workdir"""
    patients: int = 20
    """patients of the generated cohort"""
    seed: int = 0
    """seed of the generated cohort"""
    max_matrix: int | None = None
    """generator's largest matrix side (None = its default)"""
    engines: tuple[str, ...] = ENGINES
    """contenders, in order: floor (pydicom reads), local, ray, dcm2niix"""
    workers: int | None = None
    """engine processes (default: all cores)"""
    compression: Codec = "zstd"
    """codec of the masks and the small tables (as hpc-seg ingest)"""
    pixel_compression: Codec = "none"
    """codec of the volumes' pixels column (as hpc-seg ingest)"""
    dcm2niix_jobs: int = 1
    """dcm2niix processes run side by side"""
    transfer_syntax: str = "explicit"
    """Encoding of the timed cohort: ``explicit`` is the generator's own (uncompressed); any other
    name of ``reencode.TRANSFER_SYNTAXES`` times a re-encoded copy of the same images
    (written once, reused), e.g. ``jpeg-ls`` for a compressed cohort where decoding is the cost."""
    repeat: int = 3
    """rounds over all contenders; the median round is shown"""
    ray_address: str | None = None
    """time the Ray engine on this cluster (not a local one)"""

    def __post_init__(self) -> None:
        unknown = set(self.engines) - set(ENGINES)
        if unknown:
            raise ConfigError(f"engines: unknown {sorted(unknown)}; valid are {list(ENGINES)}")
        if self.patients < 1:
            raise ConfigError(f"patients: must be >= 1, but got {self.patients}")
        if self.repeat < 1:
            raise ConfigError(f"repeat: must be >= 1, but got {self.repeat}")
        from hpc_seg.cardiac.synth.reencode import TRANSFER_SYNTAXES

        if self.transfer_syntax not in TRANSFER_SYNTAXES:
            raise ConfigError(f"transfer_syntax: must be one of {', '.join(TRANSFER_SYNTAXES)}, "
                              f"got {self.transfer_syntax!r}")


@dataclass(kw_only=True)
class GeneraliseConfig:
    """Sizes and ranges of one benchmark run.

    The defaults are the ``cpu`` preset (128 px, 8 + 4 epochs of at most 2000 images) on 40
    training patients: ~45 min per run with ``threads = 1`` on one free core (~10 images/s). With
    24 patients the held-out EF error stayed just above 4; at 64 px the myocardium of the small
    held-out hearts is one or two pixels thick and no model reached the target (README).
    """

    workdir: Path = Path("/tmp/hpc-seg-bench-generalise")
    """cohorts, datasets, model and evaluations (re-runs skip finished steps)"""
    train_patients: int = 40
    """patients of the training cohort"""
    test_patients: int = 15
    """patients of the held-out cohort"""
    train_seed: int = 0
    """generator seed of the training cohort"""
    test_seed: int = 1000
    """generator seed of the held-out cohort (must differ from train_seed)"""
    train_variety: bool = True
    """False: train on the shipped generator's defaults (the baseline)."""
    train_vendors: list[str] = field(default_factory=lambda: ["siemens", "ge"])
    """vendor profiles of the training cohort"""
    test_vendors: list[str] = field(default_factory=lambda: ["philips", "canon"])
    """vendor profiles of the held-out cohort"""
    train_sizes: tuple[float, float] = (0.75, 1.15)
    """body and heart size_scale range (min max) of the training cohort"""
    test_sizes: tuple[float, float] = (0.6, 0.75)
    """size_scale range of the held-out cohort (below 0.8: pediatric)"""
    n_frames: int = 10
    """cardiac phases per slice"""
    max_matrix: int = 128
    """generator's largest matrix side"""
    slices: tuple[int, int] = (6, 10)
    """short-axis slices per stack (min max)"""
    image_size: int = 128
    """slices dataset and model size (the cpu preset's 128)"""
    recipe: Literal["today", "augment", "random", "both", "tissue", "hybrid", "hybrid_gin",
                    "hybrid_zoom_out", "hybrid_bands", "hybrid_coils"] = "today"
    """training recipe: today (published augmentation on the generator's images), augment
    (nnU-Net's augmentation), random (random appearance rendered from the label maps, a mean per
    structure), both (augment + random), tissue (random appearance, a mean per tissue), hybrid
    (half the generator's images, half tissue renderings), hybrid_gin (hybrid, and half of the
    images remapped through a random convolutional network), hybrid_zoom_out (hybrid, the zoom
    from 0.7, nnU-Net's smallest scale, instead of 1: smaller hearts), hybrid_bands
    (hybrid_zoom_out, and 30 % of the images with a random dark off-resonance band), hybrid_coils
    (hybrid_zoom_out, and half of the images received through a random array of surface coils:
    shading and the root-sum-of-squares noise floor)"""
    train: dict[str, Any] = field(default_factory=dict)
    """TrainConfig keys over the ``cpu`` preset and the recipe (image_size comes from
    ``image_size``; the recipe's keys from the recipe): the same for every recipe, so they
    share one budget; another loss keeps its results in recipe_<name>-<loss>, an override of a
    ``DATA_KEYS`` key (min_zoom, intensity_remap, banding, coil_noise) in recipe_<name>[-<loss>]-<key><value>."""
    workers: int = 2
    """generator and ingest processes"""
    cross_ablation: bool = False
    """also score the model on the cross cohort rendered again with each part of the k-space
    renderer's image formation switched off in turn (bands, ghosts, pe_cut, coils, noise), and
    with all of them off (contrast only): what each part costs (``cross_ablation.csv`` in the
    recipe's folder; ~1 min per variant at 128 px)"""

    def __post_init__(self) -> None:
        if self.train_patients < 5 or self.test_patients < 5:
            raise ConfigError("bench generalise: need >= 5 patients per cohort (the split rule "
                              f"leaves some for validation), got {self.train_patients}, "
                              f"{self.test_patients}")
        if self.train_seed == self.test_seed:
            raise ConfigError(f"bench generalise: the held-out cohort needs its own seed, but both "
                              f"are {self.train_seed}")
        if self.recipe not in RECIPES:
            raise ConfigError(f"bench generalise: unknown recipe {self.recipe!r}; known: "
                              f"{', '.join(RECIPES)}")
        clash = set(RECIPES[self.recipe]) & set(self.train)
        if clash:
            raise ConfigError(f"bench generalise: {sorted(clash)} are set by the recipe "
                              f"({self.recipe}), not by the train overrides")
        self.workdir = Path(self.workdir)


@dataclass(kw_only=True)
class BenchSlurmConfig:
    repeats: int = 10
    """trivial jobs timed one after another"""
    array_size: int = 100
    """tasks in the timed array"""
    array_parallelism: int = 100
    """the array's %N throttle"""
    folder: Path | None = None
    """keep the jobs' logs here (default: a temporary folder)"""
    executor: Literal["slurm", "local"] = "slurm"
    """slurm, or local for a dry run without a cluster"""

    def __post_init__(self) -> None:
        if self.repeats < 1 or self.array_size < 1 or self.array_parallelism < 1:
            raise ConfigError("repeats, array_size and array_parallelism must be >= 1")
