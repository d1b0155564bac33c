"""A soak: ``adacompress run`` against a faulty ``adacompress serve``, killed and
restarted at random moments, against the same stream without faults or kills.

    python benchmarks/soak.py [--photos 2000] [--kills 6] [--seed 0]
        [--json out/soak.json]

The stream: ``--photos`` distinct photos (the imagenet-samples photos, then
re-encoded copies of them at q=90 when more are asked for). A reference run sends it
to a fault-free service; the soak sends it to one that injects 429s, 503s, dropped
connections and slow answers (seeded), and ``kill -9``s the run at random moments
(``--kills`` times, each ``--kill-after`` seconds into a start), restarting it
until it finishes. Reported: photos with a final
record in each run (none lost), photos with more than one (none sent twice), photos
whose final record differs from the reference's in anything but the paid calls
(kind, action, bytes, accuracy, labels), the paid calls of each, and the run's
resident memory over the soak once its models are loaded (the medians of the first
and last fifths of the samples, and the largest, MB; Linux).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

from _common import add_smoke, memory_mb, smoke_path
from adacompress.core.datasets import imagenet_split
from adacompress.runtime.store import FINAL_KINDS, Record, RunStore
from served import serving

WARM_UP_S = 8.0
"""Memory is sampled once a run has loaded its models (seconds after a start)."""
FAULTS = [
    "--throttled",
    "0.04",
    "--unavailable",
    "0.04",
    "--dropped",
    "0.02",
    "--latency",
    "0.01",
    "--retry-after",
    "0.05",
]


def make_stream(folder: Path, n: int) -> Path:
    """``n`` distinct photos under ``folder``; returns the list file."""
    sources = imagenet_split("all")
    paths = []
    for i in range(n):
        source = sources[i % len(sources)]
        if i < len(sources):
            path = folder / f"{i:05d}{source.suffix}"
            shutil.copyfile(source, path)
        else:
            path = folder / f"{i:05d}.jpg"
            with Image.open(source) as image:
                image.convert("RGB").save(path, "JPEG", quality=90 - i // len(sources))
        paths.append(path)
    listing = folder / "stream.txt"
    listing.write_text("\n".join(map(str, paths)) + "\n")
    return listing


def run_command(base: str, listing: Path, state: Path, cache: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "adacompress",
        "--quiet",
        "run",
        "--backend",
        base,
        "--agent",
        "lite0",
        "--images",
        str(listing),
        "--state",
        str(state),
        "--cache",
        str(cache),
        "--threads",
        "1",
        "--timeout",
        "20",
    ]


def soak(
    command: list[str], kills: int, window: tuple[float, float], rng: random.Random
) -> dict[str, Any]:
    """Run ``command`` to the end, killing it ``kills`` times at random moments;
    a run that ends with failed uploads (1) or an open circuit (3) is run again,
    as a user would, a few times."""
    memory: list[float] = []
    done_kills = starts = reruns = 0
    while True:
        starts += 1
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        started = time.monotonic()
        kill_at = started + rng.uniform(*window)
        killed = False
        while process.poll() is None:
            time.sleep(0.5)
            rss = memory_mb(process.pid).get("VmRSS")
            if rss is not None and time.monotonic() - started > WARM_UP_S:
                memory.append(rss)
            if done_kills < kills and time.monotonic() >= kill_at:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                done_kills += 1
                killed = True
                break
        if killed:
            continue
        if process.returncode == 0 or reruns == 3:
            break
        if process.returncode not in (1, 3):
            raise RuntimeError(f"the run exited with {process.returncode}")
        reruns += 1
    fifth = max(1, len(memory) // 5)
    memory = memory or [0.0]
    return {
        "starts": starts,
        "kills": done_kills,
        "reruns_after_failures": reruns,
        "last_exit": process.returncode,
        "rss_early_mb": round(statistics.median(memory[:fifth]), 1),  # after warm-up
        "rss_late_mb": round(statistics.median(memory[-fifth:]), 1),
        "rss_max_mb": round(max(memory), 1),
    }


def finals(state: Path) -> tuple[dict[tuple[str, str | None], list[Record]], int]:
    """Each photo's final records, and the paid calls of every record."""
    with RunStore(state) as store:
        records = store.records()
    by_photo: dict[tuple[str, str | None], list[Record]] = {}
    for record in records:
        if record.kind in FINAL_KINDS:
            by_photo.setdefault(record.identity, []).append(record)
    return by_photo, sum(record.calls for record in records)


def outcome(record: Record) -> tuple[Any, ...]:
    labels = [tuple(label) for label in record.labels]
    return (
        record.kind,
        record.action,
        record.bytes_uploaded,
        record.reference_bytes,
        record.accuracy,
        labels,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--kill-after",
        type=float,
        nargs=2,
        default=(5.0, 25.0),
        metavar=("MIN", "MAX"),
        help="seconds after a start at which a kill may come (uniform)",
    )
    parser.add_argument("--json", type=Path, default=Path("out/soak.json"))
    add_smoke(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.photos, args.kills, args.kill_after = 6, 1, (1.0, 2.0)
        args.json = smoke_path(args.json)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "photos").mkdir()
        listing = make_stream(work / "photos", args.photos)
        start = time.monotonic()
        with serving("--threads", "1") as (base, _):
            reference = work / "reference"
            subprocess.run(
                run_command(base, listing, reference, work / "ref.sqlite"),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        reference_s = time.monotonic() - start
        start = time.monotonic()
        with serving("--threads", "1", *FAULTS, "--seed", str(args.seed)) as (base, _):
            soaked = work / "soaked"
            command = run_command(base, listing, soaked, work / "soak.sqlite")
            process = soak(command, args.kills, tuple(args.kill_after), rng)
        soak_s = time.monotonic() - start
        (expected, reference_calls), (got, soak_calls) = (
            finals(reference),
            finals(soaked),
        )
    differing = sum(
        1
        for photo, records in expected.items()
        if photo not in got or outcome(got[photo][-1]) != outcome(records[-1])
    )
    report = {
        "photos": args.photos,
        "final_records": {"reference": len(expected), "soak": len(got)},
        "lost": args.photos - len(got),
        "sent_twice": sum(len(r) > 1 for r in got.values()),
        "differing_from_reference": differing,
        "paid_calls": {"reference": reference_calls, "soak": soak_calls},
        "seconds": {"reference": round(reference_s), "soak": round(soak_s)},
        "run_process": process,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    ok = report["lost"] == report["sent_twice"] == report["differing_from_reference"]
    return 0 if ok and report["lost"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
