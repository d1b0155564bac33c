"""Where opening a PIRL dataset spends its time: listing, reading, headers, decoding.

An image folder of ``--n`` files is written into a temporary folder (never the repo)
from the ImageNet samples (``--images imagenet``: photos of about 500 x 375, as in
ImageNet) or from CIFAR-10's training JPEGs (``--images cifar10``: 32 x 32). Then,
in one run and on the same files, each phase is timed on its own:

- ``list``: walking the folder and sorting the names;
- ``read``: reading every file's bytes;
- ``header``: Pillow's ``Image.open`` of every file (the header only, no pixels);
- ``decode``: decoding every image to RGB (:func:`basekit.images.load_image`) --
  what opening a dataset cost before issue 36 on every rank, start, resume and eval;
- ``open``: :class:`pirl.data.ImageSource` on the folder, indexing every header
  (``cache_index=False``: a first open);
- ``cached``: the same once its index is cached (every later open of an unchanged
  folder: other ranks, resumes, ``pirl eval``): the listing and a ``stat`` per file.

It prints milliseconds per image for each, and ``decode / open`` and
``decode / cached``, the start-up speed-ups. The files are in the page cache after
they are written, so this measures CPU work; on a network filesystem each file's
first read adds its latency to all phases alike. ``--repeats`` takes the best of
several passes.

    python benchmarks/pirl_startup.py --n 2000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from basekit.images import load_image, read_image_file
from pirl.data import ImageSource

DATA = Path(os.environ.get("ADACOMPRESS_DATA", "/work/shared/data"))


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="files in the folder")
    p.add_argument("--images", choices=("imagenet", "cifar10"), default="imagenet")
    p.add_argument("--repeats", type=int, default=3, help="best of this many passes")
    p.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="20 files, one pass: checks that the script runs; numbers mean nothing",
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.n, args.repeats = 20, 1
    return args


def write_folder(folder: Path, images: str, n: int, data: Path) -> None:
    """``n`` image files in ten class folders, copied from the shared data (cycled
    when there are fewer; each copy is a file of its own)."""
    if images == "imagenet":
        sources = sorted((data / "imagenet-samples").glob("*.JPEG"))
        blobs = [p.read_bytes() for p in sources[: min(n, len(sources))]]
    else:
        with zipfile.ZipFile(data / "cifar10" / "cifar10-jpeg.zip") as archive:
            members = [m for m in archive.namelist() if m.startswith("train/")]
            members = [m for m in members if m.lower().endswith((".jpg", ".jpeg"))]
            blobs = [archive.read(m) for m in members[: min(n, len(members))]]
    if not blobs:
        raise SystemExit(f"no {images} images found under {data}")
    for i in range(n):
        target = folder / f"class{i % 10}" / f"{i:07d}.jpg"
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(blobs[i % len(blobs)])


def best(repeats: int, work: Callable[[], object]) -> float:
    """The shortest of ``repeats`` timings of ``work`` in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    work = Path(tempfile.mkdtemp(prefix="pirl-startup-"))
    tmp, cache = work / "images", work / "cache"
    try:
        tmp.mkdir()
        write_folder(tmp, args.images, args.n, args.data)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())

        def header_all() -> None:
            for f in files:
                with Image.open(f) as image:
                    image.size  # noqa: B018 - the header is parsed by open

        ImageSource(tmp, cache_dir=cache)  # writes the index that "cached" reads
        phases = {
            "list": lambda: sorted(p for p in tmp.rglob("*") if not p.is_dir()),
            "read": lambda: [read_image_file(f) for f in files],
            "header": header_all,
            "decode": lambda: [load_image(read_image_file(f)) for f in files],
            "open": lambda: ImageSource(tmp, cache_index=False),
            "cached": lambda: ImageSource(tmp, cache_dir=cache),
        }
        seconds = {name: best(args.repeats, work) for name, work in phases.items()}
        opened = ImageSource(tmp, cache_index=False)
        assert len(opened) == args.n, (len(opened), opened.skipped[:3])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{args.n} {args.images} files, best of {args.repeats}; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    print("| phase | s | ms / image |")
    print("|---|---|---|")
    for name, s in seconds.items():
        print(f"| {name} | {s:.3f} | {1000 * s / args.n:.3f} |")
    print(
        f"decode / open: {seconds['decode'] / seconds['open']:.1f}x, decode / "
        f"cached: {seconds['decode'] / seconds['cached']:.1f}x (ImageSource "
        "decoded every image before issue 36)"
    )
    imagenet = {k: v / args.n * 1_281_167 for k, v in seconds.items()}
    print(
        f"scaled to 1,281,167 images (ImageNet's training set), per process: decode "
        f"{imagenet['decode']:.0f} s, open {imagenet['open']:.0f} s, cached "
        f"{imagenet['cached']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
