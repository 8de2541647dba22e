"""Mixed precision chosen from what the CPU can do, and CPU threads from the process's allocation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hpc_seg.errors import ConfigError
from hpc_seg.runtime.device import CpuFeatures, amp_dtype, autocast, cpu_bf16_override
from hpc_seg.runtime.threads import allocated_cpus, configure_torch_threads, resolve_threads

CPU = torch.device("cpu")
WITH_AMX = CpuFeatures(model="test CPU", capability="AVX512", avx512_bf16=True, amx_bf16=True)
WITH_AVX512_BF16 = CpuFeatures(model="test CPU", capability="AVX512", avx512_bf16=True,
                               amx_bf16=False)
WITHOUT = CpuFeatures(model="test CPU", capability="AVX2", avx512_bf16=False, amx_bf16=False)
NO_ENV: dict[str, str] = {}


@pytest.mark.parametrize("features", [WITH_AMX, WITH_AVX512_BF16])
def test_a_cpu_with_bf16_units_trains_in_bf16(features):
    assert amp_dtype(CPU, True, features, NO_ENV) is torch.bfloat16


def test_a_cpu_without_bf16_units_stays_fp32():
    assert amp_dtype(CPU, True, WITHOUT, NO_ENV) is None


@pytest.mark.parametrize("features", [WITH_AMX, WITHOUT])
def test_amp_false_forces_fp32(features):
    assert amp_dtype(CPU, False, features, NO_ENV) is None
    assert amp_dtype(CPU, False, features, {"HPC_SEG_CPU_BF16": "on"}) is None


def test_the_environment_overrides_the_detection():
    assert amp_dtype(CPU, True, WITHOUT, {"HPC_SEG_CPU_BF16": "on"}) is torch.bfloat16
    assert amp_dtype(CPU, True, WITH_AMX, {"HPC_SEG_CPU_BF16": "off"}) is None
    assert cpu_bf16_override({"HPC_SEG_CPU_BF16": "auto"}) is None
    with pytest.raises(ConfigError, match="HPC_SEG_CPU_BF16='sometimes'"):
        cpu_bf16_override({"HPC_SEG_CPU_BF16": "sometimes"})


def test_autocast_runs_convolutions_in_bf16_only_where_chosen():
    conv = torch.nn.Conv2d(1, 4, 3)
    x = torch.rand(1, 1, 8, 8)
    with autocast(CPU, True, WITH_AMX):
        assert conv(x).dtype is torch.bfloat16
    with autocast(CPU, True, WITHOUT):
        assert conv(x).dtype is torch.float32
    with autocast(CPU, False, WITH_AMX):
        assert conv(x).dtype is torch.float32


def test_the_training_step_keeps_loss_and_optimiser_state_in_fp32(tmp_path):
    from hpc_seg.cardiac.train.config import PRESETS, TrainConfig
    from hpc_seg.cardiac.train.losses import LOSSES
    from hpc_seg.cardiac.train.loop import place_model, train_step
    from hpc_seg.cardiac.train.model_file import build_model

    cfg = TrainConfig(**{**PRESETS["debug"], "image_size": 32, "batch_size": 2})
    model = place_model(build_model(cfg, init=True), cfg, CPU)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = {"image": torch.randint(0, 255, (2, 1, 32, 32), dtype=torch.uint8),
             "mask": torch.randint(0, 3, (2, 32, 32), dtype=torch.uint8)}
    import os
    old = os.environ.get("HPC_SEG_CPU_BF16")
    os.environ["HPC_SEG_CPU_BF16"] = "on"
    try:
        loss, n = train_step(model, opt, batch, cfg, LOSSES["ce"], CPU, torch.Generator().manual_seed(0))
    finally:
        os.environ.pop("HPC_SEG_CPU_BF16") if old is None else os.environ.update(HPC_SEG_CPU_BF16=old)
    assert n == 2 and loss.dtype is torch.float32 and torch.isfinite(loss)
    assert all(p.dtype is torch.float32 for p in model.parameters())
    moments = [s["exp_avg"] for s in opt.state.values()]
    assert moments and all(m.dtype is torch.float32 for m in moments)


# --- threads ---------------------------------------------------------------------------------

def _cgroup_v2(tmp_path: Path, cpu_max: str | None) -> tuple[Path, Path]:
    root = tmp_path / "cg"
    (root / "job").mkdir(parents=True)
    if cpu_max is not None:
        (root / "job" / "cpu.max").write_text(cpu_max + "\n")
    (root / "cpu.max").write_text("max 100000\n")
    proc = tmp_path / "proc_cgroup"
    proc.write_text("0::/job\n")
    return root, proc


def test_threads_follow_the_affinity_mask(tmp_path):
    root, proc = _cgroup_v2(tmp_path, None)
    a = allocated_cpus({}, affinity={0, 1, 2}, cgroup_root=root, proc_cgroup=proc)
    assert a.cpus == 3 and a.source.startswith("affinity mask")


def test_slurm_cpus_per_task_caps_a_wider_mask(tmp_path):
    root, proc = _cgroup_v2(tmp_path, None)
    a = allocated_cpus({"SLURM_CPUS_PER_TASK": "4"}, affinity=set(range(64)), cgroup_root=root,
                       proc_cgroup=proc)
    assert a.cpus == 4 and a.source.startswith("SLURM_CPUS_PER_TASK")


def test_a_cgroup_quota_caps_the_threads(tmp_path):
    root, proc = _cgroup_v2(tmp_path, "250000 100000")  # 2.5 CPUs -> 3 threads
    a = allocated_cpus({}, affinity=set(range(16)), cgroup_root=root, proc_cgroup=proc)
    assert a.cpus == 3 and a.source.startswith("cgroup CPU quota")


def test_a_cgroup_v1_quota_counts_too(tmp_path):
    root = tmp_path / "cg"
    (root / "cpu,cpuacct" / "job").mkdir(parents=True)
    (root / "cpu,cpuacct" / "job" / "cpu.cfs_quota_us").write_text("200000\n")
    (root / "cpu,cpuacct" / "job" / "cpu.cfs_period_us").write_text("100000\n")
    proc = tmp_path / "proc_cgroup"
    proc.write_text("4:cpu,cpuacct:/job\n3:memory:/job\n")
    assert allocated_cpus({}, affinity=set(range(8)), cgroup_root=root, proc_cgroup=proc).cpus == 2


def test_ray_tasks_omp_setting_and_garbage_values(tmp_path):
    root, proc = _cgroup_v2(tmp_path, None)
    env = {"OMP_NUM_THREADS": "1", "SLURM_CPUS_PER_TASK": "not a number"}
    assert allocated_cpus(env, affinity={0, 1}, cgroup_root=root, proc_cgroup=proc).cpus == 1


def test_local_ranks_share_the_mask_but_slurm_tasks_do_not(tmp_path):
    root, proc = _cgroup_v2(tmp_path, None)
    assert allocated_cpus({}, affinity=set(range(8)), cgroup_root=root, proc_cgroup=proc,
                          local_ranks=2).cpus == 4
    assert allocated_cpus({"SLURM_CPUS_PER_TASK": "8"}, affinity=set(range(8)),
                          cgroup_root=root, proc_cgroup=proc, local_ranks=2).cpus == 8


def test_an_explicit_setting_wins(tmp_path):
    root, proc = _cgroup_v2(tmp_path, "100000 100000")
    alloc = allocated_cpus({"SLURM_CPUS_PER_TASK": "1"}, affinity={0}, cgroup_root=root,
                           proc_cgroup=proc)
    assert resolve_threads(6, alloc).cpus == 6
    assert resolve_threads(0, alloc).cpus == 1


def test_configure_torch_threads_sets_torch(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert configure_torch_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
        assert configure_torch_threads(0) == 1
    finally:
        torch.set_num_threads(before)
