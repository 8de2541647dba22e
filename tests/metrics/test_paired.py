"""Paired statistics on hand-made paired data whose answers are known."""

import numpy as np
import pytest
from scipy import stats

from hpc_seg.metrics.paired import paired_difference, seed_spread, wilcoxon_p


def _pairs(shift: float, n: int = 20, seed: int = 0):
    """Scores b per subject, and a = b + shift + small subject-level noise."""
    rng = np.random.default_rng(seed)
    b = rng.uniform(0.4, 0.9, n)
    return b + shift + rng.normal(0.0, 0.02, n), b


def test_known_shift_gives_a_ci_that_excludes_zero_and_contains_the_shift():
    a, b = _pairs(0.10)
    r = paired_difference(a, b)
    assert r.n == 20
    assert r.mean_diff == pytest.approx(0.10, abs=0.01)
    assert 0.0 < r.ci_low < 0.10 < r.ci_high
    assert r.p_wilcoxon < 0.001
    # the sign follows the order of the arguments
    flipped = paired_difference(b, a)
    assert flipped.mean_diff == pytest.approx(-r.mean_diff)
    assert flipped.ci_high < 0.0


def test_no_shift_gives_a_ci_that_includes_zero():
    for seed in range(5):
        a, b = _pairs(0.0, seed=seed)
        r = paired_difference(a, b)
        assert r.ci_low < 0.0 < r.ci_high, seed
        assert r.p_wilcoxon > 0.05, seed


def test_the_between_subject_spread_does_not_hide_a_paired_shift():
    # Scores vary 0.4-0.9 between subjects, far more than the 0.03 shift; pairing removes that.
    a, b = _pairs(0.03, n=15, seed=3)
    assert paired_difference(a, b).ci_low > 0.0
    unpaired = stats.mannwhitneyu(a, b).pvalue
    assert unpaired > 0.05


def test_wilcoxon_p_equals_scipy():
    rng = np.random.default_rng(7)
    for n in (6, 12, 40):
        a, b = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
        expected = stats.wilcoxon(a - b).pvalue
        assert paired_difference(a, b).p_wilcoxon == pytest.approx(expected, rel=1e-12)
    # ties and zero differences: scipy's default zero handling (zeros dropped)
    d = np.array([0.0, 0.0, 0.1, 0.1, -0.2, 0.3, 0.3, 0.4])
    assert wilcoxon_p(d) == pytest.approx(stats.wilcoxon(d).pvalue, rel=1e-12)


def test_the_smallest_exact_p_for_n_subjects():
    # All n differences positive: the exact two-sided p is 2 / 2**n, whatever their size.
    for n in (3, 5, 8):
        d = np.arange(1, n + 1, dtype=float)
        assert paired_difference(d, np.zeros(n)).p_wilcoxon == pytest.approx(2 / 2 ** n)


def test_missing_scores_drop_their_pair_and_degenerate_cases_are_defined():
    a = [0.5, np.nan, 0.7, 0.8]
    b = [0.4, 0.3, np.nan, 0.6]
    r = paired_difference(a, b)
    assert r.n == 2 and r.mean_diff == pytest.approx(0.15)
    same = paired_difference([0.2, 0.4, 0.6], [0.1, 0.3, 0.5])     # every difference 0.1
    assert (same.ci_low, same.ci_high) == pytest.approx((0.1, 0.1))
    equal = paired_difference([0.2, 0.4], [0.2, 0.4])
    assert equal.mean_diff == 0.0 and equal.p_wilcoxon == 1.0
    assert paired_difference([np.nan], [1.0]).n == 0
    one = paired_difference([0.9], [0.5])
    assert one.n == 1 and one.mean_diff == pytest.approx(0.4) and np.isnan(one.p_wilcoxon)
    with pytest.raises(ValueError, match="one length"):
        paired_difference([1.0, 2.0], [1.0])


def test_the_interval_is_reproducible_and_narrows_with_more_subjects():
    a, b = _pairs(0.05, n=10, seed=1)
    assert paired_difference(a, b) == paired_difference(a, b)
    big_a, big_b = _pairs(0.05, n=200, seed=1)
    small, big = paired_difference(a, b), paired_difference(big_a, big_b)
    assert big.ci_high - big.ci_low < small.ci_high - small.ci_low


def test_seed_spread():
    s = seed_spread([0.10, 0.20, 0.30, np.nan])
    assert s["n_seeds"] == 3
    assert s["seed_mean"] == pytest.approx(0.2)
    assert s["seed_sd"] == pytest.approx(0.1)
    assert (s["seed_min"], s["seed_max"]) == (0.1, 0.3)
    assert np.isnan(seed_spread([0.5])["seed_sd"])
    assert seed_spread([])["n_seeds"] == 0
