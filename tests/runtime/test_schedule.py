"""One-cycle schedule values at the start, the peak and the end."""

from __future__ import annotations

import pytest
import torch

from hpc_seg.runtime.schedule import OneCycle


def test_one_cycle_shape():
    s = OneCycle(max_lr=1e-3, total_steps=101, pct_start=0.25)
    assert s.at(0) == pytest.approx((1e-3 / 25, 0.95))
    assert s.at(25) == pytest.approx((1e-3, 0.85))
    assert s.at(100)[0] == pytest.approx(1e-3 / 1e5)
    assert s.at(100)[1] == pytest.approx(0.95)
    assert s.at(500) == s.at(100)  # past the end stays at the final values
    lrs = [s.at(i)[0] for i in range(101)]
    assert max(lrs) == pytest.approx(1e-3)
    assert all(a <= b for a, b in zip(lrs[:25], lrs[1:26]))
    assert all(a >= b for a, b in zip(lrs[25:], lrs[26:]))


def test_apply_sets_lr_and_beta1():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1.0, betas=(0.9, 0.99))
    lr = OneCycle(max_lr=1e-4, total_steps=10).apply(opt, 0)
    assert lr == pytest.approx(4e-6)
    assert opt.param_groups[0]["lr"] == pytest.approx(4e-6)
    assert opt.param_groups[0]["betas"] == pytest.approx((0.95, 0.99))
