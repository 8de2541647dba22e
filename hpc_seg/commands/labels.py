"""``hpc-seg labels VOLUMES OUT``: label masks, LV volumes, confidence sets, and the slices dataset."""

from __future__ import annotations

import argparse

from hpc_seg.options import BoolOption

NAME = "labels"
HELP = "per-frame LV volumes, ED/ES, confidence sets (5/10/15 percent) and the 2D slices dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("volumes", metavar="VOLUMES",
                        help="ingest output table directory (OUT/volumes)")
    parser.add_argument("out", metavar="OUT",
                        help="output folder (labels tables; slices_<size>/ datasets)")
    parser.add_argument("--truth", default=None,
                        help="Id,Systole,Diastole CSV (default: Systole/Diastole of the ingest "
                             "'subjects' table next to VOLUMES)")
    parser.add_argument("--source", default="shipped",
                        help="label source: 'shipped' (masks in the volumes table), 'folder:PATH' "
                             "(NIfTI/PNG masks, e.g. ukbb_cardiac output) or 'model:MODEL.pt'")
    parser.add_argument("--ed-rule", choices=["first", "max"], default="first",
                        help="ED frame for the confidence score: frame 0 (published) or max LV volume")
    parser.add_argument("--image-size", type=int, action="append", default=None,
                        help="build the slices dataset at this size (repeatable; default 256)")
    parser.add_argument("--slices", action=BoolOption, default=True,
                        help="also build the slices dataset (default on; --no-slices: only the "
                             "labels tables)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.cardiac.labels.build import build_labels
    from hpc_seg.cardiac.segment import label_source
    from hpc_seg.cardiac.slices.build import build_slices

    out = Path(args.out)
    summary = build_labels(Path(args.volumes), out, Path(args.truth) if args.truth else None,
                           source=label_source(args.source), ed_rule=args.ed_rule)
    print(f"labels: {summary.labelled_stacks} stacks labelled, {summary.skipped} skipped "
          f"(see {out / 'skipped.csv'})")
    print((out / "confidence_counts.csv").read_text().strip())
    if args.slices:
        for size in args.image_size or [256]:
            path = build_slices(Path(args.volumes), out, out / f"slices_{size}", size)
            print(f"slices dataset: {path}")
    return 0
