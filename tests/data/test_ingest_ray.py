"""The Ray Data engine gives the same tables as the local engine (one local Ray instance)."""

from __future__ import annotations

import pandas as pd
import pytest

from hpc_seg.data.ingest import IngestConfig, ingest
from tests.data.test_ingest import make_cohort

pytestmark = pytest.mark.ray


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys).reset_index(drop=True)


def test_ray_engine_matches_local_engine(tmp_path):
    src = tmp_path / "src"
    make_cohort(src)
    local = ingest(src, tmp_path / "local", IngestConfig(engine="local", workers=1, progress=False))
    ray_s = ingest(src, tmp_path / "ray", IngestConfig(engine="ray", workers=2, progress=False))
    assert ray_s.engine == "ray"
    assert (ray_s.patients, ray_s.stacks, ray_s.files_used, ray_s.skipped_by_reason) == \
        (local.patients, local.stacks, local.files_used, local.skipped_by_reason)
    a = _sorted(pd.read_parquet(tmp_path / "local" / "volumes"), ["stack_id"])
    b = _sorted(pd.read_parquet(tmp_path / "ray" / "volumes"), ["stack_id"])
    assert len(a) == 3
    pd.testing.assert_frame_equal(a, b)
    for table, keys in (("issues", ["file", "problem", "detail"]),
                        ("files", ["stack_id", "slice", "frame"]),
                        ("dicom_metadata", ["file", "tag"]), ("subjects", ["stack_id"])):
        pd.testing.assert_frame_equal(_sorted(pd.read_parquet(tmp_path / "local" / table), keys),
                                      _sorted(pd.read_parquet(tmp_path / "ray" / table), keys))
    # A re-run with Ray finds everything finished and starts no work.
    again = ingest(src, tmp_path / "ray", IngestConfig(engine="ray", workers=2, progress=False))
    assert again.patients == 0 and again.patients_skipped_done == 3
