"""Decoding a big photo at the size needed: what the DCT-scaled (draft) decode
changes against a full decode reduced the same way, and what it saves.

    python benchmarks/draft_decode.py [--photos out/test-12mp/photos.txt]
        [--agent lite1] [--images 60] [--threads 2]

For every photo of the collection (default: the 12 MP one ``benchmarks/upscaled.py``
writes) and a capped agent, the photo is reduced to the agent's cap two ways: from a
full decode, and from a JPEG decoded at the smallest DCT scale that keeps the cap
(what ``Compressor`` does). Reported: the mean absolute pixel difference of the two
reduced photos, how many of the agent's choices differ, how many of the cloud's
answers for the chosen upload differ (top-1, and the reference's top-1 within the
top-5), and the median time of each path as a multiple of the full decode.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from _common import SMOKE_OUT, add_smoke
from adacompress.cloud.backends import get_backend
from adacompress.core.datasets import resolve_images
from adacompress.device.compressor import Compressor
from adacompress.device.resolution import cap_photo, load_capped
from basekit.images import load_image, read_image_file
from basekit.threads import configure_threads
from upscaled import build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default="out/test-12mp/photos.txt")
    parser.add_argument("--agent", default="lite1")
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    add_smoke(parser)
    args = parser.parse_args(argv)
    if args.smoke:  # two enlarged photos, as upscaled.py --smoke makes them
        args.images = 2
        args.photos = str(build(SMOKE_OUT / "test-12mp", args.images))
    threads = configure_threads(args.threads)
    compressor = Compressor.load(args.agent)
    cap = compressor.card.photo_cap
    if cap is None:
        parser.error(f"agent {args.agent} has no photo cap")
    cloud = get_backend(compressor.card.backend)
    paths = resolve_images(args.photos, "test")[: args.images]
    pixels, choices, top1, kept = [], 0, 0, 0
    times: dict[str, list[float]] = {"full_decode": [], "full": [], "draft": []}
    for path in paths:
        data = read_image_file(path)
        t0 = time.perf_counter()
        whole = load_image(data)
        t1 = time.perf_counter()
        full = cap_photo(whole, cap)
        t2 = time.perf_counter()
        draft = load_capped(data, cap)
        t3 = time.perf_counter()
        times["full_decode"].append(t1 - t0)
        times["full"].append(t2 - t0)
        times["draft"].append(t3 - t2)
        a, b = np.asarray(full, np.float32), np.asarray(draft, np.float32)
        pixels.append(float(np.abs(a - b).mean()))
        picks = compressor.choose(compressor.features([full, draft]))
        actions = [compressor.actions[int(i)] for i in picks]
        choices += actions[0] != actions[1]
        uploads = [
            compressor.encode(im, act).data
            for im, act in zip((full, draft), actions, strict=True)
        ]
        answers = cloud.classify(uploads)
        top1 += answers[0][0].class_id != answers[1][0].class_id
        kept += answers[0][0].class_id not in [
            label.class_id for label in answers[1][:5]
        ]
    decode = float(np.median(times["full_decode"]))
    result = {
        "agent": args.agent,
        "photo_cap": cap,
        "photos": len(paths),
        "threads": threads,
        "mean_abs_pixel_difference": float(np.mean(pixels)),
        "choices_differ": choices,
        "answer_top1_differs": top1,
        "answer_top1_not_in_top5": kept,
        "x_full_decode": {
            path: float(np.median(values)) / decode for path, values in times.items()
        },
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
