"""``hpc-seg transfer run SRC OUT``: ingest the volunteers, draw the subsets, train R/TL/TL2 as one array."""

from __future__ import annotations

import argparse

NAME = "run"
HELP = "ingest DICOM+.con (or PNG) volunteers, build the subsets, train (subset x init) as one job array"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="volunteers folder (SRC/<vid>/ DICOM + .con) or PNG folder")
    parser.add_argument("out", help="output folder (a re-run skips finished work)")
    parser.add_argument("--config", default=None, metavar="TOML",
                        help="job TOML: its [transfer_data], [transfer] and [launch] tables")
    parser.add_argument("--base-model", default=None, help="TL2's start: an hpc-seg model.pt")
    parser.add_argument("--imagenet-weights", default=None,
                        help="torchvision ImageNet .pth of the encoder for TL (without: TL not run)")
    parser.add_argument("--executor", choices=["auto", "slurm", "local"], default=None)
    parser.add_argument("--parallel", type=int, default=None, help="array throttle %%N")
    parser.add_argument("--layout", choices=["con", "png"], default=None)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.cardiac.transfer import study
    from hpc_seg.cardiac.transfer.config import TransferConfig
    from hpc_seg.cardiac.transfer.data import DataConfig
    from hpc_seg.config import from_dict, load_toml
    from hpc_seg.launch.config import LaunchConfig

    tables = load_toml(args.config) if args.config else {}
    where = args.config or "transfer run options"
    data = {**tables.get("transfer_data", {}), "src": args.src}
    if args.layout:
        data["layout"] = args.layout
    transfer = dict(tables.get("transfer", {}))
    if args.base_model:
        transfer["base_model"] = args.base_model
    if args.imagenet_weights:
        transfer["imagenet_weights"] = args.imagenet_weights
    launch = dict(tables.get("launch", {}))
    if args.executor:
        launch["executor"] = args.executor
    if args.parallel:
        launch["array_parallelism"] = args.parallel
    out = Path(args.out)
    study.prepare(from_dict(DataConfig, data, f"{where}: [transfer_data]"), out)
    result = study.train(from_dict(TransferConfig, transfer, f"{where}: [transfer]"),
                         from_dict(LaunchConfig, launch, f"{where}: [launch]"), out)
    for name, why in result["skipped"].items():
        print(f"{name}: {why}")
    print(f"{result['tasks']} task(s) finished under {out / 'tasks'}; "
          f"next: hpc-seg transfer evaluate {out}")
    return 0
