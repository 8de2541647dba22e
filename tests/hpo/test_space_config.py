"""Search space, published grid and [search] config validation (no Ray)."""

from __future__ import annotations

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hpc_seg.config import from_dict
from hpc_seg.errors import ConfigError
from hpc_seg.hpo.search_config import SearchConfig, load_search_config, search_config_from_tables
from hpc_seg.cardiac.search_space import DEFAULT_SPACE, published_grid
from hpc_seg.hpo.space import to_distributions
from tests.hpo.conftest import REPO


def test_published_grid_is_nine_distinct_runs_inside_the_default_space():
    grid = published_grid()
    assert len(grid) == 9 and grid[0][0] == "r34_p05_s256_ce_normal"
    assert grid[0][1] == {"encoder": "resnet34", "confidence_set": "p05", "image_size": 256,
                          "loss": "ce", "augment": "normal", "lr": 1e-4, "batch_size": 32}
    keys = {tuple(sorted(p.items())) for _, p in grid}
    assert len(keys) == 9
    # every run differs from the baseline in one choice (batch 8 goes with the big encoders)
    base = grid[0][1]
    for name, params in grid[1:]:
        diff = {k for k in params if params[k] != base[k]}
        assert diff in ({"encoder", "batch_size"}, {"loss"}, {"confidence_set"}, {"image_size"},
                        {"augment"}), name
    dists = to_distributions(DEFAULT_SPACE)
    assert set(dists) == {"encoder", "loss", "image_size", "augment", "confidence_set", "lr",
                          "batch_size"}
    for _, params in grid:
        for k, v in params.items():
            d = dists[k]
            assert v in d.choices if isinstance(d, CategoricalDistribution) else d.low <= v <= d.high


def test_space_entries_become_optuna_distributions():
    d = to_distributions({"a": ["x", "y"], "lr": {"low": 1e-5, "high": 1e-3, "log": True},
                          "bs": {"low": 8, "high": 32, "step": 8}, "p": {"low": 0, "high": 0.5}})
    assert d["a"] == CategoricalDistribution(["x", "y"])
    assert d["lr"] == FloatDistribution(1e-5, 1e-3, log=True)
    assert d["bs"] == IntDistribution(8, 32, step=8)
    assert d["p"] == FloatDistribution(0.0, 0.5)


@pytest.mark.parametrize("space, message", [
    ({"lr": {"low": 1e-3, "high": 1e-5}}, r"space\.lr: need 0 < low <= high"),
    ({"lr": {"low": 0, "high": 1, "log": True}}, r"space\.lr: need 0 < low"),
    ({"lr": {"min": 1, "max": 2}}, r"space\.lr: a range is \{low, high"),
    ({"loss": []}, r"space\.loss: a choice list needs at least one value"),
    ({"loss": ["ce", "ce"]}, r"space\.loss: repeated choices"),
    ({"loss": "ce"}, r"space\.loss: expected a list of choices"),
])
def test_bad_space_entries_name_the_key(space, message):
    with pytest.raises(ConfigError, match=message):
        to_distributions(space, "space")


def test_search_config_defaults_and_errors(tmp_path):
    cfg = SearchConfig()
    assert cfg.mode == "tpe" and cfg.target_trials == 20 and cfg.direction == "maximize"
    assert cfg.space == DEFAULT_SPACE and cfg.dashboard_host == "127.0.0.1"
    assert SearchConfig(metric="val_loss").direction == "minimize"
    assert SearchConfig(mode="grid").target_trials == 9
    # user space keys replace defaults key by key
    cfg = SearchConfig(space={"encoder": ["resnet18"]})
    assert cfg.space["encoder"] == ["resnet18"] and cfg.space["loss"] == DEFAULT_SPACE["loss"]
    with pytest.raises(ConfigError, match="grid mode runs exactly the 9 published"):
        SearchConfig(mode="grid", num_samples=4)
    with pytest.raises(ConfigError, match=r"published grid run 'r50'.*encoder.*'resnet50'"):
        SearchConfig(mode="grid", space={"encoder": ["resnet34", "vgg16_bn"]})
    with pytest.raises(ConfigError, match=r"points_to_evaluate\[0\]: key\(s\) \['lrate'\]"):
        SearchConfig(points_to_evaluate=[{"lrate": 1.0}])
    with pytest.raises(ConfigError, match=r"train_fn: expected 'module:attribute'"):
        SearchConfig(train_fn="hpc_seg.cardiac.train.loop.train_segmenter")
    with pytest.raises(ConfigError, match=r"job.toml: \[search\].*unknown key.*'samples'"):
        search_config_from_tables({"search": {"samples": 3}}, "job.toml")
    with pytest.raises(ConfigError, match=r"job.toml: \[search\].*metric: must be one of"):
        search_config_from_tables({"search": {"metric": "dice"}}, "job.toml")
    with pytest.raises(ConfigError, match=r"job.toml: \[search\].*space\.lr"):
        search_config_from_tables({"search": {"space": {"lr": {"low": 2, "high": 1}}}}, "job.toml")
    # [train] is the base of every trial unless [search.train] is given
    cfg = search_config_from_tables({"train": {"lr": 1e-3}, "search": {}}, "job.toml")
    assert cfg.train == {"lr": 1e-3}
    assert from_dict(SearchConfig, {"asha": {"grace_period": 2}}).asha.grace_period == 2


def test_shipped_job_file_loads():
    cfg = load_search_config(REPO / "jobs" / "cardiac_search.toml")
    assert cfg.mode == "tpe" and cfg.train["encoder"] == "resnet34"
    assert "{image_size}" in cfg.data.slices_dir
    # the shipped space contains the published grid
    assert from_dict(SearchConfig, {"space": cfg.space, "mode": "grid"}).target_trials == 9
