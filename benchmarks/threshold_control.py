"""Threshold control on streams of photos (issue 34): ``run``'s loop over a stream
of at least 1,000 photos with the shipped agent's threshold frozen
(``--no-threshold-control``) and controlled (``run``'s default), per backend.

    python benchmarks/threshold_control.py [--backends lite0,lite1] [--photos 1000]
        [--stream train|test|bsds500] [--shift none|dark|noisy|...] [--seed 0]
        [--seeds N] [--arms frozen,controlled] [--set KEY=VALUE ...] [--smoke]

The stream: the held-out test split (300 photos) or BSDS500 test, repeated in
shuffled orders (seeded) up to ``--photos``; ``--shift`` uses the same photos
shifted (:mod:`adacompress.experiments.shifts`: dark, noisy, blurred, small,
grayscale, mixed). For every photo the agent answered from its own upload (inference
and estimate) the emulated cloud is asked afterwards, outside the run's paid calls,
whether that upload kept the reference's answer: that is the *true* kept rate.
Printed per backend and arm: the true kept rate over the photos answered from the
agent's upload alone (inference) and over inference and estimates (what the
certificate bounds), the bytes the run paid against always uploading q=75 and the
agent's own uploads against q=75, the estimates paid, the threshold at the end, the
certificate at the end, and whether it held at every photo. ``--set`` changes any of
``run``'s settings (``--set feedback_step=0.1``). The training photos (``--stream
train``) choose settings; the test split only scores.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from _common import SMOKE_OUT, add_settings, add_smoke, settings_changes
from adacompress.core.datasets import imagenet_split, list_images
from adacompress.device.actions import REFERENCE_ACTION, Action
from adacompress.device.zoo import AgentChoice
from adacompress.exchange.cache import default_cache_path
from adacompress.exchange.environment import open_agent_env
from adacompress.exchange.settings import CloudSettings
from adacompress.experiments.shifts import SHIFTS, make_shifted_folder
from adacompress.runtime.certificate import most_lost
from adacompress.runtime.loop import Runtime
from adacompress.runtime.run import live_summary
from adacompress.runtime.settings import RUNTIME_PRESETS
from adacompress.runtime.store import RunStore

BSDS500_TEST = Path("../shared/data/bsds500/test")
ANSWERED = ("inference", "estimate")


def photos(stream: str, shift: str, cache: Path) -> list[Path]:
    """The stream's distinct photos (shifted where asked)."""
    if stream in ("train", "test"):
        base = imagenet_split(stream)
    else:
        base = list_images(BSDS500_TEST)
    if shift != "none":
        base, _ = make_shifted_folder(base, cache.parent / "shifts", shift)
    return base


def build_stream(distinct: list[Path], count: int, seed: int) -> list[Path]:
    """``distinct`` in shuffled passes until ``count`` photos."""
    rng = random.Random(seed)
    stream: list[Path] = []
    while len(stream) < count:
        order = list(distinct)
        rng.shuffle(order)
        stream += order
    return stream[:count]


