"""``hpc-seg synth brats OUT``: a deterministic synthetic cohort in the BraTS 2019 layout."""

from __future__ import annotations

import argparse

from hpc_seg.hadnet.synth.config import SynthBratsConfig
from hpc_seg.config_flags import add_config_options
from hpc_seg.options import BoolOption, add_job_option

NAME = "brats"
HELP = "write synthetic glioma cases as BraTS-2019-layout NIfTI ({HGG,LGG}/<subject>/...)"

#: ``--brats-size``: the real BraTS grid and voxel size
BRATS_GRID = {"shape": [240, 240, 155], "spacing": 1.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="output folder (HGG/, LGG/, manifest.json)")
    add_job_option(parser, "[synth_brats]")
    parser.add_argument("--brats-size", action=BoolOption, default=False,
                        help="the real BraTS grid: 240x240x155 at 1 mm (slow on a CPU); --shape "
                             "and --spacing still override it")
    add_config_options(parser.add_argument_group("generator options (SynthBratsConfig)"),
                       SynthBratsConfig, table="synth_brats")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from hpc_seg.hadnet.synth.cohort import synth_brats
    from hpc_seg.config_flags import config_from_options

    cfg = config_from_options(SynthBratsConfig, args, table="synth_brats",
                              preset=BRATS_GRID if args.brats_size else None)
    manifest = synth_brats(Path(args.out), cfg)
    cases = json.loads(manifest.read_text())["cases"]
    splits = {s: sum(c["split"] == s for c in cases) for s in ("train", "val", "test")}
    grades = {g: sum(c["grade"] == g for c in cases) for g in ("HGG", "LGG")}
    print(f"{len(cases)} cases ({grades['HGG']} HGG, {grades['LGG']} LGG; "
          f"train {splits['train']}, val {splits['val']}, test {splits['test']}) "
          f"{'x'.join(map(str, cfg.shape))} at {cfg.spacing:g} mm")
    print(f"manifest: {manifest}")
    if cfg.preview:
        print(f"preview: {manifest.parent / 'preview.png'}")
    return 0
