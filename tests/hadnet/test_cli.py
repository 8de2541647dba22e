"""Command-line wiring of the HAD-Net commands (config resolution, errors, bench without GPU)."""

from __future__ import annotations

import pytest
import torch

from hpc_seg.cli import build_parser, main
from hpc_seg.commands.hadnet._args import resolve


def _args(argv):
    return build_parser().parse_args(argv)


def test_job_tables_then_options_build_the_config(tmp_path):
    job = tmp_path / "j.toml"
    job.write_text('[hadnet]\nk = 8\nepochs = 5\npre_dir = "/data/pre"\n'
                   '[launch]\nexecutor = "local"\ntasks_per_node = 2\n')
    cfg, launch = resolve(_args(["hadnet", "pretrain", "o", "--role", "student",
                                 "--job", str(job), "--epochs", "7", "--no-augment",
                                 "--weight-decay-per-epoch", "1"]))
    assert (cfg.k, cfg.epochs, cfg.augment, str(cfg.pre_dir)) == (8, 7, False, "/data/pre")
    assert cfg.weight_decay_per_epoch == 1.0
    assert cfg.class_weights == [1.0, 59.45, 23.32, 71.85] and cfg.lambda_adv == 0.2
    assert launch.world_size == 2


def test_unknown_key_in_the_job_file_names_file_key_and_valid_keys(tmp_path, capsys):
    job = tmp_path / "bad.toml"
    job.write_text("[hadnet]\nlamda_adv = 0.3\n")
    rc = main(["hadnet", "pretrain", str(tmp_path / "o"), "--role", "teacher", "--job", str(job)])
    err = capsys.readouterr().err
    assert rc == 2 and "bad.toml: [hadnet]" in err and "lamda_adv" in err and "lambda_adv" in err


def test_pretrain_without_a_cohort_says_how_to_give_one(tmp_path, capsys):
    rc = main(["hadnet", "pretrain", str(tmp_path / "o"), "--role", "teacher"])
    assert rc == 2 and "--pre-dir PRE" in capsys.readouterr().err


def test_evaluate_rejects_a_malformed_model_spec(tmp_path, capsys):
    rc = main(["hadnet", "evaluate", str(tmp_path), str(tmp_path / "o"), "--model", "teacher"])
    assert rc == 2 and "NAME=PATH" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_bench_cuda_without_a_gpu_prints_a_clear_message(capsys):
    rc = main(["bench", "hadnet", "--device", "cuda"])
    err = capsys.readouterr().err
    assert rc == 2 and "no CUDA GPU" in err and "--device cpu" in err


def test_bench_times_both_precisions_side_by_side(capsys):
    rc = main(["bench", "hadnet", "--size", "32", "32", "32", "--k", "4", "--steps", "1",
               "--warmup", "0", "--mode", "distill", "--precisions", "fp32", "bf16"])
    out = capsys.readouterr().out
    assert rc == 0 and "32x32x32, k=4" in out and "CPU: " in out
    rows = {line.split()[1]: line.split() for line in out.splitlines()
            if line.startswith("distill ")}
    assert set(rows) == {"fp32", "bf16"}
    for cols in rows.values():
        assert 0 < float(cols[2]) < 60 and abs(float(cols[3]) * float(cols[2]) - 1) < 0.02


@pytest.mark.parametrize("name", ["hadnet_synth40", "hadnet_debug", "hadnet_slurm"])
def test_shipped_job_files_validate(name):
    from pathlib import Path

    from hpc_seg.config import from_dict, load_toml
    from hpc_seg.launch.config import LaunchConfig
    from hpc_seg.hadnet.stages import HADNET_STAGES, EvaluateStageConfig
    from hpc_seg.hadnet.train.config import HadnetTrainConfig

    path = Path(__file__).resolve().parents[2] / "jobs" / f"{name}.toml"
    tables = load_toml(path)
    cfg = from_dict(HadnetTrainConfig, tables["hadnet"], f"{path}: [hadnet]")
    for stage in HADNET_STAGES:             # a stage's own table overrides [hadnet]
        if stage == "hadnet_evaluate":      # ... except evaluation's, which has its own keys
            from_dict(EvaluateStageConfig, tables.get(stage, {}), f"{path}: [{stage}]")
            continue
        from_dict(HadnetTrainConfig, {**tables["hadnet"], **tables.get(stage, {})}, f"{path}: [{stage}]")
    from_dict(LaunchConfig, tables["launch"], f"{path}: [launch]")
    assert cfg.lambda_adv == 0.2 and cfg.d_acc_threshold == 0.8
    assert [s for s in tables["job"]["stages"] if s.startswith("hadnet_") and s != "hadnet_preprocess"
            ] == [s for s in tables["job"]["stages"] if s in HADNET_STAGES]


