"""A 4-trial search on the two-node Ray cluster: trials on both nodes, the study complete and
readable by the stock optuna CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hpo.conftest import TOY
from tests.launch.multinode.helpers import cluster_submit, job_id_of, wait_namespaces_idle

pytestmark = [pytest.mark.slurm, pytest.mark.multinode]


def test_four_trial_search_on_two_nodes(two_nodes, shared_dir):
    (shared_dir / "slices").mkdir()
    job_file = shared_dir / "search.toml"
    job_file.write_text(f"""
[job]
name = "mn_search"

[train]
epochs = 3
sleep_s = 1.0

[search]
train_fn = "{TOY['train_fn']}"
train_config = "{TOY['train_config']}"
num_samples = 4
max_concurrent = 4
cpus_per_trial = 1
study_name = "mn"
dashboard = false
space = {{ lr = {{ low = 3e-4, high = 3e-3, log = true }} }}
data = {{ slices_dir = "{shared_dir / 'slices'}" }}
asha = {{ grace_period = 3, reduction_factor = 2 }}
""")
    out = shared_dir / "tune"
    done = cluster_submit(shared_dir / "logs", ["hpc-seg", "tune", str(job_file), "--out", str(out)])
    job = job_id_of(done.stdout)
    log = (shared_dir / "logs" / f"mn-test-{job}.out").read_text()
    assert done.returncode == 0, done.stdout + done.stderr + log
    assert "is shared by all 2 Ray node(s)" in log or "best trial" in log
    # Tune records the node of every result; the 4 trials (1 CPU each, 2 CPUs per node) ran on both.
    results = [json.loads(line) for p in out.rglob("result.json")
               for line in p.read_text().splitlines() if line.strip()]
    assert {r["hostname"] for r in results} == {"n1", "n2"}, {r["hostname"] for r in results}
    trials = json.loads(subprocess.run(
        [str(Path(sys.executable).parent / "optuna"), "trials", "--study-name", "mn",
         "--storage", f"sqlite:///{out / 'study.db'}", "-f", "json"],
        capture_output=True, text=True, check=True, timeout=120).stdout)
    assert len(trials) == 4 and {t["state"] for t in trials} == {"COMPLETE"}, trials
    assert wait_namespaces_idle() == {"hpcseg-n1": [], "hpcseg-n2": []}
