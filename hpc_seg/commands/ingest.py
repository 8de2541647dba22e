"""``hpc-seg ingest SRC OUT``: DSB2 DICOM cine → curated 4D stacks as Parquet tables."""

from __future__ import annotations

import argparse

from hpc_seg.cardiac.ingest.config import IngestConfig
from hpc_seg.config_flags import add_config_options
from hpc_seg.options import add_job_option, add_renamed

NAME = "ingest"
HELP = "curate DICOM cine (Kaggle DSB2 or scanner export) into 4D stacks + issues/files/metadata tables"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="SRC",
                        help="cohort root: {train,validate,test}/<pid>/study/sax_*/*.dcm, "
                             "the Kaggle unzip ({split}/{split}/<pid>/...), <pid>/study/..., "
                             "one patient folder, or a scanner export (DICOMDIR or not)")
    parser.add_argument("out", metavar="OUT",
                        help="output folder (tables volumes/, issues/, files/, dicom_metadata/, "
                             "subjects/, patients/)")
    add_job_option(parser, "[ingest]")
    add_config_options(parser, IngestConfig, table="ingest")
    add_renamed(parser, "--truth", "--truth-csv", "ingest:truth_csv")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.cardiac.ingest.run import ingest
    from hpc_seg.config_flags import config_from_options
    from hpc_seg.options import job_table, job_tables

    # a job's [ingest] table may name the source cohort, which is SRC here
    table = job_table(job_tables(args), "ingest", str(args.job))
    table.pop("src", None)
    config = config_from_options(IngestConfig, args, table="ingest", tables={"ingest": table})
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
