"""Training loop: outputs, report contract, resume after a kill, skip when finished, learning."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from hpc_seg.config import from_dict, to_dict
from hpc_seg.errors import ConfigError, InputError
from hpc_seg.cardiac.train.config import TrainConfig
from hpc_seg.cardiac.segment import predict_slices
from hpc_seg.cardiac.train.loop import train_segmenter
from hpc_seg.cardiac.train.model_file import load_model
from tests.cardiac.cohort import tiny_config
from tests.cardiac.label_map_fixtures import hybrid_slices, label_map_slices  # noqa: F401

REPORT_KEYS = {"epoch", "val_loss", "dice_lv", "dice_my", "dice_fg", "accuracy", "checkpoint"}


class Killed(Exception):
    pass


def test_config_validation_and_round_trip():
    cfg = tiny_config()
    assert from_dict(TrainConfig, to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="image_size must be a multiple of 32"):
        TrainConfig(image_size=100)
    with pytest.raises(ConfigError, match="epochs_frozen \\+ epochs_unfrozen"):
        TrainConfig(epochs_frozen=0, epochs_unfrozen=0)
    with pytest.raises(ConfigError, match="must be one of"):
        from_dict(TrainConfig, {"loss": "hinge"}, "job.toml: [train]")
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(TrainConfig, {"epochs": 3}, "job.toml: [train]")


def test_train_command_has_a_flag_per_config_field():
    import dataclasses

    from hpc_seg.cli import build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for f in dataclasses.fields(TrainConfig):
        assert f"--{f.name.replace('_', '-')}" in help_text


def test_resume_after_kill_matches_uninterrupted_run(cohort, tmp_path):
    cfg = tiny_config(epochs_frozen=1, epochs_unfrozen=2, augment="normal", seed=7)
    reports = []
    full = train_segmenter(cfg, cohort["slices"], tmp_path / "full", report=reports.append)
    assert [r["epoch"] for r in reports] == [1, 2, 3]
    assert REPORT_KEYS <= set(reports[0]) and reports[0]["stage"] == "frozen"
    assert reports[2]["stage"] == "unfrozen"
    assert full.model_path.is_file() and full.epochs == 3

    def kill_after_first(metrics):
        assert (tmp_path / "killed" / "checkpoints").is_dir()
        if metrics["epoch"] == 1:
            raise Killed

    with pytest.raises(Killed):
        train_segmenter(cfg, cohort["slices"], tmp_path / "killed", report=kill_after_first)
    assert not (tmp_path / "killed" / "model.pt").exists()
    resumed = train_segmenter(cfg, cohort["slices"], tmp_path / "killed")
    assert resumed.resumed_from_epoch == 1 and resumed.epochs == 3
    a = torch.load(full.model_path, weights_only=True)["model"]
    b = torch.load(resumed.model_path, weights_only=True)["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    hist = pd.read_csv(resumed.history_path)
    assert hist.epoch.tolist() == [1, 2, 3]
    # finished: a re-run returns at once without reporting
    again = train_segmenter(cfg, cohort["slices"], tmp_path / "killed", report=lambda m: pytest.fail("ran"))
    assert again.epochs == 3


@pytest.mark.parametrize("amp, forced, expect", [(False, "on", "fp32"), (True, "off", "fp32"),
                                                  (True, "on", "bf16")])
def test_the_history_records_the_precision_each_epoch_ran_in(cohort, tmp_path, monkeypatch,
                                                             amp, forced, expect):
    """``amp = false`` or HPC_SEG_CPU_BF16=off trains in fp32, a forced bf16 in bf16 autocast: the
    history says so for every epoch (wall times differ about twofold between the two)."""
    monkeypatch.setenv("HPC_SEG_CPU_BF16", forced)
    result = train_segmenter(tiny_config(amp=amp, epochs_unfrozen=0, max_train_images=8,
                                         max_val_images=8, device="cpu"),
                             cohort["slices"], tmp_path / "run")
    assert pd.read_csv(result.history_path).precision.tolist() == [expect]


def test_checkpoints_of_another_config_are_refused(cohort, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(Killed):
        train_segmenter(tiny_config(seed=1), cohort["slices"], out, report=_raise)
    with pytest.raises(ConfigError, match="another config.*seed"):
        train_segmenter(tiny_config(seed=2), cohort["slices"], out)


def test_train_step_zooms_bands_receives_and_remaps_as_configured(monkeypatch):
    """``min_zoom`` reaches the augmentation, ``banding`` the bands after it, ``coil_noise`` the
    coil arrays after those, and ``intensity_remap`` the remap, last."""
    from hpc_seg.cardiac.train import loop
    from hpc_seg.cardiac.train.losses import LOSSES
    from hpc_seg.cardiac.train.model_file import build_model

    calls = []
    monkeypatch.setattr(loop, "augment_batch", lambda im, m, mode, g, min_zoom: (
        calls.append(("augment", mode, min_zoom)) or (im, m)))
    monkeypatch.setattr(loop, "random_banding", lambda im, g, p: (
        calls.append(("bands", p)) or im))
    monkeypatch.setattr(loop, "random_coil_array", lambda im, g, p: (
        calls.append(("coils", p)) or im))
    monkeypatch.setattr(loop, "random_conv_remap", lambda im, g, p: (
        calls.append(("remap", p)) or im))
    cfg = tiny_config(min_zoom=0.6, banding=0.2, coil_noise=0.4, intensity_remap=0.3)
    model = build_model(cfg)
    batch = {"image": torch.zeros(2, 1, cfg.image_size, cfg.image_size, dtype=torch.uint8),
             "mask": torch.zeros(2, cfg.image_size, cfg.image_size, dtype=torch.uint8)}
    loop.train_step(model, torch.optim.SGD(model.parameters(), lr=0.0), batch, cfg,
                    LOSSES[cfg.loss], torch.device("cpu"), torch.Generator())
    assert calls == [("augment", cfg.augment, 0.6), ("bands", 0.2), ("coils", 0.4),
                     ("remap", 0.3)]


def test_a_key_added_since_the_checkpoint_resumes_at_its_default_only(cohort, tmp_path):
    """A checkpoint written before TrainConfig had a key (here: intensity_remap) was written with
    that key's default: the run resumes under the default, and only under it."""
    from hpc_seg.runtime.checkpoint import list_checkpoints

    out = tmp_path / "run"
    cfg = tiny_config(epochs_frozen=1, epochs_unfrozen=1)
    with pytest.raises(Killed):
        train_segmenter(cfg, cohort["slices"], out, report=_raise)
    (path,) = list_checkpoints(out / "checkpoints")
    state = torch.load(path, weights_only=True)
    del state["config"]["intensity_remap"]
    torch.save(state, path)
    with pytest.raises(ConfigError, match="another config.*intensity_remap"):
        train_segmenter(tiny_config(epochs_frozen=1, epochs_unfrozen=1, intensity_remap=0.5),
                        cohort["slices"], out)
    assert train_segmenter(cfg, cohort["slices"], out).resumed_from_epoch == 1
    # Finished, and its model.pt written before the key: a re-run skips it.
    done = torch.load(out / "model.pt", weights_only=True)
    del done["config"]["intensity_remap"]
    torch.save(done, out / "model.pt")
    assert train_segmenter(cfg, cohort["slices"], out,
                           report=lambda m: pytest.fail("ran")).resumed_from_epoch == 0


