"""Transfer configuration: job files validate, task planning (epochs, inits, 'not run' reasons)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from hpc_seg.cardiac.synth.domain_7t import Synth7TConfig
from hpc_seg.cardiac.transfer.config import NO_BASE, NO_IMAGENET, TransferConfig
from hpc_seg.cardiac.transfer.data import DataConfig
from hpc_seg.cardiac.transfer.tasks import plan_tasks
from hpc_seg.config import from_dict, load_toml
from hpc_seg.errors import ConfigError
from hpc_seg.launch.config import LaunchConfig

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("job", ["demo.toml", "transfer_7t.toml", "transfer_7t_cpu.toml"])
def test_job_files_validate(job):
    tables = load_toml(REPO / "jobs" / job)
    assert {"synth_7t", "transfer_ingest", "transfer_subsets", "transfer_train",
            "transfer_evaluate"} <= set(tables["job"]["stages"])
    from_dict(Synth7TConfig, tables["synth_7t"], job)
    from_dict(DataConfig, tables["transfer_data"], job)
    from_dict(TransferConfig, tables["transfer"], job)
    from_dict(LaunchConfig, tables.get("launch", {}), job)


def _subsets() -> pd.DataFrame:
    n = 100
    df = pd.DataFrame({"file": [f"f{i}" for i in range(n)], "full": True})
    for name, size in {"v7": 50, "v3": 20, "v1": 8, "r7": 50, "r3": 20, "r1": 8, "esed": 16,
                       "r_esed": 16}.items():
        df[name] = [i < size for i in range(n)]
    return df


def test_plan_tasks_epochs_inits_and_not_run_reasons(tmp_path):
    views = {s: str(tmp_path / s) for s in ["full", "v1", "esed"]}
    cfg = TransferConfig(subsets=["full", "v1", "esed"], base_epochs=2, base_model=Path("base.pt"))
    specs, skipped = plan_tasks(_subsets(), views, cfg, tmp_path)
    assert skipped == {"full-TL": NO_IMAGENET, "v1-TL": NO_IMAGENET, "esed-TL": NO_IMAGENET}
    by = {s["name"]: s for s in specs}
    assert sorted(by) == ["esed-R", "esed-TL2", "full-R", "full-TL2", "v1-R", "v1-TL2"]
    assert by["full-R"]["train"]["epochs_frozen"] == 2 == by["full-R"]["train"]["epochs_unfrozen"]
    assert by["v1-R"]["train"]["epochs_frozen"] == 25          # round(2 * 100 / 8)
    assert by["esed-TL2"]["train"]["epochs_frozen"] == 12      # round(2 * 100 / 16)
    assert by["v1-R"]["train"]["freeze_encoder"] is False
    assert by["v1-TL2"]["train"]["freeze_encoder"] is False   # default head phase: whole network
    assert by["v1-TL2"]["train"]["init_checkpoint"] == "base.pt"
    t = by["full-R"]["train"]
    assert (t["batch_size"], t["image_size"], t["augment"], t["loss"], t["lr"]) == \
        (8, 256, "extreme", "ce", 1e-4)
    frozen = TransferConfig(subsets=["full"], tl2_head_phase="frozen", base_model=Path("b"),
                            imagenet_weights=Path("w.pth"), max_epochs=1)
    specs, skipped = plan_tasks(_subsets(), views, frozen, tmp_path)
    by = {s["name"]: s for s in specs}
    assert skipped == {} and by["full-TL2"]["train"]["freeze_encoder"] is True
    assert by["full-TL"]["train"]["freeze_encoder"] is True
    assert by["full-TL"]["train"]["encoder_weights"] == "w.pth"
    _, skipped = plan_tasks(_subsets(), views, TransferConfig(subsets=["full"]), tmp_path)
    assert skipped["full-TL2"] == NO_BASE


def test_bad_config_is_one_clear_error():
    with pytest.raises(ConfigError, match="subsets"):
        TransferConfig(subsets=["v9"])
    with pytest.raises(ConfigError, match="tl2_head_phase"):
        TransferConfig(tl2_head_phase="half")
