"""Training-step throughput of PIRL / NPID / Jigsaw per encoder and jigsaw geometry.

Model compute only (forward + backward on random tensors, batch 128, no data
loading), on this machine's CPU threads, NCHW unless ``--channels-last`` (training's
default layout). Used to pick the benchmark's encoder width and the jigsaw geometry
for 32-pixel images; ``pirl_throughput.py`` measures training end to end:

    python benchmarks/pirl_geometry.py --threads 2
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from _common import add_smoke
from basekit.threads import configure_threads
from pirl.jigsaw_baseline import JigsawClassifier
from pirl.model import PIRLModel
from pirl.resnet import resnet

GEOMETRIES = ((30, 8), (48, 12), (96, 28))  # (grid_size, patch_size); image is 32 px


def images_per_s(step: Callable[[], None], batch: int, repeats: int = 5) -> float:
    """Best of ``repeats`` timed steps: the machine is shared, the best is the cost."""
    step()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return batch / best


def measure(
    arch: str, width: int, patch: int, b: int, channels_last: bool = False
) -> list[float]:
    """Images/s of one PIRL, NPID and Jigsaw training step."""
    torch.manual_seed(0)
    model = PIRLModel(resnet(arch, width=width, cifar_stem=True))
    jigsaw = JigsawClassifier(resnet(arch, width=width, cifar_stem=True))
    if channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        jigsaw.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    x = torch.randn(b, 3, 32, 32)
    patches = torch.randn(b, 9, 3, patch, patch)

    def pirl() -> None:
        f, g = model(x, patches)
        (f.sum() + g.sum()).backward()
        model.zero_grad()

    def npid() -> None:
        f, _ = model(x)
        f.sum().backward()
        model.zero_grad()

    def jig() -> None:
        jigsaw(patches).sum().backward()
        jigsaw.zero_grad()

    return [images_per_s(fn, b) for fn in (pirl, npid, jig)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--encoders", default="resnet10:16,resnet18:16", help="arch:width,..."
    )
    parser.add_argument("--channels-last", action="store_true")
    add_smoke(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.batch_size, args.encoders = 4, "resnet10:8"
    threads = configure_threads(args.threads)
    b = args.batch_size
    layout = "NHWC" if args.channels_last else "NCHW"
    print(
        f"threads {threads}, batch {b}, {layout}; images/s, best of 5 "
        "(forward + backward)"
    )
    print("| encoder | grid/patch | PIRL | NPID | Jigsaw |\n|---|---|---|---|---|")
    for item in args.encoders.split(","):
        arch, width = item.split(":")
        for grid, patch in GEOMETRIES:
            rates = measure(arch, int(width), patch, b, args.channels_last)
            print(
                f"| {arch} w{width} | {grid}/{patch} | "
                + " | ".join(f"{r:.0f}" for r in rates)
                + " |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
