"""bench generalise: the held-out cohort really comes from the held-out ranges; the scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hpc_seg.bench.volume_scores import volume_scores
from hpc_seg.bench.generalise import (RECIPES, GeneraliseConfig, _cohort_config, aim_met,
                                      train_config)
from hpc_seg.errors import ConfigError


def test_cohorts_come_from_their_own_part_of_the_ranges(tmp_path):
    cfg = GeneraliseConfig(workdir=tmp_path, image_size=64)
    train, held = _cohort_config(cfg, held_out=False), _cohort_config(cfg, held_out=True)
    assert train.variety and held.variety
    assert not set(train.vendors) & set(held.vendors)
    assert train.size_scale == cfg.train_sizes and held.size_scale == cfg.test_sizes
    # Both quirk-free with exact labels: the benchmark measures generalisation only; both write
    # their label maps (training from them; the cross-generator test renders them).
    for c in (train, held):
        assert c.no_random_quirks and c.label_error == {"none": 1.0} and c.label_maps
    baseline = _cohort_config(GeneraliseConfig(workdir=tmp_path, train_variety=False), False)
    assert not baseline.variety
    assert train_config(cfg).image_size == 64 and train_config(cfg).confidence_set == "all"
    with pytest.raises(ConfigError, match="own seed"):
        GeneraliseConfig(workdir=tmp_path, train_seed=3, test_seed=3)


def test_recipes_differ_only_in_what_the_network_sees(tmp_path):
    configs = {name: train_config(GeneraliseConfig(workdir=tmp_path, recipe=name,
                                                   train={"threads": 1}))
               for name in RECIPES}
    assert {n: (c.augment, c.appearance, c.intensity_remap, c.min_zoom, c.banding, c.coil_noise)
            for n, c in configs.items()} == {
        "today": ("normal", "image", 0, 1, 0, 0), "augment": ("nnunet", "image", 0, 1, 0, 0),
        "random": ("normal", "random", 0, 1, 0, 0), "both": ("nnunet", "random", 0, 1, 0, 0),
        "tissue": ("normal", "tissue", 0, 1, 0, 0), "hybrid": ("normal", "hybrid", 0, 1, 0, 0),
        "hybrid_gin": ("normal", "hybrid", 0.5, 1, 0, 0),
        "hybrid_zoom_out": ("normal", "hybrid", 0, 0.7, 0, 0),
        "hybrid_bands": ("normal", "hybrid", 0, 0.7, 0.3, 0),
        "hybrid_coils": ("normal", "hybrid", 0, 0.7, 0, 0.5)}
    budgets = {(c.epochs_frozen, c.epochs_unfrozen, c.max_train_images, c.batch_size, c.lr,
                c.threads) for c in configs.values()}
    assert budgets == {(8, 4, 2000, 16, 1e-3, 1)}           # one budget for all
    # Another loss for all recipes keeps its runs apart from the preset's.
    from hpc_seg.bench.generalise import recipe_dir
    assert recipe_dir(GeneraliseConfig(workdir=tmp_path, recipe="random")).name == "recipe_random"
    assert recipe_dir(GeneraliseConfig(workdir=tmp_path, recipe="random",
                                       train={"loss": "softdice"})).name == "recipe_random-softdice"
    # So does an override of a key that changes what the network sees, and the summary names it.
    from hpc_seg.bench.generalise import _data_keys
    assert recipe_dir(GeneraliseConfig(workdir=tmp_path, recipe="hybrid", train={
        "loss": "dicece", "min_zoom": 0.5})).name == "recipe_hybrid-dicece-min_zoom0.5"
    assert _data_keys({"min_zoom": 0.5, "intensity_remap": 0.0}) == ", min_zoom 0.5"
    assert _data_keys({"min_zoom": 1.0}) == _data_keys({}) == ""
    assert recipe_dir(GeneraliseConfig(workdir=tmp_path, recipe="hybrid", train={
        "min_zoom": 1})).name == "recipe_hybrid"          # the default is the recipe itself
    with pytest.raises(ConfigError, match="unknown recipe 'synthseg'"):
        GeneraliseConfig(workdir=tmp_path, recipe="synthseg")
    with pytest.raises(ConfigError, match="set by the recipe"):
        GeneraliseConfig(workdir=tmp_path, recipe="today", train={"augment": "none"})
    with pytest.raises(ConfigError, match="set by the recipe"):
        GeneraliseConfig(workdir=tmp_path, recipe="hybrid_gin", train={"intensity_remap": 1.0})


def test_the_command_line_gives_one_config_per_recipe(tmp_path, capsys):
    from hpc_seg.cli import build_parser
    from hpc_seg.commands.bench.generalise import recipe_configs

    parser = build_parser()
    args = parser.parse_args(["bench", "generalise", "--out", str(tmp_path), "--recipe",
                              "today,random", "--train", "loss=softdice", "--test-patients", "6"])
    configs = recipe_configs(args)
    assert [c.recipe for c in configs] == ["today", "random"]
    assert {(c.workdir, c.test_patients, c.train["loss"]) for c in configs} == {
        (tmp_path, 6, "softdice")}
    assert [c.recipe for c in recipe_configs(parser.parse_args(["bench", "generalise"]))] == [
        "today"]
    # --loss, issue 27's first spelling, is a shortcut into --train like the earlier ones
    args = parser.parse_args(["bench", "generalise", "--loss", "focal", "--threads", "1"])
    assert recipe_configs(args)[0].train == {"loss": "focal", "threads": 1}
    assert "--loss is now spelt --train loss=VALUE" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="recipe.*must be one of .*'synthseg'"):
        recipe_configs(parser.parse_args(["bench", "generalise", "--recipe", "today,synthseg"]))


def test_recipes_side_by_side_take_turns_with_the_data(tmp_path):
    import threading
    import time

    from hpc_seg.bench.generalise import _data_lock

    order = []

    def first():
        with _data_lock(tmp_path):
            order.append("first in")
            time.sleep(0.5)
            order.append("first out")

    t = threading.Thread(target=first)
    t.start()
    while not order:
        time.sleep(0.01)
    with _data_lock(tmp_path):
        order.append("second in")
    t.join()
    assert order == ["first in", "first out", "second in"]


def test_the_aim_needs_small_cross_errors_and_a_small_ratio():
    within = {"ef_err": 3.0, "edv_err_pct": 6.0, "esv_err_pct": 8.0}
    assert aim_met(within, {"ef_err": 4.4, "edv_err_pct": 9.0, "esv_err_pct": 11.9})
    assert not aim_met(within, {"ef_err": 4.6, "edv_err_pct": 9.0, "esv_err_pct": 11.9})  # 1.53x
    assert not aim_met(within, {"ef_err": 4.0, "edv_err_pct": 9.0, "esv_err_pct": 12.1})  # > 12 %
    big = {"ef_err": 6.0, "edv_err_pct": 6.0, "esv_err_pct": 8.0}
    assert not aim_met(big, big)                                   # ratio 1, but EF 6 > 5
    assert not aim_met(within, None)


def test_scores_are_mean_absolute_errors():
    df = pd.DataFrame({"true_edv_ml": [100.0, 200.0], "pred_edv_ml": [110.0, 180.0],
                       "true_esv_ml": [50.0, 100.0], "pred_esv_ml": [45.0, 100.0],
                       "abs_diff": [0.02, 0.04], "pred_ef": [0.5, 0.5]})
    s = volume_scores(df)
    assert s["ef_err"] == pytest.approx(3.0)
    assert s["edv_err_pct"] == pytest.approx(10.0) and s["edv_bias_pct"] == pytest.approx(0.0)
    assert s["esv_err_pct"] == pytest.approx(5.0) and s["n"] == 2 and s["missing"] == 0
    # A patient without a prediction is a full error, not left out of the mean.
    missing = volume_scores(df.assign(pred_edv_ml=[110.0, None], pred_ef=[0.5, None]))
    assert missing["edv_err_pct"] == pytest.approx(55.0) and missing["missing"] == 1


def test_tiny_runs_score_both_test_cohorts_save_results_and_summarise(tmp_path):
    """End to end on a few tiny patients, for an image recipe and a label-map recipe (hybrid: the
    label maps joined with the images): what is scored and saved, the summary of both, and that a
    re-run reuses the data."""
    import json

    from hpc_seg.bench.generalise import (format_summary, run_bench, save_results, size_breakdown,
                                          summary_table, target_met)

    tiny = dict(workdir=tmp_path, train_patients=5, test_patients=5, n_frames=4, max_matrix=64,
                slices=(6, 6), image_size=32, workers=1,
                train={"epochs_frozen": 1, "epochs_unfrozen": 0, "batch_size": 4,
                       "max_train_images": 8, "max_val_images": 8, "threads": 1,
                       "decoder_channels": [16, 8, 8, 8, 8]})
    results = {}
    for recipe in ("today", "hybrid"):
        cfg = GeneraliseConfig(recipe=recipe, **tiny)
        r = results[recipe] = run_bench(cfg)
        scored = {(c, m) for c in ("held_out", "cross", "own_test") for m in ("model", "label masks")}
        # Patients whose border is not in the image add a score without them (cohort_difficulty).
        assert scored <= set(r["scores"]) <= scored | {(c, "model, visible border")
                                                       for c in ("held_out", "cross")}
        # Every held-out patient is scored (all splits), in both test cohorts, with the same
        # label-mask floor (the same anatomy), and only with the held-out vendors and sizes.
        rows = r["per_patient_held_out"]
        assert rows[["ed_cnr", "es_cnr"]].notna().all().all()
        assert r["scores"][("held_out", "label masks")] == r["scores"][("cross", "label masks")]
        assert r["scores"][("cross", "model")]["n"] == 5
        assert set(rows.vendor) <= {"Philips Medical Systems", "Canon Medical Systems"}
        assert rows.size_scale.between(*cfg.test_sizes).all()
        assert r["train_images"] == 8 and r["times"]["load_max"] >= r["times"]["load_mean"] > 0
        path = save_results(cfg, r)
        doc = json.loads(path.read_text())
        assert path.parent == tmp_path / "train_variety" / f"recipe_{recipe}"
        assert doc["config"]["image_size"] == 32 and doc["recipe"] == recipe
        assert {(s["cohort"], s["method"]) for s in doc["scores"]} == set(r["scores"])
        assert doc["target_met"] == target_met(r["scores"][("held_out", "model")])
        # What the training ran in goes with its wall time (bf16 where this CPU has it).
        assert doc["precision"] in ("bf16", "fp32")
        assert set(doc["cross_ratios"]) == {"ef_err", "edv_err_pct", "esv_err_pct"}
        assert len(pd.read_csv(path.parent / "held_out_per_patient.csv")) == len(rows)
        # The cross rows name each patient's k-space protocol; the summary breaks errors down by it.
        assert rows[rows.cohort == "cross"].kspace_sequence.isin(["bssfp", "gre"]).all()
        assert rows[rows.cohort == "held_out"].kspace_sequence.isna().all()
        assert "cross-generator errors by k-space protocol" in size_breakdown(rows)
    assert results["hybrid"]["train"].appearance == "hybrid"
    assert (tmp_path / "train_variety" / "label_slices_32" / "_meta.json").is_file()
    hybrid = pd.read_parquet(tmp_path / "train_variety" / "hybrid_slices_32")
    assert {"image", "structures", "mask"} <= set(hybrid.columns)
    # The cross-generator images differ from the generator's; the masks are the same.
    own = pd.read_parquet(tmp_path / "held_out" / "slices_32").sort_values("file")
    cross = pd.read_parquet(tmp_path / "held_out_kspace" / "slices_32").sort_values("file")
    assert own.file.tolist() == cross.file.tolist() and (own["mask"].values == cross["mask"].values).all()
    assert (own.image.values != cross.image.values).mean() > 0.9
    table = summary_table(tmp_path)
    assert table.recipe.tolist() == ["hybrid", "today"]
    assert (tmp_path / "recipes.csv").is_file() and "| variety | hybrid (normal, hybrid, ce) |" in \
        (tmp_path / "recipes.md").read_text()
    assert format_summary(table).count("\n") == 3
    assert "Patients whose LV border is not in the image" in (tmp_path / "recipes.md").read_text()
    assert "One pixel of LV border" in (tmp_path / "recipes.md").read_text()
    assert f" min {doc['precision']} (load " in (tmp_path / "recipes.md").read_text()
    # A re-run generates nothing again: the cohorts' files keep their modification times.
    stamps = [(tmp_path / p).stat().st_mtime_ns for p in
              ("held_out/cohort/manifest.json", "held_out_kspace/volumes/part-00000.parquet")]
    # With the ablation: the model is scored on the cross cohort once per variant (rendered with
    # one part of the image formation off, and with all off), each in its own folder.
    from hpc_seg.bench.cross_ablation import variants

    again = run_bench(GeneraliseConfig(recipe="today", cross_ablation=True, **tiny))
    assert [(tmp_path / p).stat().st_mtime_ns for p in
            ("held_out/cohort/manifest.json", "held_out_kspace/volumes/part-00000.parquet")] == stamps
    ablation = again["cross_ablation"]
    assert list(dict.fromkeys(ablation.variant)) == ["within", "cross", *variants()]
    assert (ablation[ablation.scan == "all"].n == 5).all()
    assert (tmp_path / "train_variety" / "recipe_today" / "cross_ablation.csv").is_file()
    flat = pd.read_parquet(tmp_path / "held_out_kspace_contrast_only" / "slices_32").sort_values(
        "file")
    assert flat.file.tolist() == cross.file.tolist()
    assert (flat["mask"].values == cross["mask"].values).all()
    assert (flat.image.values != cross.image.values).mean() > 0.9


def test_a_resumed_training_reports_the_time_of_every_epoch(tmp_path):
    """The train wall of a recipe resumed after an interruption counts the epochs run before."""
    from hpc_seg.bench.generalise import _trained_seconds

    (tmp_path / "history.csv").write_text("epoch,seconds\n1,600.5\n2,480.0\n3,30.0\n")
    assert _trained_seconds(tmp_path) == 1110.5
    assert _trained_seconds(tmp_path / "missing") == 0.0


def test_the_precision_of_a_training_comes_from_its_history():
    """bf16 and fp32 train at different speeds: the summary says which one every epoch ran in, both
    when a run was resumed on another CPU, and nothing for a history from before the column."""
    from hpc_seg.bench.generalise import _trained_precision

    history = pd.DataFrame({"epoch": [1, 2], "seconds": [6.0, 5.0]})
    assert _trained_precision(history.assign(precision=["bf16", "bf16"])) == "bf16"
    assert _trained_precision(history.assign(precision=["fp32", "bf16"])) == "bf16+fp32"
    assert _trained_precision(history) is None
    assert _trained_precision(history.assign(precision=[None, None])) is None


def test_the_protocol_table_names_what_each_cross_patient_was_rendered_with():
    """The per-patient k-space columns come from the same draw as the patient's images: rendering
    with the table's protocol gives the renderer's own images, and each column is that draw's."""
    import numpy as np

    from hpc_seg.bench.cross_generator import STREAM, patient_protocol, protocol_table
    from hpc_seg.cardiac.synth.kspace_render import render_stack
    from tests.cardiac.synth.test_kspace_render import NAMES, _phantom

    labels = _phantom()
    table = protocol_table(["3", "12"], seed=1000).set_index("patient_id")
    for pid in (3, 12):
        protocol, rng = patient_protocol(1000, pid)
        own = render_stack(labels, NAMES, np.random.default_rng([1000, pid, STREAM]))
        assert np.array_equal(render_stack(labels, NAMES, rng, protocol), own)
        row = table.loc[str(pid)]
        assert row.kspace_sequence == protocol.sequence
        assert row.kspace_snr == round(protocol.snr, 1)
        assert row.kspace_band_depth == round(protocol.band[3], 2)
    assert protocol_table(["3"], seed=1001).kspace_snr[0] != table.loc["3"].kspace_snr