def run_arm(
    stream: list[Path],
    cloud: CloudSettings,
    *,
    controlled: bool,
    seed: int,
    progress: bool,
    changes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One run of the loop over ``stream``, scored afterwards; ``changes``: runtime
    constants by option name (``run``'s own otherwise)."""
    changes = {**(changes or {}), "threshold_control": controlled, "seed": seed}
    settings = RUNTIME_PRESETS.get("default").changed(**changes)
    confidence = settings.control.certificate_confidence
    with (
        open_agent_env(cloud, AgentChoice()) as (compressor, env),
        tempfile.TemporaryDirectory() as tmp,
        RunStore(Path(tmp)) as store,
    ):
        metadata = {
            "backend": cloud.backend,
            "features": compressor.card.features,
            "actions": [a.key for a in compressor.actions],
        }
        runtime = Runtime(env, compressor, settings, store, metadata=metadata)
        records, evidence = [], []
        for i, path in enumerate(stream):
            records.append(runtime.process(path))
            kept = runtime.state.certificate
            evidence.append((kept.weighted_lost, kept.lowest_p))
            if progress and (i + 1) % 100 == 0:
                print(f"  {cloud.backend} {i + 1}/{len(stream)}", file=sys.stderr)
        live = live_summary(runtime)
        # Scored outside the run's paid calls: the agent's upload against the
        # reference's answer, for every photo it answered from its upload.
        unique = sorted({Path(r.path) for r in records if r.kind in ANSWERED})
        samples = {s.path: s for s in env.prepare(unique, progress=False)[0]}
        kept_by_step: list[float | None] = []
        for r in records:
            if r.kind not in ANSWERED or r.action is None:
                kept_by_step.append(None)
                continue
            action = Action.from_key(r.action)
            sample = samples[Path(r.path)]
            found = env.outcomes(sample, [REFERENCE_ACTION, action])
            score = env.score(found[REFERENCE_ACTION], found[action])
            kept_by_step.append(score.accuracy)
    return score_arm(records, kept_by_step, evidence, live, confidence)


def score_arm(
    records: list[Any],
    kept_by_step: list[float | None],
    evidence: list[tuple[float, float]],
    live: dict[str, Any],
    confidence: float,
) -> dict[str, Any]:
    """The figures of one arm (see the module docstring)."""
    inference = [
        k
        for r, k in zip(records, kept_by_step, strict=True)
        if k is not None and r.kind == "inference"
    ]
    answered = [k for k in kept_by_step if k is not None]
    # The certificate at every photo: the lost answers so far never above its bound.
    held, lost, bound, last = True, 0.0, 0.0, None
    for k, state in zip(kept_by_step, evidence, strict=True):
        if state != last:
            bound, last = most_lost(10**9, *state, 1.0 - confidence), state
        lost += 0.0 if k is None else 1.0 - k
        held = held and lost <= bound + 1e-9
    sent = [r for r in records if r.kind == "inference" and r.reference_bytes]
    paid = sum(r.bytes_uploaded for r in records)
    reference = sum(r.reference_bytes or 0 for r in records)
    threshold = live["threshold"]
    return {
        "photos": len(records),
        "true_kept_inference": float(np.mean(inference)) if inference else None,
        "true_kept_answered": float(np.mean(answered)) if answered else None,
        "traffic_vs_q75": paid / reference if reference else None,
        "sent_vs_q75": (
            sum(r.bytes_uploaded for r in sent) / sum(r.reference_bytes for r in sent)
            if sent
            else None
        ),
        "estimates": sum(r.kind == "estimate" for r in records),
        "retrain_steps": sum(r.kind == "retrain" for r in records),
        "threshold_start": None if threshold is None else threshold["start"],
        "threshold_end": None if threshold is None else threshold["now"],
        "certificate": live["certificate"]["kept_at_least"],
        "certificate_text": live["certificate"]["text"],
        "certificate_held_throughout": held,
    }


def show(backend: str, arm: str, seed: int, got: dict[str, Any]) -> None:
    start, end = got["threshold_start"], got["threshold_end"]
    moved = "frozen" if start is None else f"{start:.4f} -> {end:.4f}"
    print(
        f"{backend:6} {arm:10} seed {seed}: kept {got['true_kept_inference']:.3f} "
        f"(answered {got['true_kept_answered']:.3f}), sent "
        f"{got['sent_vs_q75']:.3f} of q75, traffic {got['traffic_vs_q75']:.3f}, "
        f"{got['estimates']} estimates, threshold {moved}; "
        f"{got['certificate_text']}; held at every photo: "
        f"{got['certificate_held_throughout']}",
        flush=True,
    )


def show_mean(backend: str, arm: str, runs: list[dict[str, Any]]) -> None:
    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in runs]))

    kept = [r["true_kept_inference"] for r in runs]
    held = sum(r["certificate_held_throughout"] for r in runs)
    print(
        f"{backend:6} {arm:10} {len(runs)} streams: kept mean {np.mean(kept):.4f} "
        f"(min {min(kept):.3f}), sent {mean('sent_vs_q75'):.3f} of q75, traffic "
        f"{mean('traffic_vs_q75'):.3f}, {mean('estimates'):.0f} estimates, "
        f"certificate {mean('certificate'):.3f}, held throughout in {held}/"
        f"{len(runs)}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="lite0", help="comma-separated")
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument(
        "--stream",
        choices=("train", "test", "bsds500"),
        default="test",
        help="train: the photos to choose the control's settings on; test, bsds500 "
        "score",
    )
    parser.add_argument(
        "--seeds", type=int, default=1, help="streams (shuffles and draws) per arm"
    )
    parser.add_argument(
        "--arms",
        default="frozen,controlled",
        help="comma-separated: frozen (the calibrated threshold), controlled (run's "
        "threshold control)",
    )
    parser.add_argument("--shift", choices=("none", *SHIFTS), default="none")
    add_settings(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=None, help="answer cache (SQLite)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures")
    parser.add_argument("--quiet", action="store_true")
    add_smoke(parser)
    args = parser.parse_args(argv)
    cache = Path(args.cache or default_cache_path())
    if args.smoke:
        args.photos = 12
        args.json = SMOKE_OUT / "threshold_control.json"
    changes = settings_changes(args)
    distinct = photos(args.stream, args.shift, cache)
    if args.smoke:
        distinct = distinct[:4]
    print(
        f"stream: {args.stream} ({len(distinct)} photos, shift {args.shift}) "
        f"repeated to {args.photos}, seeds {args.seed}..{args.seed + args.seeds - 1}"
    )
    results: dict[str, Any] = {"settings": vars(args) | {"json": str(args.json)}}
    for backend in args.backends.split(","):
        cloud = CloudSettings(backend, cache=str(cache))
        for arm in args.arms.split(","):
            if arm not in ("frozen", "controlled"):
                parser.error(f"unknown arm {arm!r}")
            controlled = arm == "controlled"
            runs = []
            for seed in range(args.seed, args.seed + args.seeds):
                stream = build_stream(distinct, args.photos, seed)
                got = run_arm(
                    stream,
                    cloud,
                    controlled=controlled,
                    seed=seed,
                    progress=not args.quiet,
                    changes=changes,
                )
                runs.append(got)
                show(backend, arm, seed, got)
            results[f"{backend}/{arm}"] = runs
            if len(runs) > 1:
                show_mean(backend, arm, runs)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
