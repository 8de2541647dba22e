"""Paired comparisons of two methods scored on the same test subjects, and seed-to-seed spread.

Both studies compare methods on one test set: every subject (a volunteer, a BraTS case) is scored
by both, so the question is answered by the per-subject differences ``a - b``, not by two separate
means. For each comparison :func:`paired_difference` gives:

- ``n``: subjects with both scores (a pair with a missing score is left out, never guessed);
- ``mean_diff``: the mean of ``a - b``;
- ``ci_low``, ``ci_high``: a bootstrap confidence interval of that mean, resampling subjects with
  replacement (SciPy's ``bootstrap``, BCa, seeded, so a re-run gives the same interval). When every
  difference is the same value the interval is that value (BCa is undefined there);
- ``p_wilcoxon``: the two-sided Wilcoxon signed-rank p-value of the differences (SciPy's
  ``wilcoxon``: exact for small samples without ties, zero differences dropped as Wilcoxon did).
  With no non-zero difference there is nothing to test and p is 1.

A test set of n subjects cannot give a small p-value whatever the effect: the exact two-sided
Wilcoxon p is at least ``2 / 2**n`` (0.25 for n = 3, 0.0039 for n = 8). Read ``n`` beside ``p``.

:func:`seed_spread` summarises one quantity measured once per training seed (mean, sample sd,
min, max, number of seeds): how much of a difference the choice of seed alone can move.

Tables from these functions use the columns of :data:`PAIRED_COLUMNS` (plus a study's own keys),
so report pages can show any study's comparisons alike.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

PAIRED_COLUMNS = ("n", "mean_diff", "ci_low", "ci_high", "p_wilcoxon")
SPREAD_COLUMNS = ("n_seeds", "seed_mean", "seed_sd", "seed_min", "seed_max")
N_BOOTSTRAP = 10_000


@dataclass(frozen=True)
class PairedDifference:
    """``a - b`` over paired subjects: mean, bootstrap CI, Wilcoxon p, count."""

    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    p_wilcoxon: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def paired_difference(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
                      confidence: float = 0.95, n_resamples: int = N_BOOTSTRAP,
                      seed: int = 0) -> PairedDifference:
    """Compare ``a`` with ``b``, both indexed by the same subjects (``a[i]`` pairs with ``b[i]``).

    Pairs where either score is NaN are dropped. With no pair left every figure is NaN and n = 0;
    with one pair the CI is that difference and p is NaN (no test on one subject).
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired scores must be two 1-D arrays of one length, got shapes "
                         f"{x.shape} and {y.shape}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    keep = ~(np.isnan(x) | np.isnan(y))
    d = x[keep] - y[keep]
    n = int(d.size)
    if n == 0:
        return PairedDifference(0, np.nan, np.nan, np.nan, np.nan)
    mean = float(d.mean())
    if n == 1:
        return PairedDifference(1, mean, mean, mean, np.nan)
    low, high = bootstrap_ci(d, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return PairedDifference(n, mean, low, high, wilcoxon_p(d))


def bootstrap_ci(d: np.ndarray, *, confidence: float = 0.95, n_resamples: int = N_BOOTSTRAP,
                 seed: int = 0) -> tuple[float, float]:
    """BCa bootstrap interval of the mean of ``d`` (subjects resampled with replacement)."""
    from scipy import stats

    d = np.asarray(d, dtype=np.float64)
    if np.ptp(d) == 0.0:        # every resample has the same mean; BCa would divide by zero
        return float(d[0]), float(d[0])
    with warnings.catch_warnings():
        # SciPy warns when BCa's acceleration is undefined for tiny samples; the fallback
        # below handles the NaN interval it then returns.
        warnings.simplefilter("ignore", category=RuntimeWarning)
        warnings.simplefilter("ignore", category=getattr(stats, "DegenerateDataWarning",
                                                         RuntimeWarning))
        res = stats.bootstrap((d,), np.mean, confidence_level=confidence,
                              n_resamples=n_resamples, method="BCa",
                              rng=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if np.isnan(low) or np.isnan(high):
            res = stats.bootstrap((d,), np.mean, confidence_level=confidence,
                                  n_resamples=n_resamples, method="percentile",
                                  rng=np.random.default_rng(seed))
            low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return low, high


def wilcoxon_p(d: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the differences ``d`` (1.0 if all are zero)."""
    from scipy import stats

    d = np.asarray(d, dtype=np.float64)
    if not np.any(d != 0.0):
        return 1.0
    return float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def seed_spread(values: Sequence[float] | np.ndarray) -> dict[str, float | int]:
    """Spread of one figure over training seeds: n_seeds, mean, sample sd, min, max (NaN ignored)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return {"n_seeds": 0, "seed_mean": np.nan, "seed_sd": np.nan, "seed_min": np.nan,
                "seed_max": np.nan}
    return {"n_seeds": int(v.size), "seed_mean": float(v.mean()),
            "seed_sd": float(v.std(ddof=1)) if v.size > 1 else np.nan,
            "seed_min": float(v.min()), "seed_max": float(v.max())}


__all__ = ["PAIRED_COLUMNS", "SPREAD_COLUMNS", "PairedDifference", "bootstrap_ci",
           "paired_difference", "seed_spread", "wilcoxon_p"]
