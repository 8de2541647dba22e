"""``hpc-seg ingest SRC OUT``: DSB2 DICOM cine → curated 4D stacks as Parquet tables."""

from __future__ import annotations

import argparse

from hpc_seg.storage.codecs import CODECS

NAME = "ingest"
HELP = "curate DICOM cine (Kaggle DSB2 or scanner export) into 4D stacks + issues/files/metadata tables"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="cohort root: {train,validate,test}/<pid>/study/sax_*/*.dcm, "
                                    "the Kaggle unzip ({split}/{split}/<pid>/...), <pid>/study/..., "
                                    "one patient folder, or a scanner export (DICOMDIR or not)")
    parser.add_argument("out", help="output folder (tables volumes/, issues/, files/, "
                                    "dicom_metadata/, subjects/, patients/)")
    parser.add_argument("--engine", choices=["auto", "local", "ray"], default="auto",
                        help="auto (default) = local process pool unless a Ray address is given "
                             "or a large input meets a Ray cluster named by RAY_ADDRESS")
    parser.add_argument("--ray-address", default=None,
                        help="Ray cluster to join (default: RAY_ADDRESS when set, as inside "
                             "`hpc-seg cluster submit`; else a local instance)")
    parser.add_argument("--ray-dashboard", action="store_true",
                        help="start the dashboard with a local Ray instance (127.0.0.1:8265)")
    parser.add_argument("--workers", type=int, default=None,
                        help="local engine processes / local Ray CPUs (default: all cores)")
    parser.add_argument("--truth", default=None,
                        help="Id,Systole,Diastole CSV (default: SRC/truth.csv when present)")
    parser.add_argument("--shard-mb", type=float, default=128.0, help="volumes shard size target")
    parser.add_argument("--compression", choices=CODECS, default="zstd",
                        help="codec of the masks and the small tables (zstd level 1)")
    parser.add_argument("--pixel-compression", choices=CODECS,
                        default="none", help="codec of the volumes' pixels column (default none: "
                        "uint16 MR pixels compress 1.4x at best, at a third of the ingest time)")
    parser.add_argument("--gap-rule", choices=["published", "wide"], default="published",
                        help="which slice gaps curation fills with a copied slice: published "
                             "(default) = only a gap within 1 mm of twice the spacing; wide = "
                             "any gap of 1.5-2.5 spacings")
    parser.add_argument("--max-decoded-mb", type=float, default=None, metavar="MB",
                        help="per-file budget: a file whose size on disk, inflated size or "
                             "declared decoded size (rows x columns x frames x bytes) exceeds it "
                             "is skipped as too_large before anything is allocated (default 1024)")
    parser.add_argument("--series", action="append", default=[], metavar="SEL",
                        help="use this series as the cine, whatever its headers say, and no "
                             "other (repeatable): a SeriesNumber (12), a SeriesInstanceUID or a "
                             "SeriesDescription pattern ('*sax*', any case)")
    parser.add_argument("--exclude-series", action="append", default=[], metavar="SEL",
                        help="never use this series (repeatable; number, UID or description "
                             "pattern as for --series)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.cardiac.ingest.run import IngestConfig, ingest

    config = IngestConfig(engine=args.engine, ray_address=args.ray_address,
                          ray_dashboard=args.ray_dashboard, workers=args.workers,
                          truth_csv=Path(args.truth) if args.truth else None,
                          shard_mb=args.shard_mb, compression=args.compression,
                          pixel_compression=args.pixel_compression, gap_rule=args.gap_rule,
                          series=args.series, exclude_series=args.exclude_series,
                          **({"max_decoded_mb": args.max_decoded_mb}
                             if args.max_decoded_mb is not None else {}))
    s = ingest(Path(args.src), Path(args.out), config)
    print(f"engine: {s.engine} ({s.engine_reason})")
    print(f"patients: {s.patients} processed, {s.patients_skipped_done} already finished")
    print(f"stacks: {s.stacks}; files: {s.files_used} used of {s.files}, {s.files_skipped} skipped"
          + (" (" + ", ".join(f"{k}: {v}" for k, v in sorted(s.skipped_by_reason.items())) + ")"
             if s.skipped_by_reason else ""))
    if s.files:
        print(f"time: {s.seconds:.1f} s ({s.files / max(s.seconds, 1e-9):.0f} files/s, "
              f"{s.input_bytes / 1e6 / max(s.seconds, 1e-9):.0f} MB/s)")
    if s.placement:
        per_node: dict[str, int] = {}
        for where in s.placement.values():
            label = f"{where['hostname']} ({where['node_ip']})"
            per_node[label] = per_node.get(label, 0) + 1
        print("nodes: " + ", ".join(f"{k}: {v} patients" for k, v in sorted(per_node.items()))
              + f"   ({s.out / 'placement.json'})")
    for name, path in s.tables.items():
        print(f"  {name}: {path}")
    return 0
