"""Step 6 gap filling: the published rule (a gap within 1 mm of twice the spacing) by default,
the wider 1.5-2.5x rule as an option."""

from __future__ import annotations

import pytest

from hpc_seg.cardiac.curate.steps import regularise_positions
from tests.cardiac.curate.test_steps import series_stack, units_of


def _run(positions, rule=None):
    kw = {} if rule is None else {"gap_rule": rule}
    return regularise_positions("7", units_of(series_stack(1, positions)), **kw)


def test_a_1_6x_gap_is_kept_open_by_the_published_rule():
    positions = [0.0, 10.0, 20.0, 36.4, 46.4, 56.4]               # 16.4 mm gap, 10 mm spacing
    slices, d, issues = _run(positions)
    assert d == 10.0
    assert [p for _, p, _ in slices] == positions                    # nothing invented
    assert not any(f for _, _, f in slices)
    assert [i.problem for i in issues] == ["slice_gap"]
    assert "16.40 mm" in issues[0].detail


def test_the_wide_rule_fills_the_1_6x_gap():
    slices, _d, issues = _run([0.0, 10.0, 20.0, 36.4, 46.4, 56.4], "wide")
    assert [f for _, _, f in slices] == [False, False, False, True, False, False, False]
    assert [i.problem for i in issues] == ["missing_slice"]


@pytest.mark.parametrize("gap", [19.0, 20.0, 21.0])
def test_both_rules_fill_a_gap_within_1_mm_of_twice_the_spacing(gap):
    positions = [0.0, 10.0, 20.0, 20.0 + gap, 30.0 + gap]
    for rule in ("published", "wide"):
        slices, _d, issues = _run(positions, rule)
        assert [f for _, _, f in slices] == [False, False, False, True, False, False], rule
        assert slices[3][1] == pytest.approx(20.0 + gap / 2)
        assert [i.problem for i in issues] == ["missing_slice"]


def test_unknown_rule_is_refused_with_one_error_type_everywhere():
    """The curation step and the ingest config check the rule in one place (curate/gaps.py):
    the same ConfigError (the step raised ValueError, the config ConfigError)."""
    from hpc_seg.cardiac.curate.gaps import gap_fill_count
    from hpc_seg.cardiac.ingest.config import IngestConfig
    from hpc_seg.errors import ConfigError

    message = "gap_rule: must be one of published, wide, but got loose"
    with pytest.raises(ConfigError, match=message):
        _run([0.0, 10.0, 20.0], "loose")
    with pytest.raises(ConfigError, match=message):
        gap_fill_count(16.4, 10.0, "loose")
    with pytest.raises(ConfigError, match=message):
        IngestConfig(gap_rule="loose")
