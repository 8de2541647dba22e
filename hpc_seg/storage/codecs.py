"""The Parquet codecs hpc-seg offers (light on purpose: the CLI's option parsers import it)."""

from __future__ import annotations

from typing import Literal, get_args

Codec = Literal["zstd", "lz4", "snappy", "none"]
CODECS: tuple[str, ...] = get_args(Codec)
