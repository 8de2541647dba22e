"""``hpc-seg hadnet preprocess SRC OUT``: BraTS-layout NIfTI -> padded, normalised case shards."""

from __future__ import annotations

import argparse

NAME = "preprocess"
HELP = "mask, crop, normalise and pad BraTS cases into Parquet shards (PRE/cases, preprocess.json)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="cohort: {HGG,LGG}/<subject>/ (training) or <subject>/ folders")
    parser.add_argument("out", help="output folder PRE (cases/, preprocess.json, skipped.csv)")
    parser.add_argument("--pad-size", type=int, nargs=3, metavar=("D", "H", "W"), default=None,
                        help="fixed padded size (e.g. a trained model's, for another cohort); "
                             "default: largest cropped training case rounded up to 16")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--float32", action="store_true",
                        help="store images as float32 (default float16: half the size)")
    parser.add_argument("--val-fraction", type=float, default=0.15,
                        help="validation share when SRC has no manifest.json (default 0.15)")
    parser.add_argument("--test-fraction", type=float, default=0.15,
                        help="test share when SRC has no manifest.json (default 0.15)")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the hash split rule")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from hpc_seg.hadnet.brats.shards import PreprocessConfig, case_index, preprocess_cohort

    cfg = PreprocessConfig(pad_size=args.pad_size, workers=args.workers,
                           image_dtype="float32" if args.float32 else "float16",
                           val_fraction=args.val_fraction, test_fraction=args.test_fraction,
                           split_seed=args.split_seed)
    out = preprocess_cohort(Path(args.src), Path(args.out), cfg)
    meta = json.loads((out / "preprocess.json").read_text())
    counts = {s: len(case_index(out, s)) for s in ("train", "val", "test")}
    skipped = (out / "skipped.csv").read_text().strip().splitlines()[1:]
    print(f"pad size: {' x '.join(map(str, meta['pad_size']))}")
    print(f"cases: train {counts['train']}, val {counts['val']}, test {counts['test']}"
          + (f"; {len(skipped)} skipped (see {out / 'skipped.csv'})" if skipped else ""))
    print(f"output: {out}")
    return 1 if skipped else 0
