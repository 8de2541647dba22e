"""The Ray Data engine gives the same tables as the local engine (one local Ray instance)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from hpc_seg.cardiac.ingest.run import IngestConfig, ingest
from tests.cardiac.ingest.test_ingest import make_cohort

pytestmark = pytest.mark.ray


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys).reset_index(drop=True)


def assert_same_tables(local: Path, other: Path) -> int:
    """Both engines' output folders hold equal tables (row order aside); returns the stacks."""
    a = _sorted(pd.read_parquet(local / "volumes"), ["stack_id"])
    b = _sorted(pd.read_parquet(other / "volumes"), ["stack_id"])
    pd.testing.assert_frame_equal(a, b)
    for table, keys in (("issues", ["file", "problem", "detail"]),
                        ("files", ["stack_id", "slice", "frame"]),
                        ("dicom_metadata", ["file", "tag"]), ("subjects", ["stack_id"])):
        pd.testing.assert_frame_equal(_sorted(pd.read_parquet(local / table), keys),
                                      _sorted(pd.read_parquet(other / table), keys))
    return len(a)


def test_ray_engine_matches_local_engine(tmp_path):
    src = tmp_path / "src"
    make_cohort(src)
    local = ingest(src, tmp_path / "local", IngestConfig(engine="local", workers=1, progress=False))
    ray_s = ingest(src, tmp_path / "ray", IngestConfig(engine="ray", workers=2, progress=False))
    assert ray_s.engine == "ray"
    assert (ray_s.patients, ray_s.stacks, ray_s.files_used, ray_s.skipped_by_reason) == \
        (local.patients, local.stacks, local.files_used, local.skipped_by_reason)
    assert assert_same_tables(tmp_path / "local", tmp_path / "ray") == 3
    # Each patient's node is recorded (one local node here), and workers' CPU time is counted.
    placement = json.loads((tmp_path / "ray" / "placement.json").read_text())
    assert sorted(placement) == ["test/3", "train/1", "train/2"]
    assert len({p["node_id"] for p in placement.values()}) == 1
    assert ray_s.cpu_seconds > 0 and local.cpu_seconds > 0
    # A re-run with Ray finds everything finished and starts no work.
    again = ingest(src, tmp_path / "ray", IngestConfig(engine="ray", workers=2, progress=False))
    assert again.patients == 0 and again.patients_skipped_done == 3


def _hold(batch: pd.DataFrame) -> pd.DataFrame:
    import time

    start = time.time()
    time.sleep(0.5)
    return pd.DataFrame({"start": [start], "end": [time.time()]})


def test_ingest_pipeline_runs_on_every_cpu_at_once_and_restores_settings():
    """Under the ingest's Data settings the first two tasks of a one-operator pipeline run at the
    same time on 2 CPUs (with Ray's per-operator reservation the second waits for the first:
    measured 0.56 s apart), and the user's settings come back afterwards."""
    import ray

    from hpc_seg.cardiac.ingest.engine_ray import _ingest_data_context, warm_up

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ctx = ray.data.DataContext.get_current()
        before = (ctx.enable_progress_bars, ctx.op_resource_reservation_enabled)
        warm_up(2)
        with _ingest_data_context():
            ds = ray.data.range(4, override_num_blocks=4).map_batches(_hold, batch_size=1,
                                                                        batch_format="pandas")
            spans = sorted((row["start"], row["end"]) for row in ds.iter_rows())
        assert spans[1][0] < spans[0][1], f"the first two tasks ran one after the other: {spans}"
        assert (ctx.enable_progress_bars, ctx.op_resource_reservation_enabled) == before
    finally:
        ray.shutdown()
