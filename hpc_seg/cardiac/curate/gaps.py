"""Curation step 6's rule for a gap in the slice positions: which gaps get an invented slice.

Plain arithmetic on positions, apart from the pixel work, so that the ingest config can name the
rules without importing the curation.
"""

from __future__ import annotations

import typing
from typing import Literal

from hpc_seg.errors import ConfigError

GAP_FILL_MAX = 2.5          # a gap over this many spacings cuts the stack
GAP_FILL_MIN = 1.5          # "wide" rule: a gap above this many spacings means a missing slice
#: "published" rule (default): only a gap within this of twice the spacing is one missing slice.
#: The wide 1.5-2.5x rule filled a real 16.4 mm gap in a 10 mm stack with an invented slice and
#: then logged the slices after it as up to 2.7 mm off the grid.
GAP_TWICE_TOL_MM = 1.0

GapRule = Literal["published", "wide"]
GAP_RULES: tuple[str, ...] = typing.get_args(GapRule)


def check_gap_rule(rule: str) -> str:
    """``rule`` if it is one of :data:`GAP_RULES`; else a :class:`ConfigError` listing them."""
    if rule not in GAP_RULES:
        raise ConfigError(f"gap_rule: must be one of {', '.join(GAP_RULES)}, but got {rule}")
    return rule


def gap_fill_count(gap: float, d: float, rule: str) -> int:
    """Slices to invent in a gap of ``gap`` mm between neighbours ``d`` mm apart.

    ``published``: one, if the gap is within :data:`GAP_TWICE_TOL_MM` of ``2 d``; else none.
    ``wide``: for a gap of 1.5-2.5 ``d``, round(gap / d) - 1 (at least one).
    """
    if check_gap_rule(rule) == "published":
        return 1 if abs(gap - 2 * d) <= GAP_TWICE_TOL_MM else 0
    return max(1, round(gap / d) - 1) if GAP_FILL_MIN * d < gap <= GAP_FILL_MAX * d else 0
