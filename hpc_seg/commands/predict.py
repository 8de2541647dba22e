"""``hpc-seg predict MODEL SRC OUT``: segment new cine scans with a trained cardiac model."""

from __future__ import annotations

import argparse

NAME = "predict"
HELP = ("segment new cine short-axis scans (DICOM folder, 4D NIfTI or volumes table) with a "
        "trained model.pt: label maps, DICOM SEG, LV volumes, EF, mass, QC")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a trained cardiac model.pt (train, tune or transfer output)")
    parser.add_argument("src", help="DICOM folder (DSB2 tree or scanner export), a 4D .nii(.gz), "
                                    "or an ingested volumes table")
    parser.add_argument("out", help="output folder (created)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--no-dicom-seg", action="store_true",
                        help="skip the DICOM Segmentation objects")
    parser.add_argument("--executor", choices=("local", "slurm"), default="local",
                        help="slurm: one submitit array task per stack")
    parser.add_argument("--workers", type=int, default=None, help="ingest processes (DICOM input)")
    parser.add_argument("--max-decoded-mb", type=float, default=None, metavar="MB",
                        help="DICOM input: per-file decoded-size budget (see ingest; default 1024)")


def run(args: argparse.Namespace) -> int:
    from hpc_seg.cardiac.inference.run import PredictConfig, predict, summary_text

    cfg = PredictConfig(batch_size=args.batch_size, device=args.device,
                        dicom_seg=not args.no_dicom_seg, executor=args.executor,
                        workers=args.workers,
                        **({"max_decoded_mb": args.max_decoded_mb}
                           if args.max_decoded_mb is not None else {}))
    result = predict(args.model, args.src, args.out, cfg)
    print(summary_text(result.summary_csv))
    for sid, err in result.failed.items():
        print(f"FAILED {sid}: {err}")
    print(f"{result.stacks} stack(s), {result.flagged} flagged for review; "
          f"summary: {result.summary_csv}")
    return 1 if result.failed else 0
