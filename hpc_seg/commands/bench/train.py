"""``hpc-seg bench train``: images/s of the real training step by precision and memory format,
and streaming from shards vs in memory."""

from __future__ import annotations

import argparse

from hpc_seg.bench.config import MODES
from hpc_seg.options import BoolOption

NAME = "train"
HELP = ("images/s of the training step: fp32 vs bf16, with and without channels_last, and "
        "streaming from slices shards vs in memory (one run, interleaved rounds)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--slices", default=None,
                        help="slices dataset to stream (default: a synthetic one in a temp dir)")
    parser.add_argument("--images", type=int, default=2048, help="synthetic dataset size")
    parser.add_argument("--preset", default="cpu", choices=["cpu", "published", "debug"],
                        help="training preset whose model is timed (default: cpu, 128 px resnet18)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="synthetic image size (default: the preset's)")
    parser.add_argument("--encoder", default=None,
                        choices=["resnet18", "resnet34", "resnet50", "vgg16_bn"],
                        help="encoder (default: the preset's)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES),
                        help="precision/memory-format modes to time side by side")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per mode and round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds (the median round is reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per mode")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--num-workers", type=int, default=2, help="DataLoader workers (streaming)")
    parser.add_argument("--augment", default="normal",
                        choices=["none", "normal", "extreme", "nnunet"],
                        help="augmentation of each batch (default normal; nnunet: nnU-Net's 2D "
                             "pipeline)")
    parser.add_argument("--streaming", action=BoolOption, default=True,
                        help="also compare streaming from shards with an in-memory tensor "
                             "(default on)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0 = the process's CPU allocation)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from hpc_seg.bench.train import BenchTrainConfig, run_bench
    from hpc_seg.runtime.threads import configure_torch_threads
    from hpc_seg.storage.shards import atomic_write_bytes

    configure_torch_threads(args.threads)
    cfg = BenchTrainConfig(slices=Path(args.slices) if args.slices else None, images=args.images,
                           preset=args.preset, image_size=args.image_size, encoder=args.encoder,
                           batch_size=args.batch_size, steps=args.steps, rounds=args.rounds,
                           warmup=args.warmup, device=args.device, num_workers=args.num_workers,
                           augment=args.augment, modes=tuple(args.modes),
                           streaming=args.streaming)
    r = run_bench(cfg)
    print(f"bench train: {r['encoder']}, {r['image_size']} px, batch {r['batch_size']}, "
          f"device {r['device']}, {r['threads']} thread(s), augment {cfg.augment}")
    print(f"  CPU: {r['cpu']}")
    print(f"  training here uses: {r['training_uses']}")
    print(f"  {'mode':10s} {'images/s':>9s} {'vs fp32':>8s} {'img/CPU-s':>10s} {'vs fp32':>8s}"
          f"   wall rounds ({cfg.steps} steps each)")
    for mode, row in r["modes"].items():
        rounds = " ".join(f"{v:.1f}" for v in row["rounds"])
        print(f"  {mode:10s} {row['images_per_s']:9.1f} {row['vs_fp32']:7.2f}x "
              f"{row['images_per_cpu_s']:10.1f} {row['vs_fp32_cpu']:7.2f}x   {rounds}")
    if r["device"].startswith("cuda"):
        print("  peak GPU memory, model + optimiser state + one step's peak: " + ", ".join(
            f"{m} {row['model_state_mb'] + row['peak_step_mb']:.0f} MB"
            for m, row in r["modes"].items()))
    print("  (img/CPU-s: images per CPU second of this process; unlike images/s it does not drop "
          "when other processes share the cores)")
    if "streaming" in r:
        print(f"  in-memory tensor : {r['in_memory']:9.1f} images/s  ({r['training_uses']})")
        print(f"  streaming shards : {r['streaming']:9.1f} images/s  ({cfg.num_workers} workers)")
        print(f"  loading overhead : {100 * r['overhead']:8.1f} %   (target <= 10 %)")
    if args.json:
        atomic_write_bytes(json.dumps(r, indent=2).encode(), Path(args.json))
    return 0
