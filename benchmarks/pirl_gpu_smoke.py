"""GPU smoke run of ``pirl train``: a few hundred PIRL steps with AMP on one or
several GPUs, printing images/s and peak GPU memory.

It goes through the real entry point (``pirl.train.train``: the tensor data path,
``DistributedDataParallel``, optional SyncBatchNorm, the NCCL stop check, the
memory bank's all-gather) on synthetic images written to a temporary folder, so
the GPU machine needs nothing but the repository.

    python benchmarks/pirl_gpu_smoke.py --steps 300                 # one GPU
    torchrun --nproc-per-node 8 benchmarks/pirl_gpu_smoke.py --steps 300 --sync-bn
    python benchmarks/pirl_gpu_smoke.py --smoke                     # CPU, seconds

``--smoke`` runs two steps of a tiny encoder on the CPU (what CI can afford).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from basekit.threads import configure_threads
from pirl.train import TrainSettings, train


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--images", type=int, default=8192, help="synthetic 32-px images")
    p.add_argument("--batch-size", type=int, default=256, help="per process")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--method", default="pirl", choices=("pirl", "npid", "jigsaw"))
    p.add_argument("--sync-bn", action="store_true")
    p.add_argument("--no-amp", action="store_true")
    p.add_argument("--smoke", action="store_true", help="two tiny steps on the CPU")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None, help="rank 0 writes the result here")
    return p.parse_args(argv)


def write_images(folder: Path, n: int, seed: int = 0) -> None:
    """``n`` random 32x32 PNGs (the same on every rank)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.png")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    configure_threads(args.threads)
    if args.smoke:
        args.steps, args.images, args.batch_size = 2, 32, 8
        args.arch, args.width = "resnet10", 4
    rank = int(os.environ.get("RANK", "0"))
    with tempfile.TemporaryDirectory(prefix="pirl-gpu-smoke-") as tmp:
        root = Path(tmp)
        write_images(root / "images", args.images)
        settings = TrainSettings(
            data=str(root / "images"),
            out=str(root / "run"),
            method=args.method,
            arch=args.arch,
            width=args.width,
            batch_size=args.batch_size,
            max_steps=args.steps,
            epochs=10_000,
            data_path="tensor",
            cache_dir=str(root / "cache"),
            device="cpu" if args.smoke else "cuda",
            amp=not args.no_amp,
            sync_bn=args.sync_bn,
            log_every=max(1, args.steps // 10),
            image_size=16 if args.smoke else 32,
        )
        if not args.smoke and torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        started = time.monotonic()
        summary = train(settings)
        wall = time.monotonic() - started
    peak_gib = (
        torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0
    )
    result = {
        "method": args.method,
        "encoder": f"{args.arch}-w{args.width}",
        "processes": int(os.environ.get("WORLD_SIZE", "1")),
        "batch_per_process": args.batch_size,
        "amp": not args.no_amp and not args.smoke,
        "sync_bn": args.sync_bn,
        "steps": summary["steps"],
        "images_per_s": round(summary["images_per_s"], 1),
        "peak_gpu_memory_gib_rank0": round(peak_gib, 2),
        "last_loss": summary["last_loss"],
        "wall_s": round(wall, 1),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
    }
    if rank == 0:
        print(json.dumps(result))
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
