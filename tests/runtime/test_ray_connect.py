"""Which Ray cluster a driver joins, and the shared-path verdict (no Ray started here)."""

from __future__ import annotations

import pytest

from hpc_seg.errors import ConfigError
from hpc_seg.runtime.ray_connect import cluster_address, unshared_nodes


def test_explicit_address_wins_then_ray_address(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert cluster_address("10.0.0.2:7000") == "10.0.0.2:7000"
    assert cluster_address(None) == "10.0.0.1:6379"
    assert cluster_address("auto") == "10.0.0.1:6379"
    monkeypatch.delenv("RAY_ADDRESS")
    assert cluster_address(None) is None


def test_auto_without_ray_address_refuses_to_scan_for_someone_elses_head(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(ConfigError, match="RAY_ADDRESS is not set"):
        cluster_address("auto")


def test_nodes_that_read_another_text_or_nothing_are_named():
    answers = {"10.0.0.1 (a)": "tok", "10.0.0.2 (b)": None, "10.0.0.3 (c)": "other"}
    assert unshared_nodes("tok", answers) == ["10.0.0.2 (b)", "10.0.0.3 (c)"]
    assert unshared_nodes("tok", {"10.0.0.1 (a)": "tok"}) == []
