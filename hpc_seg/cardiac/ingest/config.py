"""Options of an ingest run (``hpc-seg ingest`` flags, the ``[ingest]`` table of a job)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hpc_seg.cardiac.curate.gaps import GapRule, check_gap_rule
from hpc_seg.cardiac.decode_budget import DEFAULT_MAX_DECODED_MB
from hpc_seg.errors import ConfigError
from hpc_seg.storage.codecs import CODECS, Codec


@dataclass(kw_only=True)
class IngestConfig:
    """Options of ``hpc-seg ingest``."""

    engine: Literal["auto", "local", "ray"] = "auto"
    """auto: Ray when a Ray address is given or a large input meets a Ray cluster named by RAY_ADDRESS, else the local process pool"""
    ray_address: str | None = None
    """connect to this Ray cluster ("auto" = RAY_ADDRESS / local head)"""
    ray_dashboard: bool = False
    """start the dashboard with a local Ray instance"""
    workers: int | None = None
    """local engine processes (default: the process's CPU allocation)"""
    truth_csv: Path | None = None
    """Id,Systole,Diastole (default: SRC/truth.csv if present)"""
    shard_mb: float = 128.0
    """target size of a volumes shard"""
    compression: Codec = "zstd"
    """codec of the masks and the small tables"""
    compression_level: int | None = 1
    """level of that codec (zstd level 1 is fast)"""
    # The volumes' pixels column. Stored MR intensities are near-incompressible for the fast
    # codecs (lz4, snappy and zstd at negative levels measured 1.00-1.01x on uint16 cine), and zstd
    # level 1 gets 1.43x at ~700 MB/s per core: a third of an ingest worker's time and 6x slower
    # reads for every training epoch. Masks (~200x) and the small tables keep ``compression``.
    pixel_compression: Codec = "none"
    """codec of the volumes' pixels column (none: uint16 MR pixels compress 1.4x at best, at a third of the ingest time)"""
    # Curation step 6: "published" fills only a gap within 1 mm of twice the slice spacing;
    # "wide" fills any gap of 1.5-2.5 spacings (the project's earlier rule).
    gap_rule: GapRule = "published"
    """which slice gaps curation fills with a copied slice: published = only a gap within 1 mm of twice the spacing; wide = any gap of 1.5-2.5 spacings"""
    max_decoded_mb: float | None = DEFAULT_MAX_DECODED_MB
    """per-file budget (MB): a file whose size, inflated size or declared decoded size (rows x
    columns x frames x bytes) is larger is skipped as too_large before anything is allocated"""
    # For when the header-based choice of the short-axis cine is wrong for a site.
    series: list[str | int] = field(default_factory=list)
    """use this series as the cine, whatever its headers say, and no other (repeatable): a
    SeriesNumber (12), a SeriesInstanceUID or a SeriesDescription pattern ('*sax*', any case)"""
    exclude_series: list[str | int] = field(default_factory=list)
    """never use this series (repeatable; number, UID or description pattern as for --series)"""
    progress: bool = True
    """show a progress display"""

    def __post_init__(self) -> None:
        check_gap_rule(self.gap_rule)
        if self.engine not in ("auto", "local", "ray"):
            raise ConfigError(f"engine: must be auto, local or ray, but got {self.engine!r}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers: must be >= 1, but got {self.workers}")
        if self.max_decoded_mb is not None and not self.max_decoded_mb > 0:
            raise ConfigError(f"max_decoded_mb: must be > 0, but got {self.max_decoded_mb}")
        if not self.shard_mb > 0:
            raise ConfigError(f"shard_mb: must be > 0, but got {self.shard_mb}")
        for key in ("series", "exclude_series"):
            value = getattr(self, key)
            if isinstance(value, str) or not all(isinstance(v, (str, int)) and str(v).strip()
                                                 for v in value):
                raise ConfigError(f"{key}: must be a list of series numbers, UIDs or description "
                                  f"patterns, but got {value}")
            setattr(self, key, [str(v).strip() for v in value])
        for key in ("compression", "pixel_compression"):
            if getattr(self, key) not in CODECS:
                raise ConfigError(f"{key}: must be one of {', '.join(CODECS)}, "
                                  f"got {getattr(self, key)!r}")


