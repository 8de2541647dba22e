"""Shared core: typed config loading, atomic shard writes, checkpoint rotation and loading."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from hpc_seg.config import config_hash, from_dict
from hpc_seg.storage import shards
from hpc_seg.errors import ConfigError, OutputError
from hpc_seg.runtime.checkpoint import (list_checkpoints, load_latest, rng_state, save_checkpoint,
                                      set_rng_state)


@dataclass(kw_only=True)
class _Inner:
    size: int = 4


@dataclass(kw_only=True)
class _Cfg:
    name: str
    mode: Literal["a", "b"] = "a"
    lr: float = 0.1
    path: Path | None = None
    sizes: list[int] = field(default_factory=list)
    inner: _Inner = field(default_factory=_Inner)


def test_from_dict_builds_nested_typed_config() -> None:
    cfg = from_dict(_Cfg, {"name": "x", "lr": 1, "path": "/a", "sizes": [1, 2],
                           "inner": {"size": 8}}, "job.toml: [t]")
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.path == Path("/a") and cfg.sizes == [1, 2] and cfg.inner.size == 8


@pytest.mark.parametrize("data, message", [
    ({"name": "x", "lrr": 1}, r"job.toml: \[t\]: unknown key\(s\) \['lrr'\]; valid keys are"),
    ({"name": "x", "mode": "c"}, r"job.toml: \[t\].mode: must be one of \['a', 'b'\], but got 'c'"),
    ({"name": "x", "lr": "fast"}, r"job.toml: \[t\].lr: expected float, but got 'fast'"),
    ({"name": "x", "inner": {"size": True}}, r"job.toml: \[t\].inner.size: expected int"),
    ({}, r"missing required key\(s\) \['name'\]"),
])
def test_from_dict_errors_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_dict(_Cfg, data, "job.toml: [t]")


def test_config_hash_is_stable_and_sensitive() -> None:
    a, b = _Cfg(name="x"), _Cfg(name="x")
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash(_Cfg(name="x", lr=0.2))


def test_array_round_trip_and_plain_pandas_read(tmp_path: Path) -> None:
    vol = np.arange(2 * 3 * 4, dtype="<u2").reshape(2, 3, 4)
    data, shape, dtype = shards.encode_array(vol)
    with shards.ShardWriter(tmp_path / "t", target_mb=1e-6) as w:
        w.add({"id": "a", "pixels": data, "shape": shape, "dtype": dtype})
        w.add({"id": "b", "pixels": data, "shape": shape, "dtype": dtype})
    assert len(shards.shard_files(tmp_path / "t")) == 2  # tiny target: one row per shard
    df = pd.read_parquet(tmp_path / "t")
    row = df[df.id == "b"].iloc[0]
    np.testing.assert_array_equal(shards.decode_array(row["pixels"], row["shape"], row["dtype"]), vol)


def test_failed_write_leaves_no_partial_file_and_names_path(tmp_path: Path, monkeypatch) -> None:
    def full_disk(table, where, **kw):
        Path(where).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shards.pq, "write_table", full_disk)
    target = tmp_path / "out" / "part-0.parquet"
    with pytest.raises(OutputError, match=rf"{target}: cannot write output: no space left on device"):
        shards.atomic_write_table(pa.table({"x": [1]}), target)
    assert list((tmp_path / "out").iterdir()) == []


def test_writer_drops_buffered_rows_on_error(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with shards.ShardWriter(tmp_path / "t") as w:
            w.add({"id": "a"})
            raise KeyboardInterrupt
    assert shards.shard_files(tmp_path / "t") == []


def test_checkpoints_rotate_and_corrupt_newest_falls_back(tmp_path: Path) -> None:
    for step in range(1, 5):
        save_checkpoint({"w": torch.full((2,), float(step)), "epoch": step}, tmp_path, step, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-000003.pt", "ckpt-000004.pt"]
    list_checkpoints(tmp_path)[-1].write_bytes(b"not a checkpoint")
    state = load_latest(tmp_path)
    assert state["epoch"] == 3 and torch.equal(state["w"], torch.full((2,), 3.0))


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(1)
    np.random.seed(1)
    save_checkpoint({"rng": rng_state()}, tmp_path, 1)
    expected = (torch.rand(3), np.random.rand(3))
    set_rng_state(load_latest(tmp_path)["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    np.testing.assert_array_equal(np.random.rand(3), expected[1])


def test_quiet_console_keeps_only_stage_trial_and_progress_lines() -> None:
    import logging

    from hpc_seg.logs import CONSOLE_LOGGERS, quiet_console

    names = ("hpc_seg", *CONSOLE_LOGGERS)
    before = {n: logging.getLogger(n).level for n in names}
    try:
        quiet_console(1)            # -v: nothing changes
        assert {n: logging.getLogger(n).level for n in names} == before
        quiet_console(0)
        assert not logging.getLogger("hpc_seg.cardiac.ingest.run").isEnabledFor(logging.INFO)
        assert logging.getLogger("hpc_seg.cardiac.ingest.run").isEnabledFor(logging.WARNING)
        assert logging.getLogger("hpc_seg.pipeline.runner").isEnabledFor(logging.INFO)
        assert logging.getLogger("hpc_seg.hpo.optuna_searcher").isEnabledFor(logging.INFO)
    finally:
        for n, level in before.items():
            logging.getLogger(n).setLevel(level)