def _raise(metrics):
    raise Killed


def test_learns_the_phantom_and_predicts(cohort, tmp_path):
    cfg = tiny_config(epochs_frozen=1, epochs_unfrozen=3, lr=3e-3, augment="none", batch_size=6)
    result = train_segmenter(cfg, cohort["slices"], tmp_path / "run")
    assert result.final["dice_lv"] > 0.5
    model, loaded = load_model(result.model_path)
    assert loaded == cfg and not model.training
    out = predict_slices(result.model_path, cohort["slices"], tmp_path / "pred.parquet")
    pred = pd.read_parquet(out)
    assert len(pred) == 18 and {"file", "lv_pixels", "my_pixels", "dice_lv"} <= set(pred.columns)
    assert pred.lv_pixels.sum() > 0


def test_wrong_size_or_empty_set_is_a_clear_error(cohort, tmp_path):
    with pytest.raises(ConfigError, match="image_size 128 does not match"):
        train_segmenter(tiny_config(image_size=128), cohort["slices"], tmp_path / "a")
    with pytest.raises(InputError, match="not a slices dataset"):
        train_segmenter(tiny_config(), tmp_path, tmp_path / "b")


@pytest.mark.parametrize("augment, appearance, remap", [("nnunet", "random", 0.0),
                                                         ("none", "tissue", 0.0),
                                                         ("none", "hybrid", 0.5)])
