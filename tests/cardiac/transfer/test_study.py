"""The transfer study end to end on the local executor: data, array, tables, 'not run' rows."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hpc_seg.cardiac.transfer import study
from hpc_seg.cardiac.transfer.config import NO_IMAGENET, TransferConfig
from hpc_seg.launch.config import LaunchConfig
from hpc_seg.launch.lineage import Lineage
from tests.cardiac.transfer.helpers import TRAIN, random_base_model, tiny_study


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_study(tmp_path_factory.mktemp("tl"))


def test_data_split_observer2_and_issues(run_dir):
    data = study.load_data(run_dir)
    split = pd.read_csv(data["split"], dtype={"Id": str})
    manifest = json.loads((run_dir.parent / "cohort" / "manifest.json").read_text())
    assert sorted(split.Id[split.split == "test"]) == sorted(manifest["second_observer"])
    assert (split.split == "validate").sum() == 2 and (split.split == "train").sum() == 4
    assert data["contour_issues"] == 0 and "observer2_slices" in data
    subsets = pd.read_csv(data["image_subsets"])
    assert subsets.Id.nunique() == 4 and subsets.full.all()


@pytest.mark.slow
def test_local_array_and_evaluation_tables(run_dir, tmp_path):
    base = random_base_model(tmp_path / "base" / "model.pt")
    cfg = TransferConfig(subsets=["full", "v1"], base_epochs=1, max_epochs=2, train=dict(TRAIN),
                         base_model=base)
    launch = LaunchConfig(executor="local", time_min=10)
    result = study.train(cfg, launch, run_dir, timeout_s=1200)
    assert result["skipped"] == {"full-TL": NO_IMAGENET, "v1-TL": NO_IMAGENET}
    assert result["tasks"] == 4
    rows = Lineage(run_dir).rows()
    assert len(rows) == 4 and {r["state"] for r in rows} == {"COMPLETED"}
    again = study.train(cfg, launch, run_dir, timeout_s=120)    # a re-run submits nothing
    assert all(o["state"] == "COMPLETED" for o in again["outcomes"].values())
    assert len(Lineage(run_dir).rows()) == 4
    paths = study.evaluate(run_dir, device="cpu")
    dice = pd.read_csv(paths["dice_table"])
    assert list(dice.model) == ["base", "R", "TL", "TL2", "R-v1", "TL-v1", "TL2-v1", "observer 2",
                                "TL2 vs observer 2"]
    tl = dice[dice.init == "TL"]
    assert (tl.note == NO_IMAGENET).all() and tl.LV.isna().all()
    ran = dice[dice.note.isna()]
    assert ran[["LV", "MY"]].apply(lambda c: c.between(0, 1)).all().all()
    obs = dice[dice.model == "observer 2"].iloc[0]
    assert 0.8 < obs.LV < 1.0 and 0.5 < obs.MY < 1.0
    conf = pd.read_csv(paths["confusion"])
    assert list(conf.columns) == ["image", "set", "methodA", "methodB", "bg_bg", "bg_lv", "bg_my",
                                  "lv_bg", "lv_lv", "lv_my", "my_bg", "my_lv", "my_my"]
    assert (conf[conf.columns[4:]].sum(axis=1) == 32 * 32).all()
    vol = pd.read_csv(paths["volume_table"])
    assert {"observer2", "full-TL2", "full-TL"} <= set(vol.method)
    assert vol.loc[vol.method == "full-TL", "note"].iloc[0] == NO_IMAGENET
    paired = pd.read_csv(paths["paired_table"])
    assert list(paired.columns) == ["comparison", "subset", "region", "unit", "n", "mean_diff",
                                    "ci_low", "ci_high", "p_wilcoxon", "note"]
    ran = paired[paired.comparison == "TL2 - R"]
    assert sorted(zip(ran.subset, ran.region)) == [("full", "LV"), ("full", "MY"), ("v1", "LV"),
                                                   ("v1", "MY")]
    assert (ran.n == 3).all() and (ran.unit == "volunteer").all()     # the 3 test volunteers
    assert ((ran.ci_low <= ran.mean_diff) & (ran.mean_diff <= ran.ci_high)).all()
    tl = paired[paired.comparison == "TL - R"]
    assert (tl.n == 0).all() and tl.note.str.contains(NO_IMAGENET).all()
    logs = pd.read_csv(paths["training_logs"])
    assert list(logs.columns[:9]) == ["epoch", "train_loss", "valid_loss", "acc_seg", "diceComb",
                                      "diceLV", "diceMY", "time", "model"]
    assert set(logs.model) == {"full-R", "full-TL2", "v1-R", "v1-TL2"}
    assert (logs[logs.model == "v1-R"].epoch.max() + 1) == 4     # 2 + 2 epochs (capped)
    for key in ("data_requirement", "validation_curves"):
        assert json.dumps(paths[key]) and __import__("pathlib").Path(paths[key]).stat().st_size > 1000


def test_paired_comparisons_are_per_volunteer():
    from hpc_seg.cardiac.transfer.evaluate import paired_comparisons

    rows = []
    for vol, (r, tl2) in {"26": (0.5, 0.7), "27": (0.6, 0.9), "28": (0.4, 0.5)}.items():
        for image in range(4):          # 4 images per volunteer: the unit is still the volunteer
            rows += [{"method": "v1-R", "patient_id": vol, "dice_lv": r, "dice_my": r},
                     {"method": "v1-TL2", "patient_id": vol, "dice_lv": tl2, "dice_my": r}]
    out = paired_comparisons(pd.DataFrame(rows), {"v1-TL": NO_IMAGENET})
    lv = out[(out.comparison == "TL2 - R") & (out.region == "LV")].iloc[0]
    assert lv.n == 3 and lv.subset == "v1"
    assert lv.mean_diff == pytest.approx(0.2)
    assert lv.p_wilcoxon == pytest.approx(0.25)       # 3 positive differences: 2 / 2**3
    my = out[(out.comparison == "TL2 - R") & (out.region == "MY")].iloc[0]
    assert my.mean_diff == 0 and my.p_wilcoxon == 1.0
    tl = out[out.comparison == "TL - R"]
    assert len(tl) == 2 and (tl.n == 0).all() and (tl.note == f"v1-TL {NO_IMAGENET}").all()
    assert set(out.subset) == {"v1"}                  # subsets not in the study give no rows
