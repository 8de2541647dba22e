"""``hpc-seg bench train``: images/s of the training step, streaming from shards vs in memory."""

from __future__ import annotations

import argparse

NAME = "train"
HELP = "training-step images/s streaming from slices shards vs an in-memory tensor (one run)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--slices", default=None,
                        help="slices dataset to stream (default: a synthetic one in a temp dir)")
    parser.add_argument("--images", type=int, default=2048, help="synthetic dataset size")
    parser.add_argument("--image-size", type=int, default=128, help="synthetic image size")
    parser.add_argument("--encoder", default="resnet34",
                        choices=["resnet18", "resnet34", "resnet50", "vgg16_bn"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per path")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per path")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--num-workers", type=int, default=2, help="DataLoader workers (streaming)")
    parser.add_argument("--augment", default="normal", choices=["none", "normal", "extreme", "nnunet"])
    parser.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from hpc_seg.bench.train import BenchTrainConfig, run_bench

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = BenchTrainConfig(slices=Path(args.slices) if args.slices else None, images=args.images,
                           image_size=args.image_size, encoder=args.encoder,
                           batch_size=args.batch_size, steps=args.steps, warmup=args.warmup,
                           device=args.device, num_workers=args.num_workers, augment=args.augment,
                           amp=not args.no_amp)
    r = run_bench(cfg)
    print(f"bench train: {cfg.encoder}, {r['image_size']} px, batch {r['batch_size']}, "
          f"device {r['device']}, augment {cfg.augment}, {cfg.steps} timed steps")
    print(f"  in-memory tensor : {r['in_memory']:9.1f} images/s")
    print(f"  streaming shards : {r['streaming']:9.1f} images/s  ({cfg.num_workers} workers)")
    print(f"  loading overhead : {100 * r['overhead']:8.1f} %   (target <= 10 %)")
    return 0
