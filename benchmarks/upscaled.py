"""A phone-size collection from the held-out test split: each photo cropped to 4:3
and enlarged (Lanczos) to 4000x3000 (12 MP, portrait photos 3000x4000), saved as a
camera does (JPEG quality 92), with a list file for ``--images``.

    python benchmarks/upscaled.py [--images 60] [--split test] [--out out/test-12mp]

An enlarged photo has no more detail than its source: it tests what resolution
alone does to the agent (its state, its relative downscales, the time to decode),
not what a real 12 MP sensor's detail does (``../shared/data/phone-unsplash``, where
present, is that collection). From the test split, only timings and scores are taken; a
design is chosen on ``--split train``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from _common import SMOKE_OUT, add_smoke
from adacompress.core.datasets import imagenet_split
from basekit.images import load_image

SIZE = (4000, 3000)
CAMERA_QUALITY = 92


def enlarge(image: Image.Image, size: tuple[int, int] = SIZE) -> Image.Image:
    """``image``'s centre at 4:3 (3:4 for a portrait photo), enlarged to ``size``."""
    width, height = size if image.width >= image.height else size[::-1]
    crop_w = min(image.width, image.height * width / height)
    crop_h = crop_w * height / width
    left, top = (image.width - crop_w) / 2, (image.height - crop_h) / 2
    box = (left, top, left + crop_w, top + crop_h)
    return image.resize((width, height), Image.Resampling.LANCZOS, box=box)


def build(out: Path, count: int, split: str = "test") -> Path:
    """Writes the first ``count`` photos of ``split`` enlarged under ``out`` (those
    already there are kept) and returns the list file."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for source in imagenet_split(split)[:count]:
        path = out / f"{source.stem}.jpg"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            enlarge(load_image(source)).save(tmp, "JPEG", quality=CAMERA_QUALITY)
            tmp.replace(path)
        paths.append(path)
    listing = out / "photos.txt"
    listing.write_text("".join(f"{p.resolve()}\n" for p in paths))
    return listing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--split", choices=("train", "test"), default="test")
    parser.add_argument("--out", type=Path, default=None)
    add_smoke(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.images, args.out = 2, SMOKE_OUT / f"{args.split}-12mp"
    out = args.out or Path(f"out/{args.split}-12mp")
    print(build(out, args.images, args.split))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
