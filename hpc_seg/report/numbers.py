"""Numbers as a reader wants them: at most 4 significant digits, durations in h/min/s, counts
with a k/M suffix past 9,999, one decimal count per table column."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

SIG = 4
DASH = "–"


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
        and math.isfinite(float(v))


def decimals_for(values: Any, sig: int = SIG) -> int:
    """Decimals for a column: enough for its values, but no more than give the largest finite
    magnitude ``sig`` significant digits (0 for integers and magnitudes of 10^sig and more)."""
    arr = np.asarray([float(v) for v in values if _finite(v)], dtype=np.float64)
    if arr.size == 0 or np.all(arr == np.round(arr)):
        return 0
    top = float(np.max(np.abs(arr)))
    cap = int(min(max(sig - 1 - math.floor(math.log10(top)), 0), 8))
    need = 0
    for v in arr:
        text = f"{v:.{cap}f}".rstrip("0")
        need = max(need, len(text.split(".")[1]) if "." in text else 0)
    return need


def count(n: Any) -> str:
    """An integer count: exact up to 9,999, then 12.35k / 1.234M (4 significant digits)."""
    if not _finite(n):
        return DASH
    n = int(round(float(n)))
    if abs(n) < 10_000:
        return str(n)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{_sig(n / div)}{suffix}"
    return str(n)   # not reached


def _sig(x: float, sig: int = SIG) -> str:
    d = decimals_for([x], sig)
    text = f"{x:.{d}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def number(x: Any, decimals: int | None = None) -> str:
    """One number: ``decimals`` fixed (trimmed to 4 significant digits), or 4 significant digits.

    Integers print as counts; NaN and None as a dash; -0.00 as 0.00.
    """
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return DASH
    if isinstance(x, bool):
        return "yes" if x else "no"
    if not _finite(x):
        return str(x) if not isinstance(x, (float, np.floating)) else DASH
    x = float(x)
    if decimals is None:
        if x == round(x) and abs(x) < 1e15:
            return count(x)
        if abs(x) < 1e-4:
            # tiny values (learning rates) in scientific form: 3.2e-05 reads better than 0.0000
            return f"{x:.3g}".replace("e-0", "e-")
        if abs(x) >= 10 ** SIG:
            return count(x)
        return _sig(x)
    # fixed decimals, but never more than 4 significant digits (0 keeps them all: 0.000)
    d = decimals if x == 0 else min(decimals, max(SIG - 1 - math.floor(math.log10(abs(x))), 0))
    if abs(x) >= 10 ** SIG:
        return count(x)
    text = f"{x:.{d}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return text


def column(values: pd.Series, decimals: int | None = None) -> list[str]:
    """A table column, every cell with the same decimals (the largest value gets 4 significant
    digits), or ``decimals`` when given."""
    vals = list(values)
    numeric = [v for v in vals if _finite(v)]
    if not numeric:
        return [_cell(v) for v in vals]
    if all(float(v) == round(float(v)) for v in numeric) and decimals is None:
        return [count(v) if _finite(v) else _cell(v) for v in vals]
    d = decimals if decimals is not None else decimals_for(numeric)
    tiny = max(abs(float(v)) for v in numeric) < 1e-3 and decimals is None
    return [(number(float(v)) if tiny else number(float(v), d)) if _finite(v) else _cell(v)
            for v in vals]


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def duration(seconds: Any) -> str:
    """0.4 s, 12.3 s, 3 min 05 s, 1 h 02 min."""
    if not _finite(seconds):
        return DASH
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    m, sec = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m} min {sec:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def percent(x: Any, decimals: int = 0) -> str:
    """A signed percentage: +12 %, -3 %."""
    if not _finite(x):
        return DASH
    return f"{float(x):+.{decimals}f} %"
