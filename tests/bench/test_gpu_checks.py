"""``hpc-seg bench gpu``'s runner and report: a check that raises, hangs or dies is recorded with
its cause and fails the run while the other checks still run; the JSON keeps its schema.

The real checks run at toy sizes in ``make gpu-dry-run`` (part of ``make test``); here the runner
gets stand-in checks (tests/bench/gpu_check_fixtures.py) through ``--extra-check``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch

from hpc_seg.bench.gpu.check_ddp import compare, relative_l2
from hpc_seg.bench.gpu.check_ingest import scaling
from hpc_seg.bench.gpu.check_tests import junit_counts
from hpc_seg.bench.gpu.check_tune import max_overlap
from hpc_seg.bench.gpu.profile import (CHECK_NAMES, GpuBenchProfile, dry_run_profile,
                                       gpu_profile)
from hpc_seg.bench.gpu.report import JSON_NAME, LOG_NAME, check_document
from hpc_seg.bench.gpu.sampler import cpu_busy_percent, parse_nvidia_smi, read_cpu_times
from hpc_seg.cli import main

FIX = "tests.bench.gpu_check_fixtures"


def _run(tmp_path: Path, checks: dict[str, str], *extra: str) -> tuple[int, dict, str]:
    args = ["bench", "gpu", "--dry-run", "--out", str(tmp_path / "out"),
            "--scratch", str(tmp_path / "work"), "--checks", ",".join(checks)]
    for name, fn in checks.items():
        args += ["--extra-check", f"{name}={FIX}:{fn}"]
    rc = main(args + list(extra))
    doc = json.loads((tmp_path / "out" / JSON_NAME).read_text())
    check_document(doc)
    return rc, doc, (tmp_path / "out" / LOG_NAME).read_text()


def test_a_raising_check_fails_the_run_with_its_error_and_the_others_still_run(tmp_path):
    rc, doc, log = _run(tmp_path, {"first": "ok_check", "broken": "failing_check",
                                   "after": "ok_check"})
    assert rc == 1
    first, broken, after = doc["checks"]
    assert [c["name"] for c in doc["checks"]] == ["first", "broken", "after"]
    assert broken["error"].startswith("RuntimeError: injected failure: the step returned NaN")
    assert "failing_check" in broken["error"] and broken["met"] is None
    assert broken["figures"] == {}
    for ok in (first, after):
        assert ok["error"] is None and ok["figures"]["images_per_s"] == 12.5
        assert ok["figures"]["not_a_number"] is None and ok["figures"]["per_worker"] == {"1": 3.0}
        # a dry run judges no target, but says what the judging code found
        assert ok["met"] is None and "would read true" in ok["note"]
        assert ok["target"] == "images_per_s >= 10" and ok["summary"] == "12.5 img/s"
    assert doc["dry_run"] is True and doc["finished"] is not None
    assert "[ERROR] broken" in log and "RuntimeError: injected failure" in log
    assert "[ok   ] after" in log and "1 with errors (broken)" in log


def test_all_checks_passing_exit_zero(tmp_path):
    rc, doc, _ = _run(tmp_path, {"one": "ok_check"})
    assert rc == 0 and [c["error"] for c in doc["checks"]] == [None]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_hanging_check_is_killed_with_its_children_at_its_limit(tmp_path):
    t0 = time.monotonic()
    rc, doc, _ = _run(tmp_path, {"hang": "hanging_check", "after": "ok_check"},
                      "--limit", "hang=8")
    assert rc == 1 and time.monotonic() - t0 < 120
    hang, after = doc["checks"]
    assert hang["error"].startswith("timed out after 8 s and was killed")
    assert 8 <= hang["seconds"] < 60 and after["error"] is None
    pids = [int(p) for p in (tmp_path / "work" / "hang" / "pids").read_text().split()]
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids), "the check or its child outlived the kill"


def test_a_check_that_dies_or_returns_the_wrong_thing_is_an_error(tmp_path):
    rc, doc, _ = _run(tmp_path, {"dies": "dying_check", "wrong": "wrong_return_check"})
    assert rc == 1
    dies, wrong = doc["checks"]
    assert dies["error"].startswith("the check's process exited with code 3 without a result")
    assert wrong["error"].startswith("TypeError: check wrong returned dict, not a CheckOutcome")


def test_a_spent_budget_records_the_checks_not_started(tmp_path):
    rc, doc, _ = _run(tmp_path, {"slow": "hanging_check", "late": "ok_check"},
                      "--budget", "15")
    assert rc == 1
    slow, late = doc["checks"]
    assert slow["error"].startswith("timed out after 15 s")
    assert late["error"].startswith("not run:") and "15 s budget" in late["error"]


def test_bad_options_are_one_line_errors(tmp_path, capsys):
    assert main(["bench", "gpu", "--dry-run", "--checks", "train,nonsense"]) == 2
    assert "--checks: unknown nonsense; valid are" in capsys.readouterr().err
    assert main(["bench", "gpu", "--dry-run", "--limit", "train"]) == 2
    assert "--limit train: expected NAME=SECONDS" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_only_the_dry_run_runs(tmp_path, capsys):
    assert main(["bench", "gpu", "--out", str(tmp_path)]) == 2
    assert "no CUDA GPU on this machine" in capsys.readouterr().err
    assert not (tmp_path / JSON_NAME).exists()


def _valid_doc() -> dict:
    return {"schema": 1, "dry_run": False, "profile": "gpu", "started": "t", "finished": None,
            "environment": {}, "checks": [
                {"name": "train", "figures": {"x": 1}, "target": "x", "met": True, "error": None,
                 "seconds": 1.0, "summary": "", "note": ""},
                {"name": "ddp", "figures": {}, "target": None, "met": None, "error": "E: boom",
                 "seconds": 0.5, "summary": "", "note": ""}]}


@pytest.mark.parametrize("break_it, problem", [
    (lambda d: d.pop("checks"), "missing 'checks'"),
    (lambda d: d["checks"][0].pop("seconds"), "checks[0]: missing 'seconds'"),
    (lambda d: d["checks"][0].update(met="yes"), "checks[0].met: str"),
    (lambda d: d["checks"][1].update(met=False), "a failed check cannot have met a target"),
    (lambda d: d.update(dry_run=True), "a dry run judges no target"),
    (lambda d: d["checks"][0]["figures"].update(x=float("nan")), "not plain JSON"),
    (lambda d: d["checks"].append(dict(d["checks"][0])), "duplicate names"),
    (lambda d: d["checks"][0].update(extra=1), "unexpected ['extra']"),
    (lambda d: d.update(schema=2), "document.schema: 2"),
])
def test_check_document_names_what_is_wrong(break_it, problem):
    doc = _valid_doc()
    check_document(doc)
    break_it(doc)
    with pytest.raises(ValueError, match=None) as err:
        check_document(doc)
    assert problem in str(err.value)


def test_profiles_hold_the_published_sizes_and_the_same_checks():
    gpu, dry = gpu_profile(), dry_run_profile()
    assert (gpu.train.encoder, gpu.train.image_size, gpu.train.batch_size) == ("resnet34", 256, 32)
    assert {"fp32", "bf16", "bf16+cl"} <= set(gpu.train.modes)
    assert (gpu.tune.trials, gpu.tune.gpus_per_trial) == (4, 0.25)
    assert (tuple(gpu.hadnet.size), gpu.hadnet.k, gpu.hadnet.max_memory_gb) == ((160, 192, 160), 32, 12)
    assert (gpu.ddp.backend, gpu.ddp.reference_backend, tuple(gpu.ddp.world_sizes)) == ("nccl", "gloo", (1, 2))
    assert tuple(gpu.ingest.workers) == (1, 2, 4, 8, 16) and gpu.ingest.patients == 20
    assert (dry.device, dry.ddp.backend, dry.tune.gpus_per_trial, dry.tune.cpus_per_trial) == \
        ("cpu", "gloo", 0.0, 0.25)
    for p in (gpu, dry):
        assert set(p.limits) == set(CHECK_NAMES)
        assert GpuBenchProfile.from_json(json.loads(json.dumps(p.to_json()))) == p


def test_nvidia_smi_lines_and_cpu_busy_are_parsed():
    assert parse_nvidia_smi("0, 87, 10240\n") == (0, 87.0, 10240.0)
    assert parse_nvidia_smi("0, [N/A], 10") is None and parse_nvidia_smi("garbage") is None
    assert cpu_busy_percent((100, 400), (250, 600)) == 75.0
    assert cpu_busy_percent((1, 1), (1, 1)) is None
    busy, total = read_cpu_times()
    assert 0 <= busy <= total


def test_figures_helpers():
    assert max_overlap([(0, 10), (1, 11), (2, 12), (3, 13)]) == 4
    assert max_overlap([(0, 1), (1, 2), (2, 3)]) == 1
    curve = scaling({1: 100.0, 2: 180.0, 4: 300.0})
    assert curve[2] == {"files_per_s": 180.0, "speedup": 1.8, "efficiency": 0.9}
    assert curve[4]["efficiency"] == 0.75
    a = torch.tensor([3.0, 4.0])
    assert relative_l2(a, a) == 0.0 and relative_l2(torch.tensor([3.0, 3.0]), a) == 0.2
    run = {"grads": [a], "weights": a, "losses": [1.0]}
    ref = {"grads": [a * 1.01], "weights": a, "losses": [1.02]}
    cmp = compare(run, ref)
    assert cmp["grad_rel_l2"] == pytest.approx(0.01 / 1.01) and cmp["loss_rel"] == pytest.approx(0.02 / 1.02)


def test_junit_counts(tmp_path):
    report = tmp_path / "junit.xml"
    report.write_text(
        '<?xml version="1.0"?><testsuites><testsuite tests="4" failures="1" errors="0" skipped="1">'
        '<testcase classname="tests.gpu.a" name="t1"/><testcase classname="tests.gpu.a" name="t2">'
        '<failure message="x"/></testcase><testcase classname="tests.gpu.b" name="t3"><skipped/>'
        '</testcase><testcase classname="tests.gpu.b" name="t4"/></testsuite></testsuites>')
    assert junit_counts(report) == {"passed": 2, "failed": 1, "skipped": 1,
                                    "failed_ids": ["tests.gpu.a::t2"]}


def test_ddp_check_runs_agree_to_the_bit_in_fp32(tmp_path, monkeypatch):
    """The comparison's own logic: on CPU in fp32, one rank in a group, two ranks and one process
    accumulating give the same averaged gradients to the bit (the collectives sum correctly)."""
    from hpc_seg.bench.gpu.check_ddp import run_check
    from hpc_seg.bench.gpu.profile import DdpCheck

    monkeypatch.setenv("HPC_SEG_CPU_BF16", "off")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    profile = dry_run_profile()
    profile.ddp = DdpCheck(size=(32, 32, 32), k=2, steps=1, world_sizes=(2,), backend="gloo")
    outcome = run_check(profile, tmp_path)
    cmp = outcome.figures["comparisons"]
    assert set(cmp) == {"gloo_ws2 vs single"}
    assert all(v == {"grad_rel_l2": 0.0, "loss_rel": 0.0, "weights_rel_l2": 0.0}
               for v in cmp.values()), cmp
    assert outcome.figures["run_to_run"]["grad_rel_l2"] == 0.0
    assert outcome.met is True and outcome.figures["runs"]["gloo_ws2"]["precision"] == "fp32"


def test_every_gpu_marked_test_lives_where_the_gpu_run_collects():
    """``hpc-seg bench gpu`` collects only tests/gpu on the GPU machine; a test marked gpu
    elsewhere would never run there."""
    root = Path(__file__).resolve().parents[1]
    outside = [str(p.relative_to(root)) for p in root.rglob("*.py")
               if "mark.gpu" in p.read_text() and p.parent.name != "gpu"
               and p.name != Path(__file__).name]
    assert outside == []
    assert (root / "gpu").is_dir() and gpu_profile().tests.paths == ("tests/gpu",)


def test_tests_check_counts_passes_and_a_failing_test_is_an_error(tmp_path):
    from hpc_seg.bench.gpu.check_tests import run_check
    from hpc_seg.bench.gpu.profile import TestsCheck

    folder = tmp_path / "gpu_tests"
    folder.mkdir()
    (folder / "test_a.py").write_text(
        "import pytest\n\n@pytest.mark.gpu\ndef test_ok():\n    assert True\n\n"
        "def test_not_marked():\n    raise AssertionError('not selected')\n")
    profile = dry_run_profile()
    profile.tests = TestsCheck(paths=(str(folder),))
    outcome = run_check(profile, tmp_path / "work")
    assert outcome.met is True and outcome.figures["passed"] == 1
    assert outcome.figures["failed"] == 0 and outcome.summary.startswith("1 passed, 0 failed")
    (folder / "test_b.py").write_text(
        "import pytest\n\n@pytest.mark.gpu\ndef test_broken():\n    assert 1 == 2\n")
    with pytest.raises(RuntimeError, match=r"1 passed, 1 failed, 0 skipped: .*test_broken"):
        run_check(profile, tmp_path / "work")
