"""The cross-generator ablation (hpc_seg.bench.cross_ablation): each variant switches off one part
of the k-space renderer's image formation, and the table reads per kind of scan."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from hpc_seg.bench.cross_ablation import (ALL_OFF, PARTS, format_ablation, scan_errors,
                                          switch_off, variants)
from hpc_seg.cardiac.synth import kspace_render as ks
from tests.cardiac.synth.test_kspace_render import NAMES, _phantom


def _protocol_with_everything() -> ks.Protocol:
    """A drawn bSSFP protocol that has bands, ghosts, a reduced phase-encoding resolution and a
    window, so that switching each off changes something."""
    for seed in range(500):
        p = ks.draw_protocol(np.random.default_rng(seed))
        if p.band[3] > 0 and p.ghost[0] > 0 and p.pe_fraction < 0.9 and p.window > 0.1:
            return p
    raise AssertionError("no such protocol in 500 draws")


def test_each_variant_switches_off_its_own_part_and_nothing_else():
    p = _protocol_with_everything()
    fields = {"bands": {"band"}, "ghosts": {"ghost"}, "pe_cut": {"pe_fraction", "window"},
              "coils": {"coils"}, "noise": {"snr"}}
    assert set(PARTS) == set(fields)
    for name, change in PARTS.items():
        q = change(p)
        changed = {f.name for f in dataclasses.fields(p) if getattr(p, f.name) != getattr(q, f.name)}
        assert changed == fields[name], name
    off = switch_off(tuple(PARTS))(p)
    assert off.band[3] == 0 and off.ghost[0] == 0 and off.pe_fraction == 1 and off.window == 0
    assert len(off.coils) == 1 and math.isinf(off.snr)
    assert off.tissue == p.tissue and off.sequence == p.sequence      # the contrast stays
    assert variants() == {**{f"without_{n}": (n,) for n in PARTS}, ALL_OFF: tuple(PARTS)}


def test_contrast_only_renders_the_signal_equations_grey_values():
    """With every part off, the inside of each tissue has the grey value of its steady-state
    signal (no shading, no noise, no ghost): blood / myocardium is the equations' ratio. With only
    the coils on, one tissue is shaded across the image."""
    labels = _phantom()
    p = _protocol_with_everything()
    flat = ks.render_stack(labels, NAMES, np.random.default_rng(0), switch_off(tuple(PARTS))(p))
    r, c = np.mgrid[:48, :40]
    d = np.hypot(r - 24, c - 22)
    blood, myo = d < 4, (d > 6.8) & (d < 8.2)
    img = flat[0, 0].astype(float)
    want = ks.steady_state_signal(p, "lv_blood") / ks.steady_state_signal(p, "lv_myocardium")
    assert img[blood].mean() / img[myo].mean() == pytest.approx(want, rel=0.05)
    assert img[blood].std() / img[blood].mean() < 0.02
    # A block of one tissue: flat with every part off, shaded by the coils when they are on.
    block = np.zeros_like(labels)
    block[..., 4:44, 4:36] = 3
    inner = (slice(12, 36), slice(12, 28))
    spread = {}
    for name, parts in (("flat", tuple(PARTS)), ("coils", tuple(n for n in PARTS if n != "coils"))):
        im = ks.render_stack(block, NAMES, np.random.default_rng(0), switch_off(parts)(p))
        spread[name] = im[0, 0][inner].std() / im[0, 0][inner].mean()
    assert spread["flat"] < 0.01 < 0.05 < spread["coils"], spread


def test_scan_errors_are_mean_absolute_errors_per_kind_of_scan():
    rows = pd.DataFrame({"patient_id": [1, 2, 3, 4], "method": ["model"] * 4,
                         "abs_diff": [0.02, 0.04, 0.10, 0.06],
                         "pred_edv_ml": [110.0, 90.0, 100.0, 100.0],
                         "true_edv_ml": [100.0] * 4,
                         "pred_esv_ml": [50.0, 50.0, 60.0, 40.0], "true_esv_ml": [50.0] * 4,
                         "pred_ef": [0.5] * 4})
    rows = pd.concat([rows, rows.assign(method="label masks", abs_diff=0.0)])
    protocols = pd.DataFrame({"patient_id": ["1", "2", "3", "4"],
                              "kspace_sequence": ["bssfp", "bssfp", "gre", "bssfp"],
                              "kspace_band_depth": [0.0, 0.0, 0.0, 0.7]})
    t = scan_errors(rows, protocols).set_index("scan")
    assert t.loc["all"].tolist() == [5.5, 5.0, 10.0, 4]
    assert t.loc["bssfp"].tolist() == [3.0, 10.0, 0.0, 2]
    assert t.loc["gre"].tolist() == [10.0, 0.0, 20.0, 1]
    assert t.loc["bssfp with a band"].tolist() == [6.0, 0.0, 20.0, 1]
    text = format_ablation(t.reset_index().assign(variant="cross"))
    assert "cross" in text and "5.50 / 5.0 / 10.0" in text and "10.00 / 0.0 / 20.0" in text
    # A patient the model found no heart in counts as in the headline scores (volumes of 0: 100 %),
    # not as a patient left out.
    missed = rows.copy()
    missed.loc[(missed.method == "model") & (missed.patient_id == 3),
               ["pred_edv_ml", "pred_esv_ml", "pred_ef"]] = float("nan")
    t = scan_errors(missed, protocols).set_index("scan")
    assert t.loc["gre"].tolist() == [10.0, 100.0, 100.0, 1]
    assert t.loc["all"].edv_err_pct == 30.0
