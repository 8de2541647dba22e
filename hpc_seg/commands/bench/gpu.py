"""``hpc-seg bench gpu``: every GPU check in sequence, each under its own time limit."""

from __future__ import annotations

import argparse
import sys

from hpc_seg.options import BoolOption, add_renamed

NAME = "gpu"
HELP = ("all GPU checks in one run (training step by precision, packed Tune trials, HAD-Net at "
        "the published size, NCCL vs gloo, ingest scaling, the gpu-marked tests) into "
        "gpu_checks.json; --dry-run: the same code at toy sizes on CPU")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action=BoolOption, default=False,
                        help="toy sizes on CPU: gloo for NCCL, fractional CPUs for fractional "
                             "GPUs; targets are not judged")
    parser.add_argument("--out", default=None,
                        help="gpu_checks.json and gpu_checks.log go here (default: "
                             "runs/gpu-checks, or runs/gpu-checks-dry-run)")
    parser.add_argument("--scratch", default=None, metavar="DIR",
                        help="cohorts, datasets, search folders and each check's full output "
                             "(default: a temporary folder, removed at the end)")
    add_renamed(parser, "--workdir", "--scratch", "scratch")
    parser.add_argument("--keep-scratch", action=BoolOption, default=False,
                        help="keep the temporary scratch folder (its path is printed)")
    add_renamed(parser, "--keep-workdir", "--keep-scratch", "keep_scratch", nargs=0, const=True)
    parser.add_argument("--checks", default=None, metavar="NAME,...",
                        help="run only these, in this order (default: tests, train, hadnet, "
                             "ddp, tune, ingest)")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=SECONDS",
                        help="time limit of one check (repeatable; default: the profile's)")
    parser.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                        help="the whole run ends within this: limits shrink to what is left, "
                             "and a check is not started with under 10 s left")
    parser.add_argument("--extra-check", action="append", default=[],
                        metavar="NAME=MODULE:FUNCTION",
                        help="also run this check function (called as FUNCTION(profile, "
                             "workdir) -> CheckOutcome); to try a new check before adding it")


def run(args: argparse.Namespace) -> int:
    import shutil
    import tempfile
    from pathlib import Path

    from hpc_seg.bench.gpu.profile import CHECK_NAMES, dry_run_profile, gpu_profile, with_limits
    from hpc_seg.bench.gpu.runner import BUILTIN_CHECKS, CheckSpec
    from hpc_seg.bench.gpu.runner import run_checks
    from hpc_seg.errors import ConfigError
    from hpc_seg.options import parse_pairs

    extra = parse_pairs(args.extra_check, "--extra-check", example="NAME=MODULE:FUNCTION")
    known = {**BUILTIN_CHECKS, **extra}
    names = ([n.strip() for n in args.checks.split(",") if n.strip()] if args.checks
             else list(CHECK_NAMES) + [n for n in extra if n not in CHECK_NAMES])
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ConfigError(f"--checks: unknown {', '.join(unknown) or 'none given'}; valid are "
                          f"{', '.join(sorted(known))}")
    limits = parse_pairs(args.limit, "--limit", float, example="NAME=SECONDS")
    if args.budget is not None and args.budget <= 0:
        raise ConfigError(f"--budget must be > 0 seconds, but got {args.budget}")
    profile = with_limits(dry_run_profile() if args.dry_run else gpu_profile(), limits)
    if not args.dry_run:
        import torch

        if not torch.cuda.is_available():
            print(f"hpc-seg bench gpu: no CUDA GPU on this machine (torch {torch.__version__}, "
                  "torch.cuda.is_available() is False). Run it on a GPU node, or use --dry-run "
                  "for the same code at toy sizes on CPU.", file=sys.stderr)
            return 2
    out = Path(args.out or ("runs/gpu-checks-dry-run" if args.dry_run else "runs/gpu-checks"))
    workdir = Path(args.scratch) if args.scratch else \
        Path(tempfile.mkdtemp(prefix="hpc-seg-gpu-checks-"))
    try:
        doc = run_checks(profile, [CheckSpec(n, known[n]) for n in names], out, workdir,
                         budget_s=args.budget, verbose=args.verbose)
    finally:
        if not args.scratch and not args.keep_scratch:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work folder kept: {workdir}")
    return 1 if any(c["error"] is not None for c in doc["checks"]) else 0
