"""Two Ray-cluster jobs at once on the same two nodes: no shared port, temp dir or token, the
token file mode 600 and in no log."""

from __future__ import annotations

import json

import pytest

from tests.launch.multinode.helpers import cluster_submit, job_id_of, wait_namespaces_idle

pytestmark = [pytest.mark.slurm, pytest.mark.multinode]


def test_two_ray_cluster_jobs_share_the_nodes_without_colliding(two_nodes, shared_dir):
    runs = [cluster_submit(shared_dir / "logs", ["python", "-m", "tests.launch.multinode.probe",
                                                 str(shared_dir / f"probe-{i}.json")],
                           cpus=1, name=f"mn-two-{i}", background=True) for i in range(2)]
    outs = [r.communicate(timeout=400) for r in runs]
    jobs = [job_id_of(out) for out, _ in outs]
    logs = [(shared_dir / "logs" / f"mn-two-{i}-{job}.out").read_text() for i, job in enumerate(jobs)]
    for run, (out, err), log in zip(runs, outs, logs):
        assert run.returncode == 0, out + err + log
    probes = [json.loads((shared_dir / f"probe-{i}.json").read_text()) for i in range(2)]
    tokens = [(shared_dir / f"probe-{i}.token").read_text() for i in range(2)]
    # Both clusters spanned both nodes at the same time, each on its own ports and temp dirs.
    for p in probes:
        assert p["nodes"] == ["10.77.0.11", "10.77.0.12"] and p["task_hosts"] == ["n1", "n2"]
        assert p["head_tmp_exists"] and p["auth_mode"] == "token"
    for p in probes:   # outputs must be on a path every node sees: /tmp is refused
        assert "must be on a file system shared by every Ray node, but 1 of 2 node(s) cannot " \
               "see it: 10.77.0.12 (n2)" in p["node_local_error"], p["node_local_error"]
    assert probes[0]["ray_address"] != probes[1]["ray_address"]
    assert probes[0]["head_tmp"] != probes[1]["head_tmp"]
    assert "ready, 2 node(s) joined" in logs[0] and "ready, 2 node(s) joined" in logs[1]
    # Per-job tokens: private, different, in no log of either job (Ray's own logs included).
    assert tokens[0] != tokens[1] and all(len(t) == 64 for t in tokens)
    assert [p["token_mode"] for p in probes] == ["0o600", "0o600"]
    assert [p["token_dir_mode"] for p in probes] == ["0o700", "0o700"]
    assert [p["ray_files_with_token"] for p in probes] == [[], []]
    texts = logs + [(shared_dir / "logs" / f"mn-two-{i}-{job}.sbatch").read_text()
                    for i, job in enumerate(jobs)]
    assert not [t for t in tokens if any(t in text for text in texts)]
    assert wait_namespaces_idle() == {"hpcseg-n1": [], "hpcseg-n2": []}
