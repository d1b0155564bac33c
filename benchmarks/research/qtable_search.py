"""Does a tuned JPEG quantisation table buy bytes at equal accuracy on one service?

    python benchmarks/research/qtable_search.py [--backend lite1] [--images 150]
        [--json out/bench/qtable_lite1.json]

For services that take only JPEG (Amazon Rekognition), the format cannot change, but
the tables can: any standard decoder reads a JPEG with its own tables. The family
searched: the standard tables of the JPEG spec (Annex K, what libjpeg and Pillow
use), scaled per quality as libjpeg does, then tilted by frequency,
``Q'(u, v) = Q(u, v) * exp(tilt * ((u + v) / 14 - 0.5))`` (tilt > 0: coarser high
frequencies, finer low ones; GRACE and Li, De Sa & Sampson report CNNs caring less
about the former), and the chroma table multiplied by ``chroma``. The search asks the
cloud about every (tilt, chroma) x quality on the first ``--images`` images of the
``fit`` part of the train split (every call counted, answers kept in the cache), and
picks the table with the smallest size at accuracy 0.99 along its quality curve
(sizes interpolated between qualities). Only then are the 300 test images asked, for
the chosen table and the standard one, and the gain is reported at equal accuracy.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from adacompress.core.datasets import imagenet_split
from adacompress.core.objective import accuracy
from adacompress.device.actions import REFERENCE_ACTION, Action, paper_actions
from adacompress.device.codec import encode
from adacompress.device.features import get_extractor
from adacompress.exchange.answers import CallCount
from adacompress.exchange.cache import Outcome
from adacompress.exchange.environment import CompressionEnv, Sample, open_env
from adacompress.exchange.settings import CloudSettings
from basekit.atomic import atomic_write_json
from basekit.images import load_image
from basekit.threads import configure_threads

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from _common import add_smoke, limit_splits  # noqa: E402  (benchmarks/_common.py)

# The JPEG spec's example tables (ITU-T T.81, Annex K.1), in natural (row) order.
LUMINANCE = np.array(
    [
        16,
        11,
        10,
        16,
        24,
        40,
        51,
        61,
        12,
        12,
        14,
        19,
        26,
        58,
        60,
        55,
        14,
        13,
        16,
        24,
        40,
        57,
        69,
        56,
        14,
        17,
        22,
        29,
        51,
        87,
        80,
        62,
        18,
        22,
        37,
        56,
        68,
        109,
        103,
        77,
        24,
        35,
        55,
        64,
        81,
        104,
        113,
        92,
        49,
        64,
        78,
        87,
        103,
        121,
        120,
        101,
        72,
        92,
        95,
        98,
        112,
        100,
        103,
        99,
    ],
    dtype=np.float64,
).reshape(8, 8)
CHROMINANCE = np.array(
    [
        17,
        18,
        24,
        47,
        99,
        99,
        99,
        99,
        18,
        21,
        26,
        66,
        99,
        99,
        99,
        99,
        24,
        26,
        56,
        99,
        99,
        99,
        99,
        99,
        47,
        66,
        99,
        99,
        99,
        99,
        99,
        99,
        *([99] * 32),
    ],
    dtype=np.float64,
).reshape(8, 8)

QUALITIES = (5, 15, 25, 35, 55, 75)
TILTS = (-0.5, 0.0, 0.5, 1.0, 1.5)
CHROMAS = (1.0, 2.0)
LEVELS = (0.95, 0.97, 0.99)
"""accuracies at which the curves are compared"""
_u, _v = np.mgrid[0:8, 0:8]
FREQUENCY = (_u + _v) / 14.0 - 0.5


def tables(quality: int, tilt: float, chroma: float) -> list[list[int]]:
    """Luminance and chrominance tables for ``quality`` (libjpeg's scaling),
    tilted and with the chroma factor applied; entries 1..255."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    out = []
    for base, factor in ((LUMINANCE, 1.0), (CHROMINANCE, chroma)):
        scaled = np.floor((base * scale + 50) / 100)
        shaped = scaled * np.exp(tilt * FREQUENCY) * factor
        out.append(np.clip(np.round(shaped), 1, 255).astype(int).ravel().tolist())
    return out


def encode_with(image: Image.Image, quality: int, tilt: float, chroma: float) -> bytes:
    """``image`` as a JPEG with the tables of (quality, tilt, chroma)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(
        buffer, format="JPEG", qtables=tables(quality, tilt, chroma)
    )
    return buffer.getvalue()


def key(quality: int, tilt: float, chroma: float) -> str:
    return f"qtable:{tilt:g},{chroma:g}:{quality}"


def curves(
    env: CompressionEnv, samples: list[Sample], configs: list[tuple[float, float]]
) -> dict[tuple[float, float], list[tuple[float, float]]]:
    """Per table: (accuracy, size ratio) at every quality, on ``samples``."""
    out: dict[tuple[float, float], list[tuple[float, float]]] = {}
    references = [
        env.outcomes(s, [REFERENCE_ACTION])[REFERENCE_ACTION] for s in samples
    ]
    total = sum(r.nbytes for r in references)
    for config in configs:
        points = []
        for quality in QUALITIES:
            kept, nbytes = 0.0, 0
            for sample, reference in zip(samples, references, strict=True):
                outcome = ask(env, sample, quality, *config)
                kept += accuracy(reference.answer, outcome.answer, top_k=env.top_k)
                nbytes += outcome.nbytes
            points.append((kept / len(samples), nbytes / total))
        out[config] = points
        print(config, [(round(a, 3), round(r, 3)) for a, r in points], flush=True)
    return out


OWN_CALLS = CallCount()
"""The calls :func:`ask` made and found cached itself, for tables the environment
does not know (the environment counts its own)."""


def ask(
    env: CompressionEnv, sample: Sample, quality: int, tilt: float, chroma: float
) -> Outcome:
    """The service's answer for one table and quality, from the cache or fresh."""
    if tilt == 0.0 and chroma == 1.0:
        return env.outcomes(sample, [Action(quality)])[Action(quality)]
    name = key(quality, tilt, chroma)
    cached = env.cache.get_answers(sample.digest, env.cache_name, [name])
    if name in cached:
        OWN_CALLS.cached += 1
        return cached[name]
    data = encode_with(load_image(sample.path), quality, tilt, chroma)
    outcome = Outcome(len(data), env.service.classify([data])[0])
    env.cache.put_answers(sample.digest, env.cache_name, {name: outcome})
    OWN_CALLS.new += 1
    return outcome


def size_at(points: list[tuple[float, float]], level: float) -> float | None:
    """Size ratio at accuracy ``level`` along a quality curve (linear between the
    qualities around it; None if no quality reaches it)."""
    for (a0, r0), (a1, r1) in zip(points, points[1:], strict=False):
        if a0 >= level:
            return r0
        if a1 >= level:
            return r0 + (r1 - r0) * (level - a0) / (a1 - a0)
    return None


def table_rows(
    found: dict[tuple[float, float], list[tuple[float, float]]],
) -> list[dict[str, Any]]:
    return [
        {
            "tilt": t,
            "chroma": c,
            "points": points,
            **{f"size_at_{level}": size_at(points, level) for level in LEVELS},
        }
        for (t, c), points in found.items()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="lite1")
    parser.add_argument("--images", type=int, default=150)
    parser.add_argument("--json", type=Path, default=None)
    add_smoke(parser)
    args = parser.parse_args(argv)
    configure_threads()
    if args.smoke:
        limit_splits(2)
        args.backend = "lite0"
    # The check that the family's (0, 1) member is the codec's own encoding.
    probe = load_image(imagenet_split("fit")[0])
    plain = io.BytesIO()
    probe.save(plain, format="JPEG", qtables=tables(35, 0.0, 1.0))
    assert len(plain.getvalue()) == len(encode(probe, Action(35))), "tables differ"
    with open_env(
        CloudSettings(args.backend),
        actions=paper_actions(),
        extractor=get_extractor("confidence@160"),  # cached by the shipped agents
    ) as env:
        fit, _ = env.prepare(imagenet_split("fit")[: args.images], progress=False)
        configs = [(t, c) for t in TILTS for c in CHROMAS]
        search = table_rows(curves(env, fit, configs))
        best = min(
            (row for row in search if row["size_at_0.99"] is not None),
            key=lambda row: row["size_at_0.99"],
        )
        chosen = (best["tilt"], best["chroma"])
        print(f"chosen on {len(fit)} fit images: tilt {chosen[0]}, chroma {chosen[1]}")
        test, _ = env.prepare(imagenet_split("test"), progress=False)
        scored = table_rows(curves(env, test, [(0.0, 1.0), chosen]))
        calls = env.calls().new + OWN_CALLS.new
    standard, tuned = scored
    gain = {
        str(level): (
            None
            if standard[f"size_at_{level}"] is None or tuned[f"size_at_{level}"] is None
            else 1 - tuned[f"size_at_{level}"] / standard[f"size_at_{level}"]
        )
        for level in LEVELS
    }
    report = {
        "backend": args.backend,
        "fit_images": len(fit),
        "test_images": len(test),
        "qualities": QUALITIES,
        "search": search,
        "chosen": chosen,
        "test": {"standard": standard, "tuned": tuned},
        "saving_at_equal_accuracy": gain,
        "new_calls": calls,
    }
    print(
        json.dumps(
            {"chosen": chosen, "saving_at_equal_accuracy": gain, "new_calls": calls}
        )
    )
    if args.json:
        atomic_write_json(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