def test_finetune_control_is_the_distillation_without_the_teacher(tmp_path, monkeypatch):
    """hadnet_finetune_ce runs the distillation code path with lambda = 0 (and the job's other
    settings untouched), into its own folder; the table lists it as student-ft."""
    import json
    from pathlib import Path

    from hpc_seg.hadnet import api as hadnet

    from hpc_seg.hadnet import stages as hadnet_stages
    from hpc_seg.stage import Context

    seen = {}

    def fake_distill(cfg, pre_dir, teacher, student, out_dir, variant, launch):
        seen.update(cfg=cfg, out=Path(out_dir), variant=variant, teacher=Path(teacher))
        Path(out_dir).mkdir(parents=True)
        (Path(out_dir) / "summary.json").write_text(json.dumps(
            {"teacher_sha256": "t", "student_sha256": "s"}))
        return Path(out_dir) / "best.pt"

    monkeypatch.setattr(hadnet, "distill", fake_distill)
    ctx = Context(tmp_path / "job.toml", tmp_path, {"hadnet": {"k": 4, "lr": 0.01, "pre_dir": "P"}},
                  {"hadnet_pretrain_teacher": {"model": "T.pt"},
                   "hadnet_pretrain_student": {"model": "S.pt"}})
    result = hadnet_stages.hadnet_finetune_ce(ctx)
    assert seen["cfg"].lambda_adv == 0.0 and seen["cfg"].k == 4 and seen["cfg"].lr == 0.01
    assert seen["out"] == tmp_path / "hadnet_finetune_ce" and seen["teacher"] == Path("T.pt")
    assert result["model"].endswith("hadnet_finetune_ce/best.pt")
    assert hadnet_stages.MODEL_STAGES["student-ft"] == "hadnet_finetune_ce"


def test_a_stage_table_overrides_hadnet_for_that_stage_only(tmp_path, monkeypatch):
    """[hadnet_pretrain_teacher] weight_decay_per_epoch = 1 reaches the teacher, not the student;
    a bad key there is named with its table."""
    from pathlib import Path

    from hpc_seg.errors import ConfigError
    from hpc_seg.hadnet import api as hadnet
    from hpc_seg.hadnet import stages as hadnet_stages
    from hpc_seg.stage import Context

    seen = {}

    def fake_pretrain(cfg, pre_dir, out_dir, role, launch):
        seen[role] = cfg
        return Path(out_dir) / "best.pt"

    monkeypatch.setattr(hadnet, "pretrain", fake_pretrain)
    tables = {"hadnet": {"k": 4, "weight_decay_per_epoch": 0.764, "pre_dir": "P"},
              "hadnet_pretrain_teacher": {"weight_decay_per_epoch": 1.0, "threads": 2}}
    ctx = Context(tmp_path / "job.toml", tmp_path, tables, {})
    hadnet_stages.hadnet_pretrain_teacher(ctx)
    hadnet_stages.hadnet_pretrain_student(ctx)
    assert seen["teacher"].weight_decay_per_epoch == 1.0 and seen["teacher"].threads == 2
    assert seen["student"].weight_decay_per_epoch == 0.764 and seen["student"].threads == 0
    assert seen["teacher"].k == seen["student"].k == 4

    tables["hadnet_pretrain_teacher"] = {"weight_decay_per_epch": 1.0}
    with pytest.raises(ConfigError, match=r"\[hadnet_pretrain_teacher\].*weight_decay_per_epch"):
        hadnet_stages.hadnet_pretrain_teacher(ctx)
