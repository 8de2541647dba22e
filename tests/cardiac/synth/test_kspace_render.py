"""The independent k-space renderer: contrast from the signal equations, k-space artefacts, seeds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hpc_seg.cardiac.synth import kspace_render as ks
from hpc_seg.errors import InputError

NAMES = {0: "background", 1: "lv_blood", 2: "lv_myocardium", 3: "body_fat", 4: "lungs"}


def _phantom() -> np.ndarray:
    """[T=2, K=1, 48, 40]: fat ring, lungs, an LV (blood in a myocardial ring)."""
    r, c = np.mgrid[:48, :40]
    lab = np.zeros((48, 40), np.uint8)
    body = ((r - 24) / 22) ** 2 + ((c - 20) / 18) ** 2
    lab[body < 1] = 3
    lab[body < 0.75] = 4
    d = np.hypot(r - 24, c - 22)
    lab[d < 9] = 2
    lab[d < 6] = 1
    return np.stack([lab, lab])[:, None]


def _quiet(p: ks.Protocol) -> ks.Protocol:
    """No noise, ghosts, bands, window or reduced resolution: contrast (and coils) only."""
    from hpc_seg.bench.cross_ablation import switch_off

    return switch_off(("noise", "ghosts", "bands", "pe_cut"))(p)


def _protocol(sequence: str) -> ks.Protocol:
    for seed in range(50):
        p = ks.draw_protocol(np.random.default_rng(seed))
        if p.sequence == sequence:
            return p
    raise AssertionError(sequence)


def test_bssfp_contrast_comes_from_relaxation_times():
    p = _protocol("bssfp")
    blood, myo, fat, lung = (ks.steady_state_signal(p, n) for n in
                             ("lv_blood", "lv_myocardium", "body_fat", "lungs"))
    # bSSFP signal ~ T2/T1: bright blood and fat, dark myocardium, dark lungs.
    assert blood > 2 * myo and fat > myo and lung < 0.3 * myo
    img = ks.render_stack(_phantom(), NAMES, np.random.default_rng(0), _quiet(p)).astype(float)
    lab = _phantom()
    core = lambda m: np.median(img[lab == m])     # noqa: E731 (centre values, away from ringing)
    assert core(1) > 1.5 * core(2) and core(4) < core(2) and core(0) < 0.1 * core(1)


def test_gre_blood_inflow_changes_over_the_cycle_and_the_tissue_does_not():
    p = _quiet(_protocol("gre"))
    img = ks.render_stack(_phantom(), NAMES, np.random.default_rng(0), p).astype(float)
    lab = _phantom()[0, 0]
    blood = [np.median(img[t, 0][lab == 1]) for t in range(2)]
    fat = [np.median(img[t, 0][lab == 3]) for t in range(2)]
    assert blood[0] > 1.1 * blood[1] and fat[0] == pytest.approx(fat[1], rel=0.01)


def test_kspace_cut_rings_at_edges_and_noise_and_ghosts_show():
    p = _quiet(_protocol("bssfp"))
    lab = _phantom()
    clean = ks.render_stack(lab, NAMES, np.random.default_rng(0), p).astype(float)[0, 0]
    # Gibbs: a sharp k-space cut overshoots next to the bright fat ring, inside the dark lungs.
    lungs = clean[lab[0, 0] == 4]
    assert lungs.max() > 1.5 * np.median(lungs)
    # Noise: two draws of a noisy protocol differ; two of the quiet one do not.
    again = ks.render_stack(lab, NAMES, np.random.default_rng(1), p).astype(float)[0, 0]
    noisy = [ks.render_stack(lab, NAMES, np.random.default_rng(s),
                             replace(p, snr=5.0)).astype(float)[0, 0] for s in (0, 1)]
    assert np.abs(again - clean).max() <= 1
    assert (noisy[0] - noisy[1])[lab[0, 0] == 1].std() > 0.1 * np.median(clean[lab[0, 0] == 1])
    # A period-2 modulation of the phase-encoding lines adds a replica half a field of view away
    # along that axis (and nowhere else).
    for axis in (0, 1):
        ghost = ks.render_stack(lab, NAMES, np.random.default_rng(0),
                                replace(p, ghost=(0.3, 2), pe_axis=axis)).astype(float)[0, 0]
        change = np.abs(ghost - clean).ravel()
        half = np.roll(clean, clean.shape[axis] // 2, axis=axis).ravel()
        quarter = np.roll(clean, clean.shape[axis] // 4, axis=axis).ravel()
        assert np.corrcoef(change, half)[0, 1] > 0.6 > 0.2 > np.corrcoef(change, quarter)[0, 1]


def test_render_is_deterministic_for_a_seed_and_differs_between_seeds():
    lab = _phantom()
    a = ks.render_stack(lab, NAMES, np.random.default_rng(3))
    b = ks.render_stack(lab, NAMES, np.random.default_rng(3))
    c = ks.render_stack(lab, NAMES, np.random.default_rng(4))
    assert a.dtype == np.uint16 and a.shape == lab.shape
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_unknown_structures_are_one_line_errors():
    with pytest.raises(InputError, match=r"label ids \[5\]"):
        ks.render_stack(_phantom() + 1, NAMES, np.random.default_rng(0))
    with pytest.raises(InputError, match="'kidney'"):
        ks.render_stack(_phantom(), {**NAMES, 1: "kidney"}, np.random.default_rng(0))
