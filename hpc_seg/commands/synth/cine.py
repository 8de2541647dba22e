"""``hpc-seg synth cine OUT``: a synthetic Kaggle-like cardiac cine DICOM cohort."""

from __future__ import annotations

import argparse

from hpc_seg.cardiac.synth.config import CineSynthConfig
from hpc_seg.config_flags import add_config_options
from hpc_seg.options import BoolOption, add_job_option

NAME = "cine"
HELP = "generate a synthetic Kaggle-like cardiac cine DICOM cohort (with truth, masks, manifest)"

# The encodings and layouts of the written files (``relayout.VariantOptions``); listed here because
# that module imports pydicom and this one must stay cheap to import.
TRANSFER_SYNTAXES = ("explicit", "implicit", "big-endian", "deflate", "rle", "jpeg-lossless",
                     "jpeg-ls", "jpeg2000")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT",
                        help="output folder (new, empty, or an unfinished cohort to resume)")
    parser.add_argument("--patients", type=int, default=None,
                        help="number of patients (default: the job's [synth_cine] patients, "
                             "else 20)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed (default: the job's [synth_cine] seed, else 0)")
    add_job_option(parser, "[synth_cine]")
    parser.add_argument("--overwrite", action=BoolOption, default=False,
                        help="replace an existing cohort in OUT (only one this generator made)")
    files = parser.add_argument_group("files written")
    files.add_argument("--layout", choices=["project", "kaggle", "flat", "export"],
                       default="project",
                       help="project (default): {split}/<pid>/study/sax_*; kaggle: the Kaggle "
                            "unzip, {split}/{split}/<pid>/...; flat: <pid>/study/...; export: a "
                            "scanner export (DICOMDIR, PT*/ST*/SE*/IM*): a whole cardiac exam "
                            "with a vendor's header habits (see --vendor, --no-exam)")
    files.add_argument("--transfer-syntax", default="explicit", choices=TRANSFER_SYNTAXES,
                       help="encoding of the images (all lossless; default explicit VR little "
                            "endian; jpeg2000 needs both image sides >= 32)")
    files.add_argument("--multiframe", action=BoolOption, default=False,
                       help="one enhanced MR multi-frame file per series")
    files.add_argument("--vendor", choices=["siemens", "philips", "ge", "canon"], default=None,
                       help="export layout: write the exam with this vendor's header habits "
                            "(default: each patient's own scanner maker)")
    files.add_argument("--sax-series", choices=["vendor", "per-slice", "single"],
                       default="vendor",
                       help="export layout: the short-axis cine as one series per slice "
                            "(Siemens' habit), as one multi-slice series (the others'), or as "
                            "the vendor writes it (default)")
    files.add_argument("--exam", action=BoolOption, default=True,
                       help="export layout: the whole cardiac exam (perfusion, flow, MOLLI + T1 "
                            "map, LGE, real-time cine, secondary capture, document); --no-exam: "
                            "only the cines and a localiser (default on)")
    add_config_options(parser.add_argument_group("generator options (CineSynthConfig)"),
                       CineSynthConfig, table="synth_cine",
                       renamed={"--frames": "n_frames", "--quirk-rate": "quirk_rates",
                                "--force-quirk": "force_quirks"})


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.cardiac.synth.relayout import VariantOptions, generate_variant
    from hpc_seg.config import typed_value
    from hpc_seg.config_flags import config_from_options
    from hpc_seg.options import job_table, job_tables

    # A job file's [synth_cine] table also holds the cohort size and seed (as `hpc-seg run` reads).
    table = job_table(job_tables(args), "synth_cine", str(args.job))
    where = f"{args.job}: [synth_cine]" if args.job else "command line"
    patients = typed_value(int, args.patients if args.patients is not None
                           else table.pop("patients", 20), f"{where}.patients")
    seed = typed_value(int, args.seed if args.seed is not None else table.pop("seed", 0),
                       f"{where}.seed")
    table.pop("patients", None)
    table.pop("seed", None)
    config = config_from_options(CineSynthConfig, args, table="synth_cine",
                                 tables={"synth_cine": table})
    opts = VariantOptions(layout=args.layout, transfer_syntax=args.transfer_syntax,
                          multiframe=args.multiframe, exam=args.exam, vendor=args.vendor,
                          sax_series=args.sax_series)
    out = generate_variant(Path(args.out), patients, seed, config, opts, overwrite=args.overwrite)
    print(f"wrote {patients} patients ({opts.layout} layout, {opts.transfer_syntax}"
          f"{', multi-frame' if opts.multiframe else ''}); manifest: {out / 'manifest.json'}")
    return 0
