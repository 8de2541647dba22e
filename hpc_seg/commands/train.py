"""``hpc-seg train SLICES OUT``: one 2D U-Net training run from a TOML table and/or flags."""

from __future__ import annotations

import argparse

NAME = "train"
HELP = "train one 2D U-Net on a slices dataset (frozen then unfrozen one-cycle; resumes)"

# Flags mirror TrainConfig fields (hpc_seg/cardiac/train/config.py); listed here so that --help stays
# instant (no torch import). A test checks that the two lists agree.
FIELDS = ["encoder", "encoder_weights", "decoder_channels", "loss", "image_size", "augment",
          "appearance", "confidence_set", "lr", "unfrozen_lr_factor", "batch_size", "weight_decay",
          "epochs_frozen", "epochs_unfrozen", "freeze_encoder", "num_classes", "seed",
          "init_checkpoint", "device",
          "amp", "channels_last", "num_workers", "max_val_images", "max_train_images",
          "shuffle_buffer", "keep_checkpoints", "threads"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("slices", help="slices dataset directory (from `hpc-seg labels`)")
    parser.add_argument("out", help="run folder: model.pt, history.csv, checkpoints/")
    parser.add_argument("--config", default=None, help="TOML file with a [train] table")
    parser.add_argument("--preset", choices=["published", "cpu", "debug"], default=None,
                        help="start from a named config (TOML and flags override it): published = "
                             "r34/p05/256/ce/normal; cpu = resnet18 at 128 px, capped epochs; "
                             "debug = seconds")
    parser.add_argument("--restart", action="store_true",
                        help="ignore existing checkpoints / model.pt in OUT and start again")
    group = parser.add_argument_group("training options (override the TOML; TOML syntax for "
                                      "lists/bools, e.g. --decoder-channels '[32,16,16,8,8]')")
    for name in FIELDS:
        group.add_argument(f"--{name.replace('_', '-')}", dest=f"cfg_{name}", default=None,
                           metavar="V")


def parse_value(text: str):
    """A flag value as TOML (numbers, booleans, lists) or, failing that, a plain string."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.config import from_dict, load_toml
    from hpc_seg.cardiac.train.config import PRESETS, TrainConfig
    from hpc_seg.cardiac.train.loop import train_segmenter

    table: dict = dict(PRESETS[args.preset]) if args.preset else {}
    where = "command line"
    if args.config:
        data = load_toml(args.config)
        table.update(data.get("train", data))
        where = f"{args.config}: [train] + command line"
    for name in FIELDS:
        value = getattr(args, f"cfg_{name}")
        if value is not None:
            table[name] = parse_value(value)
    cfg = from_dict(TrainConfig, table, where)
    result = train_segmenter(cfg, Path(args.slices), Path(args.out), resume=not args.restart,
                             progress=True)
    final = result.final
    print(f"model: {result.model_path}  history: {result.history_path}")
    if final:
        print(f"epoch {final['epoch']}: val_loss {final['val_loss']:.4f}  dice_lv {final['dice_lv']:.3f}  "
              f"dice_my {final['dice_my']:.3f}  dice_fg {final['dice_fg']:.3f}  "
              f"accuracy {final['accuracy']:.3f}")
    return 0
