"""``hpc-seg hadnet preprocess SRC OUT``: BraTS-layout NIfTI -> padded, normalised case shards."""

from __future__ import annotations

import argparse

from hpc_seg.hadnet.brats.config import PreprocessConfig
from hpc_seg.config_flags import add_config_options
from hpc_seg.options import add_job_option, add_renamed

NAME = "preprocess"
HELP = "mask, crop, normalise and pad BraTS cases into Parquet shards (PRE/cases, preprocess.json)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="SRC",
                        help="cohort: {HGG,LGG}/<subject>/ (training) or <subject>/ folders")
    parser.add_argument("out", metavar="OUT",
                        help="output folder PRE (cases/, preprocess.json, skipped.csv)")
    add_job_option(parser, "[hadnet_preprocess]")
    add_config_options(parser, PreprocessConfig, table="hadnet_preprocess")
    add_renamed(parser, "--float32", "--image-dtype float32", "hadnet_preprocess:image_dtype",
                nargs=0, const="float32")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from hpc_seg.hadnet.brats.shards import case_index, preprocess_cohort
    from hpc_seg.config_flags import config_from_options
    from hpc_seg.options import job_table, job_tables

    # a job's [hadnet_preprocess] table may name the source cohort, which is SRC here
    tables = job_tables(args)
    table = job_table(tables, "hadnet_preprocess", str(args.job))
    table.pop("src", None)
    cfg = config_from_options(PreprocessConfig, args, table="hadnet_preprocess",
                              tables={"hadnet_preprocess": table})
    out = preprocess_cohort(Path(args.src), Path(args.out), cfg)
    meta = json.loads((out / "preprocess.json").read_text())
    counts = {s: len(case_index(out, s)) for s in ("train", "val", "test")}
    skipped = (out / "skipped.csv").read_text().strip().splitlines()[1:]
    print(f"pad size: {' x '.join(map(str, meta['pad_size']))}")
    print(f"cases: train {counts['train']}, val {counts['val']}, test {counts['test']}"
          + (f"; {len(skipped)} skipped (see {out / 'skipped.csv'})" if skipped else ""))
    print(f"output: {out}")
    return 1 if skipped else 0
