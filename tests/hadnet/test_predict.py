"""Inference in each case's original geometry, and the Dice table of several models."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from hpc_seg.hadnet.brats.shards import PreprocessConfig, case_index, preprocess_cohort
from hpc_seg.hadnet.synth.cohort import SynthBratsConfig, synth_brats
from hpc_seg.errors import InputError
from hpc_seg.hadnet.models.unet3d import UNet3D
from hpc_seg.hadnet.api import evaluate, predict
from hpc_seg.hadnet.evaluate import dice_rows
from hpc_seg.hadnet.brats.shards import read_cases
from hpc_seg.hadnet.models.io import save_model_file


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("brats")
    src, pre = root / "src", root / "pre"
    synth_brats(src, SynthBratsConfig(cases=5, seed=2, shape=(40, 40, 24), spacing=4.0, workers=1))
    preprocess_cohort(src, pre, PreprocessConfig(workers=1))
    return src, pre


def _model(path, pad_size, in_channels=3, seed=0):
    torch.manual_seed(seed)
    net = UNet3D(in_channels, k=4)
    channels = [0, 1, 2, 3] if in_channels == 4 else [0, 2, 3]
    return save_model_file(path, net, {"role": "student", "channels": channels,
                                       "pad_size": list(pad_size), "dropout": 0.2,
                                       "preprocess": {"pad_size": list(pad_size)}})


def _pad(pre):
    return json.loads((pre / "preprocess.json").read_text())["pad_size"]


def test_predictions_are_label_maps_on_the_original_grid_with_the_flair_affine(tmp_path, cohort):
    src, pre = cohort
    model = _model(tmp_path / "m.pt", _pad(pre))
    out = predict(model, pre, tmp_path / "pred", split=None, device="cpu")
    ids = case_index(pre)
    assert sorted(p.name for p in out.glob("*.nii.gz")) == sorted(f"{c}.nii.gz" for c in ids)
    for cid in ids:
        flair = nib.load(next(src.glob(f"*/{cid}/{cid}_flair.nii.gz")))
        pred = nib.load(out / f"{cid}.nii.gz")
        assert pred.shape == flair.shape
        np.testing.assert_allclose(pred.affine, flair.affine)
        data = np.asarray(pred.dataobj)
        assert data.dtype == np.uint8 and set(np.unique(data)) <= {0, 1, 2, 4}
    csv = pd.read_csv(out / "predictions.csv")
    assert sorted(csv.case_id) == sorted(ids)


def _brain(src, cid):
    """Voxels non-zero in all four sequences (the preprocessing's brain mask), original grid."""
    seqs = [np.asarray(nib.load(next(src.glob(f"*/{cid}/{cid}_{s}.nii.gz"))).dataobj)
            for s in ("flair", "t1", "t1ce", "t2")]
    return np.logical_and.reduce([v != 0 for v in seqs])


def test_uncertainty_maps_on_the_original_grid_zero_outside_the_brain(tmp_path, cohort):
    src, pre = cohort
    model = _model(tmp_path / "m.pt", _pad(pre))
    out = predict(model, pre, tmp_path / "pred", split=None, device="cpu",
                  uncertainty="mcdropout:3", seed=5)
    assert json.loads((out / "uncertainty.json").read_text()) == {"method": "mcdropout:3", "seed": 5}
    for cid in case_index(pre):
        flair = nib.load(next(src.glob(f"*/{cid}/{cid}_flair.nii.gz")))
        brain = _brain(src, cid)
        labels = np.asarray(nib.load(out / f"{cid}.nii.gz").dataobj)
        assert not labels[~brain].any()  # an untrained net labels the crop box's background too
        for suffix in ("_unc_whole", "_unc_core", "_unc_enhance"):
            img = nib.load(out / f"{cid}{suffix}.nii.gz")
            assert img.shape == flair.shape
            np.testing.assert_allclose(img.affine, flair.affine)
            u = np.asarray(img.dataobj)
            assert u.dtype == np.float32 and u.min() >= 0 and u.max() <= 100
            assert not u[~brain].any() and u[brain].any()
    # A re-run with the same method and seed keeps the maps; another method is refused.
    first = out / f"{case_index(pre)[0]}_unc_core.nii.gz"
    stamp = first.stat().st_mtime_ns
    predict(model, pre, out, split=None, device="cpu", uncertainty="mcdropout:3", seed=5)
    assert first.stat().st_mtime_ns == stamp
    with pytest.raises(InputError, match="uncertainty.json"):
        predict(model, pre, out, split=None, device="cpu", uncertainty="entropy")


def test_raw_folder_and_preprocessed_cohort_give_the_same_prediction(tmp_path, cohort):
    src, pre = cohort
    model = _model(tmp_path / "m.pt", _pad(pre), in_channels=4)
    a = predict(model, pre, tmp_path / "a", split=None, device="cpu")
    b = predict(model, src, tmp_path / "b", device="cpu")
    for f in a.glob("*.nii.gz"):
        assert np.array_equal(np.asarray(nib.load(f).dataobj), np.asarray(nib.load(b / f.name).dataobj))


def test_rerun_keeps_existing_predictions(tmp_path, cohort):
    _, pre = cohort
    model = _model(tmp_path / "m.pt", _pad(pre))
    out = predict(model, pre, tmp_path / "p", split=None, device="cpu")
    first = sorted(out.glob("*.nii.gz"))[0]
    stamp = first.stat().st_mtime_ns
    predict(model, pre, tmp_path / "p", split=None, device="cpu")
    assert first.stat().st_mtime_ns == stamp


def test_a_model_trained_at_another_pad_size_is_refused_on_a_preprocessed_cohort(tmp_path, cohort):
    _, pre = cohort
    model = _model(tmp_path / "m.pt", [16, 16, 16])
    with pytest.raises(InputError, match="pad size"):
        predict(model, pre, tmp_path / "p", split=None, device="cpu")


def test_dice_of_the_ground_truth_is_one_and_of_an_empty_map_is_zero(tmp_path, cohort):
    src, pre = cohort
    rows = [r for r in read_cases(pre, split=None) if r["label"] is not None]
    assert rows
    gt_dir, empty_dir = tmp_path / "gt", tmp_path / "empty"
    gt_dir.mkdir(), empty_dir.mkdir()
    for r in rows:
        seg = nib.load(next(src.glob(f"*/{r['case_id']}/{r['case_id']}_seg.nii.gz")))
        nib.save(seg, gt_dir / f"{r['case_id']}.nii.gz")
        empty = np.zeros(seg.shape, np.uint8)
        nib.save(nib.Nifti1Image(empty, seg.affine), empty_dir / f"{r['case_id']}.nii.gz")
    for d in dice_rows("gt", gt_dir, rows):
        assert (d["ET"], d["TC"], d["WT"]) == (1.0, 1.0, 1.0)
    for d, r in zip(dice_rows("empty", empty_dir, rows), rows):
        seg = np.asarray(nib.load(next(src.glob(f"*/{r['case_id']}/{r['case_id']}_seg.nii.gz"))).dataobj)
        assert d["WT"] == (1.0 if not (seg > 0).any() else 0.0)
        assert d["ET"] == (1.0 if not (seg == 4).any() else 0.0)


def test_evaluate_writes_the_score_tables_and_figures_for_all_models(tmp_path, cohort):
    _, pre = cohort
    pad = _pad(pre)
    models = {"teacher": _model(tmp_path / "t.pt", pad, 4, seed=1),
              "student": _model(tmp_path / "s.pt", pad, 3, seed=2)}
    ev = tmp_path / "eval"
    table = evaluate(models, pre, ev, split="train", device="cpu", uncertainty="entropy")
    summary = pd.read_csv(table)
    per_case = pd.read_csv(ev / "dice_per_case.csv")
    n = len(case_index(pre, "train"))
    assert list(dict.fromkeys(summary.model)) == ["teacher", "student"]
    assert set(summary.region) == {"ET", "TC", "WT"} and (summary.n == n).all()
    for _, s in summary.iterrows():
        vals = per_case[per_case.model == s.model][s.region]
        assert s["mean"] == pytest.approx(vals.mean())
        assert 0.0 <= s["mean"] <= 1.0
    scores = pd.read_csv(ev / "scores_per_case.csv")
    assert len(scores) == 2 * 3 * n
    assert {"dice", "hd95_mm", "sensitivity", "specificity", "qu", "qu_auc_dice", "qu_auc_ftp",
            "qu_auc_ftn"} <= set(scores.columns)
    assert (scores.hd95_mm >= 0).all() and scores.qu.between(0, 1).all()
    merged = scores.merge(per_case.melt(id_vars=["model", "case_id"], var_name="region",
                                        value_name="d"), on=["model", "case_id", "region"])
    np.testing.assert_allclose(merged.dice, merged.d)
    long = pd.read_csv(ev / "scores_summary.csv")
    assert set(long.metric) == {"dice", "hd95_mm", "sensitivity", "specificity", "qu",
                                "qu_auc_dice", "qu_auc_ftp", "qu_auc_ftn"}
    curves = pd.read_csv(ev / "qu_curves.csv")
    assert len(curves) == 2 * 3 * 41 and curves.tau.max() == 100 and curves.tau.min() == 0
    for png in ("dice.png", "hd95.png", "qu_curves.png"):
        assert (ev / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (ev / "scores_table.md").read_text()
    assert "| teacher |" in md and "### HD95 (mm)" in md and "### QU score" in md
    assert "### Dice" in (ev / "dice_table.md").read_text()


def test_stage_apis_chain_on_a_synthetic_cohort_and_record_the_inputs(tmp_path, cohort):
    from hpc_seg.hadnet.api import distill, pretrain
    from hpc_seg.hadnet.train.config import HadnetTrainConfig
    from hpc_seg.hadnet.models.io import file_sha256, load_model_file

    _, pre = cohort
    cfg = HadnetTrainConfig(k=4, epochs=1, distill_epochs=1, device="cpu", threads=1)
    teacher = pretrain(cfg, pre, tmp_path / "teacher", "teacher")
    student = pretrain(cfg, pre, tmp_path / "student", "student")
    had = distill(cfg, pre, teacher, student, tmp_path / "had", "had")
    _, meta = load_model_file(had)
    assert meta["pad_size"] == _pad(pre) and meta["preprocess"]["pad_size"] == _pad(pre)
    job = json.loads((tmp_path / "had" / "job.json").read_text())
    assert job["inputs"]["teacher_sha256"] == file_sha256(teacher)
    assert job["inputs"]["student_sha256"] == file_sha256(student) and job["config_hash"]
    table = evaluate({"teacher": teacher, "student": student, "HAD-Net": had}, pre,
                     tmp_path / "eval", device="cpu")
    assert list(dict.fromkeys(pd.read_csv(table).model)) == ["teacher", "student", "HAD-Net"]
    paired = pd.read_csv(tmp_path / "eval" / "paired_table.csv")
    n = len(case_index(pre, "test"))
    assert set(paired.comparison) == {"HAD-Net - student"}     # AD-Net and the control absent
    assert set(paired.region) == {"ET", "TC", "WT"} and set(paired.metric) == {"dice"}  # no QU
    assert (paired[paired.cases == "all"].n == n).all()
    assert "HAD-Net - student" in (tmp_path / "eval" / "paired_table.md").read_text()


def _fake_predict(src, labels):
    """A ``predict`` that writes each case's true labels (``labels="gt"``) or an empty map."""
    def fake(model, pre_dir, out_dir, **kw):
        out_dir.mkdir(parents=True, exist_ok=True)
        for seg_path in src.glob("*/*/*_seg.nii.gz"):
            seg = nib.load(seg_path)
            data = np.asarray(seg.dataobj) if labels == "gt" else np.zeros(seg.shape, np.uint8)
            nib.save(nib.Nifti1Image(data.astype(np.uint8), seg.affine),
                     out_dir / seg_path.name.replace("_seg", ""))
        return out_dir
    return fake


def test_teacher_check_uses_only_the_cases_with_et_and_stops_the_job_below_the_floor(
        tmp_path, cohort, monkeypatch):
    from hpc_seg.hadnet import evaluate as ev
    from hpc_seg.hadnet import stages as hadnet_stages
    from hpc_seg.stage import Context

    src, pre = cohort
    monkeypatch.setattr(ev, "predict", _fake_predict(src, "gt"))
    res = ev.region_check("T.pt", pre, tmp_path / "gt", split=None, region="ET")
    with_et = [c for c in res["per_case"] if c["has_region"]]
    assert res["n_with_region"] == len(with_et) > 0 and res["mean_dice"] == 1.0
    split_of = {r["case_id"]: r["split"] for r in read_cases(pre, split=None)}
    tables = {"hadnet": {"pre_dir": str(pre), "device": "cpu"},
              "hadnet_check_teacher": {"split": split_of[with_et[0]["case_id"]],
                                       "min_et_dice": 0.5}}
    ctx = Context(tmp_path / "job.toml", tmp_path, tables,
                  {"hadnet_pretrain_teacher": {"model": "T.pt"}})
    result = hadnet_stages.hadnet_check_teacher(ctx)
    assert result["et_dice"] == 1.0
    assert json.loads((tmp_path / "hadnet_check_teacher" / "teacher_check.json").read_text())[
        "region"] == "ET"
    # a teacher that predicts no ET scores 1 on cases without ET, 0 on the others: it is stopped
    monkeypatch.setattr(ev, "predict", _fake_predict(src, "empty"))
    empty = ev.region_check("T.pt", pre, tmp_path / "empty", split=None, region="ET")
    assert empty["mean_dice"] == 0.0
    ctx = Context(tmp_path / "job.toml", tmp_path / "b", tables,
                  {"hadnet_pretrain_teacher": {"model": "T.pt"}})
    with pytest.raises(InputError, match=r"ET Dice 0\.000 on the .* below min_et_dice 0\.5"):
        hadnet_stages.hadnet_check_teacher(ctx)
    # the same check by hand: exit 2 with the one line, and 0 once the floor is met
    from hpc_seg.cli import main as cli_main

    split = split_of[with_et[0]["case_id"]]
    argv = ["hadnet", "check-teacher", "T.pt", str(pre), str(tmp_path / "cli"), "--split", split]
    assert cli_main([*argv, "--min-et-dice", "0.5"]) == 2
    assert cli_main([*argv, "--min-et-dice", "0"]) == 0
    assert json.loads((tmp_path / "cli" / "teacher_check.json").read_text())["mean_dice"] == 0.0
