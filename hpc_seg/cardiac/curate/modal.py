"""The modal value as the published curation takes it: the most frequent, ties to the largest."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable


def mode_largest(values: Iterable[Hashable]) -> Hashable:
    """The most frequent value; of several equally frequent ones, the largest (a tie between
    256 and 208 columns keeps 256: downscaling the larger loses less than inventing pixels)."""
    counts = Counter(values)
    best = max(counts.values())
    return max(v for v, c in counts.items() if c == best)