def test_label_maps_train_with_random_appearance_and_resume_exactly(request, tmp_path, augment,
                                                                    appearance, remap):
    """Random appearance (+ nnU-Net augmentation; per structure, per tissue, or mixed with the
    stored images and remapped by random convolutions): seeded per epoch, so a killed and resumed
    run ends with the uninterrupted run's weights; validation renders the same images every
    epoch."""
    label_map_slices = request.getfixturevalue("hybrid_slices" if appearance == "hybrid"
                                               else "label_map_slices")
    cfg = tiny_config(epochs_frozen=1, epochs_unfrozen=1, appearance=appearance, augment=augment,
                      intensity_remap=remap, seed=3)
    full = train_segmenter(cfg, label_map_slices, tmp_path / "full")
    with pytest.raises(Killed):
        train_segmenter(cfg, label_map_slices, tmp_path / "killed", report=_raise)
    resumed = train_segmenter(cfg, label_map_slices, tmp_path / "killed")
    assert resumed.resumed_from_epoch == 1
    a = torch.load(full.model_path, weights_only=True)["model"]
    b = torch.load(resumed.model_path, weights_only=True)["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert pd.read_csv(full.history_path).val_loss.notna().all()


def test_validation_of_label_maps_renders_one_fixed_set(label_map_slices):
    from torch.utils.data import DataLoader

    from hpc_seg.cardiac.slices.stream import SliceStream
    from hpc_seg.cardiac.train.losses import LOSSES
    from hpc_seg.cardiac.train.loop import evaluate_stream
    from hpc_seg.cardiac.train.model_file import build_model

    cfg = tiny_config(appearance="random")
    model = build_model(cfg, init=True)
    val = SliceStream(label_map_slices, "validate", batch_size=8, shuffle=False,
                      columns=("structures", "mask"))
    runs = [evaluate_stream(model, DataLoader(val, batch_size=None), LOSSES["ce"], cfg,
                            torch.device("cpu")) for _ in range(2)]
    assert runs[0] == runs[1]


def test_tissue_appearance_groups_the_datasets_named_structures_and_says_when_it_cannot(caplog):
    from hpc_seg.cardiac.train.loop import _groups

    named = {"structures": {"0": "background", "1": "lv_blood", "2": "lv_myocardium",
                            "3": "rv_blood", "4": "lv_papillary_trabeculae"}}
    assert _groups(tiny_config(appearance="random"), named) is None
    with caplog.at_level("INFO"):
        groups = _groups(tiny_config(appearance="tissue"), named)
    assert groups[3] == groups[1] and groups[4] == groups[2] and groups[1] != groups[2]
    assert "shared means for lv_blood, lv_myocardium, lv_papillary_trabeculae, rv_blood" \
        in caplog.text
    with caplog.at_level("WARNING"):
        own = _groups(tiny_config(appearance="tissue"),
                      {"structures": {"1": "cavity", "2": "wall"}})
    assert torch.equal(own, torch.arange(256))
    assert "no two structures" in caplog.text and "cavity, wall" in caplog.text


def test_hybrid_renders_about_half_of_each_batch_and_keeps_the_rest_as_stored(hybrid_slices):
    from hpc_seg.cardiac.train.loop import mix_renderings

    rows = pd.read_parquet(hybrid_slices).head(16)
    as_tensor = lambda col: torch.stack([torch.frombuffer(bytearray(b), dtype=torch.uint8)
                                         .view(64, 64) for b in rows[col]])
    images = as_tensor("image").float()[:, None] / 255
    masks, structures = as_tensor("mask").long(), as_tensor("structures")
    picked = []
    gen = torch.Generator().manual_seed(0)
    for _ in range(8):
        out, out_masks, pick = mix_renderings(images, masks, structures, gen)
        assert torch.equal(out[~pick], images[~pick]) and torch.equal(out_masks[~pick], masks[~pick])
        for i in torch.nonzero(pick).flatten():
            assert not torch.equal(out[i], images[i])       # a rendering, not the stored image
        picked.append(pick)
    share = float(torch.cat(picked).float().mean())
    assert 0.35 < share < 0.65, share                     # 128 draws of p = 0.5
    again = mix_renderings(images, masks, structures, torch.Generator().manual_seed(0))
    assert torch.equal(again[2], picked[0])                 # seeded: a resumed run mixes alike


def test_appearance_must_match_what_the_dataset_holds(cohort, label_map_slices, tmp_path):
    with pytest.raises(ConfigError, match="has none; build one with `hpc-seg label-maps`"):
        train_segmenter(tiny_config(appearance="random"), cohort["slices"], tmp_path / "a")
    with pytest.raises(ConfigError, match="label maps alone"):
        train_segmenter(tiny_config(), label_map_slices, tmp_path / "b")
    with pytest.raises(ConfigError, match="add the images with `hpc-seg label-maps --images`"):
        train_segmenter(tiny_config(appearance="hybrid"), label_map_slices, tmp_path / "c")
    with pytest.raises(ConfigError, match="has none; build one"):
        train_segmenter(tiny_config(appearance="hybrid"), cohort["slices"], tmp_path / "d")
