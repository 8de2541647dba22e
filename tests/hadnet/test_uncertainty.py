"""Uncertainty maps: the entropy scale, MC dropout seeding, batching and variance over passes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hpc_seg.errors import ConfigError
from hpc_seg.hadnet.models.unet3d import UNet3D
from hpc_seg.hadnet.uncertainty import (UncertaintyMethod, dropout_active, entropy_percent,
                                        predict_with_uncertainty, region_probabilities)


def _net(seed: int = 0) -> UNet3D:
    torch.manual_seed(seed)
    return UNet3D(3, k=4, dropout=0.2).eval()


def _x(seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, 32, 32, 16, generator=g)


def test_method_parsing_and_one_line_errors():
    assert UncertaintyMethod.parse("entropy") == UncertaintyMethod("entropy")
    assert UncertaintyMethod.parse("mcdropout") == UncertaintyMethod("mcdropout", 20)
    assert str(UncertaintyMethod.parse("mcdropout:8")) == "mcdropout:8"
    for bad in ("entropy:3", "mc", "mcdropout:1", "mcdropout:x"):
        with pytest.raises(ConfigError, match="--uncertainty"):
            UncertaintyMethod.parse(bad)


def test_entropy_scale_and_region_sums():
    assert entropy_percent(torch.tensor([0.0, 1.0, 0.5])).tolist() == pytest.approx([0, 0, 100])
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4]).reshape(1, 4, 1)
    assert region_probabilities(probs)[0, :, 0].tolist() == pytest.approx([0.9, 0.6, 0.4])


def test_entropy_map_comes_from_the_deterministic_pass():
    net, x = _net(), _x()
    classes, maps = predict_with_uncertainty(net, x, UncertaintyMethod("entropy"), amp=False)
    again, none = predict_with_uncertainty(net, x, None, amp=False)
    assert none is None and (classes == again).all()
    assert maps.shape == (3, 32, 32, 16) and maps.min() >= 0 and maps.max() <= 100
    # the map is the entropy of the eval-mode (dropout off) softmax, not of a dropout pass
    with torch.no_grad():
        probs = torch.softmax(net.eval()(x)[0].float(), dim=1)
    expected = entropy_percent(region_probabilities(probs)[0]).numpy()
    np.testing.assert_allclose(maps, expected, atol=1e-4)
    with torch.no_grad(), dropout_active(net):
        dropped = torch.softmax(net(x)[0].float(), dim=1)
    assert not np.allclose(maps, entropy_percent(region_probabilities(dropped)[0]).numpy(),
                           atol=1e-4)


def test_mc_dropout_same_seed_same_map_and_caller_rng_untouched():
    net, x = _net(), _x()
    method = UncertaintyMethod("mcdropout", 6)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    c1, a = predict_with_uncertainty(net, x, method, seed=7, case_id="c1", batch_size=4)
    assert torch.equal(torch.get_rng_state(), state)
    c2, b = predict_with_uncertainty(net, x, method, seed=7, case_id="c1", batch_size=4)
    _, other = predict_with_uncertainty(net, x, method, seed=8, case_id="c1", batch_size=4)
    assert (a == b).all() and (c1 == c2).all()
    assert not (a == other).all()
    # dropout layers are back in eval mode, the deterministic pass unchanged
    assert not any(m.training for m in net.modules())
    c3, _ = predict_with_uncertainty(net, x, None)
    assert (c3 == c1).all()


def test_more_passes_give_lower_variance_between_runs():
    net, x = _net(), _x()

    def spread(passes: int) -> float:
        maps = [predict_with_uncertainty(net, x, UncertaintyMethod("mcdropout", passes),
                                         seed=s, case_id="c", batch_size=8)[1] for s in range(4)]
        return float(np.stack(maps).var(0).mean())

    few, many = spread(2), spread(16)
    assert many < few / 2, (few, many)


def test_dropout_active_restores_modes():
    net = _net().train()
    with dropout_active(net):
        kinds = {type(m).__name__: m.training for m in net.modules()}
        assert kinds["Dropout3d"] and not kinds["InstanceNorm3d"]
    assert all(m.training for m in net.modules())
