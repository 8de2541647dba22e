"""`hpc-seg cluster submit -- hpc-seg ingest ... --engine ray` on the two-node local SLURM."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from hpc_seg.cardiac.ingest.run import IngestConfig, ingest
from tests.cardiac.ingest.dicom_fixtures import write_stack
from tests.cardiac.ingest.test_engine_ray import assert_same_tables
from tests.cardiac.ingest.test_ingest import make_cohort
from tests.launch.multinode.helpers import (OutsideRay, cluster_submit, job_id_of,
                                            wait_namespaces_idle)

pytestmark = [pytest.mark.slurm, pytest.mark.multinode]


def test_ingest_on_two_node_ray_cluster_equals_local_engine(two_nodes, shared_dir):
    src = shared_dir / "src"
    make_cohort(src)   # patients 1-3 with the corrupt-file quirks
    for pid in ("4", "5", "6"):
        write_stack(src, pid, "train", n_slices=3, n_frames=4, rows=6, cols=6)
    ingest(src, shared_dir / "local", IngestConfig(engine="local", workers=1, progress=False))

    outside = OutsideRay(Path("/tmp") / f"ray-outside-{uuid.uuid4().hex[:6]}")
    try:
        done = cluster_submit(shared_dir / "logs", ["hpc-seg", "ingest", str(src),
                                                    str(shared_dir / "ray"), "--engine", "ray"])
        job = job_id_of(done.stdout)
        log = (shared_dir / "logs" / f"mn-test-{job}.out").read_text()
        assert done.returncode == 0, done.stdout + done.stderr + log
        # Another Ray on the same machine survived the job's teardown.
        assert outside.alive(), "the job's teardown killed a Ray instance it did not start"
    finally:
        outside.stop()
    assert "ready, 2 node(s) joined" in log
    assert "patients: 6 processed" in log
    # Every patient's node is recorded, and the work was spread over both nodes.
    placement = json.loads((shared_dir / "ray" / "placement.json").read_text())
    assert len(placement) == 6
    assert {p["hostname"] for p in placement.values()} == {"n1", "n2"}, placement
    assert {p["node_ip"] for p in placement.values()} == {"10.77.0.11", "10.77.0.12"}
    assert assert_same_tables(shared_dir / "local", shared_dir / "ray") > 0
    # Nothing of the job is left on either node; its token file is gone.
    assert wait_namespaces_idle() == {"hpcseg-n1": [], "hpcseg-n2": []}
    assert not (Path.home() / ".hpc-seg" / "ray-tokens" / f"{job}.token").exists()
