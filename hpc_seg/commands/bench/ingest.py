"""``hpc-seg bench ingest``: both ingest engines vs a pydicom floor and dcm2niix, in one run."""

from __future__ import annotations

import argparse

from hpc_seg.storage.codecs import CODECS

NAME = "ingest"
HELP = "files/s and MB/s of the local and Ray ingest engines vs a pydicom floor and dcm2niix"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--patients", type=int, default=20, help="patients to generate (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--workdir", default="/tmp/hpc-seg-bench-ingest",
                        help="cohort (generated once, reused) and outputs go here")
    parser.add_argument("--src", default=None, help="time this cohort instead of generating one")
    parser.add_argument("--max-matrix", type=int, default=None,
                        help="generator's largest matrix side (default: the generator's)")
    parser.add_argument("--engines", default="floor,local,ray,dcm2niix",
                        help="comma list of floor, local, ray, dcm2niix")
    parser.add_argument("--workers", type=int, default=None, help="engine workers (default: all cores)")
    parser.add_argument("--compression", choices=CODECS, default="zstd",
                        help="codec of masks and small tables")
    parser.add_argument("--pixel-compression", choices=CODECS,
                        default="none", help="codec of the pixels column (as hpc-seg ingest)")
    parser.add_argument("--transfer-syntax", default="explicit",
                        choices=["explicit", "implicit", "big-endian", "deflate", "rle",
                                 "jpeg-lossless", "jpeg-ls", "jpeg2000"],
                        help="time the cohort re-encoded in this transfer syntax (written once "
                             "under --workdir, not timed); e.g. jpeg-ls for a compressed cohort")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds over all contenders; each row shows its median round")
    parser.add_argument("--ray-address", default=None,
                        help="time the Ray engine on this running cluster instead of a local "
                             "instance ('auto' = RAY_ADDRESS, as inside `hpc-seg cluster submit`)")
    parser.add_argument("--dcm2niix-jobs", type=int, default=1,
                        help="dcm2niix processes side by side (default 1, one folder at a time)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.bench.ingest import BenchIngestConfig, format_table, run_bench

    cfg = BenchIngestConfig(workdir=Path(args.workdir), src=Path(args.src) if args.src else None,
                            patients=args.patients, seed=args.seed, max_matrix=args.max_matrix,
                            engines=tuple(e.strip() for e in args.engines.split(",") if e.strip()),
                            workers=args.workers, compression=args.compression,
                            pixel_compression=args.pixel_compression,
                            dcm2niix_jobs=args.dcm2niix_jobs, repeat=args.repeat,
                            transfer_syntax=args.transfer_syntax, ray_address=args.ray_address)
    rows = run_bench(cfg)
    print(format_table(rows))
    print(f"(saved {cfg.workdir / 'bench_ingest.json'})")
    return 0
