"""``hpc-seg label-maps MAPS OUT``: a slices dataset from label maps alone (no images)."""

from __future__ import annotations

import argparse

NAME = "label-maps"
HELP = ("build a slices dataset from NIfTI label maps alone, to train with random appearance "
        "(`hpc-seg train OUT RUN --appearance tissue`), or with the images of the same cases "
        "(--images, for --appearance hybrid)")


def _ids(text: str, option: str) -> list[int]:
    from hpc_seg.errors import ConfigError

    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected label ids like 1,4") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("maps", metavar="MAPS",
                        help="folder of label maps: {train,validate,test}/<case>.nii[.gz] "
                             "or flat (sorted cases split 60/20/20); "
                             "`hpc-seg synth cine --label-maps` writes OUT/label_maps")
    parser.add_argument("out", metavar="OUT", help="slices dataset folder to write")
    parser.add_argument("--image-size", type=int, default=256, help="square size (default 256)")
    parser.add_argument("--lv", default=None, metavar="IDS",
                        help="label ids that make up the LV cavity (default: structures.json)")
    parser.add_argument("--myocardium", default=None, metavar="IDS",
                        help="label ids of the LV myocardium (default: structures.json)")
    parser.add_argument("--images", default=None, metavar="SLICES",
                        help="an image slices dataset of the same cases (`hpc-seg labels`, same "
                             "size): add each slice's image, to train with --appearance hybrid; "
                             "the label maps' own dataset goes to OUT/label_maps_only")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.cardiac.slices.label_maps import build_label_map_slices

    target = Path(args.out) / "label_maps_only" if args.images else Path(args.out)
    out = build_label_map_slices(
        Path(args.maps), target, args.image_size,
        lv=_ids(args.lv, "--lv") if args.lv else None,
        myocardium=_ids(args.myocardium, "--myocardium") if args.myocardium else None)
    if args.images:
        from hpc_seg.cardiac.slices.hybrid import build_hybrid_slices

        out = build_hybrid_slices(out, Path(args.images), Path(args.out))
        print(f"slices from label maps and images: {out} (train it with --appearance hybrid)")
        return 0
    print(f"slices from label maps: {out} (train it with --appearance tissue or random)")
    return 0
