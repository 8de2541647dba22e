"""``hpc-seg transfer synth OUT``: a 7T-like cine cohort (DICOM + QMass .con contours)."""

from __future__ import annotations

import argparse

NAME = "synth"
HELP = "generate a 7T-like cine cohort: GRE contrast, B1 bands, voids, .con contours, 2 observers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output folder (new, or an unfinished one to resume)")
    parser.add_argument("--volunteers", type=int, default=None, help="default 22")
    parser.add_argument("--seed", type=int, default=None, help="default 0")
    parser.add_argument("--max-matrix", type=int, default=None,
                        help="cap on the larger image side, keeping the field of view (default 512)")
    parser.add_argument("--frames", type=int, nargs=2, default=None, metavar=("MIN", "MAX"),
                        help="cardiac phases per volunteer (default 18 25)")
    parser.add_argument("--slices", type=int, nargs=2, default=None, metavar=("MIN", "MAX"),
                        help="slices per volunteer (default 14 18)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default 1)")
    parser.add_argument("--config", default=None, metavar="TOML",
                        help="TOML with Synth7TConfig keys (top level or a [synth_7t] table)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.cardiac.synth.domain_7t import Synth7TConfig, generate_7t_cohort
    from hpc_seg.config import from_dict, load_toml

    data: dict = {}
    where = "transfer synth options"
    if args.config:
        raw = load_toml(args.config)
        data = dict(raw.get("synth_7t", raw))
        where = f"{args.config}: [synth_7t]"
    for key, value in (("volunteers", args.volunteers), ("seed", args.seed),
                       ("max_matrix", args.max_matrix), ("frames", args.frames),
                       ("slices", args.slices), ("workers", args.workers)):
        if value is not None:
            data[key] = value
    manifest = generate_7t_cohort(Path(args.out), from_dict(Synth7TConfig, data, where))
    print(f"7T cohort written; manifest: {manifest}")
    return 0
