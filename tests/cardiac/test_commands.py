"""The labels / train / evaluate / bench train commands end to end through the CLI."""

from __future__ import annotations

import pandas as pd
import pytest

from hpc_seg.cli import main
from hpc_seg.config import from_dict
from hpc_seg.cardiac.train.config import PRESETS, TrainConfig
from tests.cardiac.cohort import write_volumes


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid_configs(name):
    assert isinstance(from_dict(TrainConfig, PRESETS[name], name), TrainConfig)


def test_labels_train_evaluate_commands(tmp_path, capsys):
    volumes, truth = write_volumes(tmp_path, n_patients=5, frames=4, slices=2, rows=30, cols=36)
    assert main(["labels", str(volumes), str(tmp_path / "lab"), "--truth", str(truth),
                 "--image-size", "64"]) == 0
    assert "p05" in capsys.readouterr().out
    slices = tmp_path / "lab" / "slices_64"
    toml = tmp_path / "job.toml"
    toml.write_text('[train]\nconfidence_set = "all"\nmax_train_images = 16\n')
    assert main(["train", str(slices), str(tmp_path / "run"), "--preset", "debug", "--job", str(toml),
                 "--epochs-unfrozen", "0", "--decoder-channels", "[16,8,8,8,8]"]) == 0
    out = capsys.readouterr().out
    assert "dice_lv" in out and (tmp_path / "run" / "model.pt").is_file()
    hist = pd.read_csv(tmp_path / "run" / "history.csv")
    assert len(hist) == 1
    assert main(["evaluate", str(slices), str(tmp_path / "lab"), str(tmp_path / "eval"),
                 "--model", f"dbg={tmp_path / 'run' / 'model.pt'}"]) == 0
    out = capsys.readouterr().out
    assert "label source (shipped)" in out and "dbg" in out
    with pytest.raises(SystemExit) as exc:      # a flag's choices are checked by argparse
        main(["train", str(slices), str(tmp_path / "bad"), "--loss", "hinge"])
    assert exc.value.code == 2 and "--loss: invalid choice: 'hinge'" in capsys.readouterr().err
    toml.write_text('[train]\nloss = "hinge"\n')       # ... and a job file's by the config
    assert main(["train", str(slices), str(tmp_path / "bad"), "--job", str(toml)]) == 2
    assert "job.toml: [train] + command line.loss: must be one of" in capsys.readouterr().err
    assert main(["evaluate", str(slices), str(tmp_path / "lab"), str(tmp_path / "e2"), "--model", "x"]) == 2


def test_bench_train_times_every_mode_and_both_paths(capsys, tmp_path):
    import json

    assert main(["bench", "train", "--images", "48", "--image-size", "32", "--preset", "debug",
                 "--batch-size", "8", "--steps", "1", "--rounds", "2", "--warmup", "1",
                 "--num-workers", "0", "--threads", "1", "--json", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "CPU: " in out and "training here uses: " in out
    assert "in-memory tensor" in out and "streaming shards" in out and "overhead" in out
    figures = json.loads((tmp_path / "b.json").read_text())
    assert set(figures["modes"]) == {"fp32", "bf16", "fp32+cl", "bf16+cl"}
    assert figures["modes"]["fp32"]["vs_fp32"] == 1.0
    for mode, row in figures["modes"].items():
        assert len(row["rounds"]) == 2 and row["images_per_s"] > 0
        assert f"{mode} " in out
    assert figures["training_uses"].split("+")[0] == ("bf16" if figures["cpu_native_bf16"] else "fp32")


def test_label_maps_then_train_with_random_appearance(tmp_path, capsys):
    from tests.cardiac.label_map_fixtures import write_label_maps

    maps = write_label_maps(tmp_path / "maps", 5, split_folders=False, structures_json=False)
    assert main(["label-maps", str(maps), str(tmp_path / "s"), "--image-size", "64"]) == 2
    assert "which label ids are lv and myocardium" in capsys.readouterr().err
    assert main(["label-maps", str(maps), str(tmp_path / "s"), "--image-size", "64",
                 "--lv", "1,4", "--myocardium", "2"]) == 0
    assert "--appearance tissue or random" in capsys.readouterr().out
    assert main(["train", str(tmp_path / "s"), str(tmp_path / "run"), "--preset", "debug",
                 "--appearance", "random", "--augment", "nnunet", "--max-train-images", "16",
                 "--epochs-unfrozen", "0", "--decoder-channels", "[16,8,8,8,8]"]) == 0
    assert (tmp_path / "run" / "model.pt").is_file()


def test_label_maps_with_images_then_train_hybrid(tmp_path, capsys):
    from tests.cardiac.label_map_fixtures import image_slices_of, write_label_maps

    maps = write_label_maps(tmp_path / "maps", 5)
    assert main(["label-maps", str(maps), str(tmp_path / "only"), "--image-size", "64"]) == 0
    images = image_slices_of(tmp_path / "only", tmp_path / "images")
    assert main(["label-maps", str(maps), str(tmp_path / "h"), "--image-size", "64",
                 "--images", str(images)]) == 0
    assert "--appearance hybrid" in capsys.readouterr().out
    assert (tmp_path / "h" / "label_maps_only" / "_meta.json").is_file()
    assert main(["train", str(tmp_path / "h"), str(tmp_path / "run"), "--preset", "debug",
                 "--appearance", "hybrid", "--max-train-images", "16", "--epochs-unfrozen", "0",
                 "--decoder-channels", "[16,8,8,8,8]"]) == 0
    assert (tmp_path / "run" / "model.pt").is_file()
