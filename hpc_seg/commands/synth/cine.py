"""``hpc-seg synth cine OUT``: a synthetic Kaggle-like cardiac cine DICOM cohort."""

from __future__ import annotations

import argparse

NAME = "cine"
HELP = "generate a synthetic Kaggle-like cardiac cine DICOM cohort (with truth, masks, manifest)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output folder (must not exist, or be empty)")
    parser.add_argument("--patients", type=int, default=None,
                        help="number of patients (default: the TOML's `patients`, else 20)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed (default: the TOML's `seed`, else 0)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: all cores)")
    parser.add_argument("--config", default=None, metavar="TOML",
                        help="TOML file with CineSynthConfig keys (top level or a [synth_cine] "
                             "table); command-line options override it")
    parser.add_argument("--frames", type=int, default=None, help="cardiac phases (default 30)")
    parser.add_argument("--max-matrix", type=int, default=None,
                        help="cap on the larger image side, keeping the field of view "
                             "(default 512; tests use 64)")
    parser.add_argument("--variety", action="store_true", default=None,
                        help="draw anatomy, contrast, vendor and geometry per patient from the "
                             "config's ranges (README: synthetic cine variety)")
    parser.add_argument("--label-maps", action="store_true", default=None,
                        help="also write each patient's multi-structure label maps "
                             "(label_maps/<split>/<pid>.nii.gz; README: training from label maps)")
    parser.add_argument("--domain", choices=["kaggle", "7t"], default=None,
                        help="kaggle (default) or 7t: shifted contrast, B1 bands, no quirks")
    parser.add_argument("--quirk-rate", action="append", default=[], metavar="NAME=P",
                        help="per-patient probability of a quirk (repeatable)")
    parser.add_argument("--force-quirk", action="append", default=[], metavar="NAME=PID[,PID]",
                        help="give these patients this quirk (repeatable)")
    parser.add_argument("--no-random-quirks", action="store_true",
                        help="only --force-quirk quirks (no random or guaranteed ones)")
    parser.add_argument("--layout", choices=["project", "kaggle", "flat", "export"],
                        default="project",
                        help="project (default): {split}/<pid>/study/sax_*; kaggle: the Kaggle "
                             "unzip, {split}/{split}/<pid>/...; flat: <pid>/study/...; export: a "
                             "scanner export (DICOMDIR, PT*/ST*/SE*/IM*, a localiser series)")
    parser.add_argument("--transfer-syntax", default="explicit",
                        choices=["explicit", "implicit", "big-endian", "deflate", "rle",
                                 "jpeg-lossless", "jpeg-ls", "jpeg2000"],
                        help="encoding of the images (all lossless; default explicit VR little "
                             "endian; jpeg2000 needs both image sides >= 32)")
    parser.add_argument("--multiframe", action="store_true",
                        help="one enhanced MR multi-frame file per series")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing cohort in OUT")


def _pairs(values: list[str], option: str, convert) -> dict:
    from hpc_seg.errors import ConfigError

    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"{option} {item!r}: expected NAME=VALUE")
        try:
            out[name] = convert(value)
        except ValueError:
            raise ConfigError(f"{option} {item!r}: bad value {value!r}") from None
    return out


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.config import from_dict, load_toml
    from hpc_seg.cardiac.synth.export_variants import VariantOptions, generate_variant
    from hpc_seg.cardiac.synth.config import CineSynthConfig
    from hpc_seg.errors import ConfigError

    data: dict = {}
    where = "synth cine options"
    if args.config:
        raw = load_toml(args.config)
        data = dict(raw.get("synth_cine", raw))
        where = f"{args.config}: [synth_cine]" if "synth_cine" in raw else args.config
    # A job file's [synth_cine] table also holds the cohort size and seed (as `hpc-seg run` reads).
    patients = args.patients if args.patients is not None else data.pop("patients", 20)
    seed = args.seed if args.seed is not None else data.pop("seed", 0)
    data.pop("patients", None)
    data.pop("seed", None)
    if not isinstance(patients, int) or not isinstance(seed, int):
        raise ConfigError(f"{where}: patients and seed must be integers, "
                          f"but got patients={patients!r}, seed={seed!r}")
    for key, value in (("workers", args.workers), ("n_frames", args.frames),
                       ("max_matrix", args.max_matrix), ("domain", args.domain),
                       ("variety", args.variety), ("label_maps", args.label_maps)):
        if value is not None:
            data[key] = value
    if args.quirk_rate:
        data["quirk_rates"] = {**data.get("quirk_rates", CineSynthConfig().quirk_rates),
                               **_pairs(args.quirk_rate, "--quirk-rate", float)}
    if args.force_quirk:
        forced = _pairs(args.force_quirk, "--force-quirk",
                        lambda v: [int(p) for p in v.split(",") if p])
        data["force_quirks"] = {**data.get("force_quirks", {}), **forced}
    if args.no_random_quirks:
        data["no_random_quirks"] = True
    config = from_dict(CineSynthConfig, data, where)
    opts = VariantOptions(layout=args.layout, transfer_syntax=args.transfer_syntax,
                          multiframe=args.multiframe)
    out = generate_variant(Path(args.out), patients, seed, config, opts, overwrite=args.overwrite)
    print(f"wrote {patients} patients ({opts.layout} layout, {opts.transfer_syntax}"
          f"{', multi-frame' if opts.multiframe else ''}); manifest: {out / 'manifest.json'}")
    return 0
