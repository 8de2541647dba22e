"""``hpc-seg synth brats OUT``: a deterministic synthetic cohort in the BraTS 2019 layout."""

from __future__ import annotations

import argparse

NAME = "brats"
HELP = "write synthetic glioma cases as BraTS-2019-layout NIfTI ({HGG,LGG}/<subject>/...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output folder (HGG/, LGG/, manifest.json)")
    parser.add_argument("--cases", type=int, default=20, help="number of cases (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="cohort seed (case i uses [seed, i])")
    parser.add_argument("--shape", type=int, nargs=3, metavar=("X", "Y", "Z"), default=None,
                        help="grid size (default 96 96 64; --brats-size gives 240 240 155)")
    parser.add_argument("--spacing", type=float, default=None,
                        help="voxel size in mm (default 2; 1 with --brats-size)")
    parser.add_argument("--brats-size", action="store_true",
                        help="the real BraTS grid: 240x240x155 at 1 mm (slow on a CPU)")
    parser.add_argument("--noise", type=float, default=0.03,
                        help="Rician noise sigma as a fraction of WM T1 intensity (default 0.03)")
    parser.add_argument("--lgg-fraction", type=float, default=0.25,
                        help="share of low-grade (little or no enhancement) cases (default 0.25)")
    parser.add_argument("--et-min-mm", type=float, default=0.0,
                        help="least enhancing-rim thickness in mm (default 0: the anatomy's own; "
                             "about 2 voxels keeps ET visible on a coarse CPU grid)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--preview", type=int, default=4,
                        help="cases drawn in OUT/preview.png (default 4; 0 = none)")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from hpc_seg.hadnet.synth.cohort import SynthBratsConfig, synth_brats

    shape = args.shape or ((240, 240, 155) if args.brats_size else (96, 96, 64))
    spacing = args.spacing or (1.0 if args.brats_size else 2.0)
    cfg = SynthBratsConfig(cases=args.cases, seed=args.seed, shape=tuple(shape), spacing=spacing,
                           noise=args.noise, lgg_fraction=args.lgg_fraction, et_min_mm=args.et_min_mm,
                           workers=args.workers,
                           preview=args.preview)
    manifest = synth_brats(Path(args.out), cfg)
    cases = json.loads(manifest.read_text())["cases"]
    splits = {s: sum(c["split"] == s for c in cases) for s in ("train", "val", "test")}
    grades = {g: sum(c["grade"] == g for c in cases) for g in ("HGG", "LGG")}
    print(f"{len(cases)} cases ({grades['HGG']} HGG, {grades['LGG']} LGG; "
          f"train {splits['train']}, val {splits['val']}, test {splits['test']}) "
          f"{'x'.join(map(str, shape))} at {spacing:g} mm")
    print(f"manifest: {manifest}")
    if args.preview:
        print(f"preview: {manifest.parent / 'preview.png'}")
    return 0
