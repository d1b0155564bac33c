"""``adacompress run``: the deployed loop over a stream of images, resumable.

Input: a folder (sorted), a ``.txt`` list of paths, ``-`` for paths on stdin, or the
photos bundled with scikit-image (the default). State: ``--state DIR`` (SQLite); the
same command after a crash or ``kill -9`` continues with the next unprocessed image.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from adacompress.cloud.service import CircuitOpen
from adacompress.core.datasets import (
    PhotoFile,
    builtin_photos,
    photo_source,
    read_photo,
    resolve_images,
)
from adacompress.device.compressor import Compressor
from adacompress.device.zoo import AgentChoice
from adacompress.exchange.calls import CallPlan, identify, plan_calls
from adacompress.exchange.environment import open_agent_env
from adacompress.exchange.settings import CloudSettings
from adacompress.runtime.control import survival_threshold
from adacompress.runtime.loop import Runtime
from adacompress.runtime.settings import RunSettings, RuntimeSettings
from adacompress.runtime.store import STORE_FILE, Record, RunStore
from basekit.atomic import atomic_write_json
from basekit.images import DEFAULT_MAX_PIXELS
from basekit.progress import Progress


def input_paths(images: str | None) -> Iterator[Path]:
    """The stream: bundled photos, stdin (``-``), a list file or a folder."""
    if images is None:
        yield from builtin_photos()
    elif images == "-":
        for line in sys.stdin:
            if line.strip():
                yield Path(line.strip())
    else:
        yield from resolve_images(images, "all")


def run_stream(
    paths: Iterator[Path] | Sequence[Path],
    *,
    cloud: CloudSettings,
    choice: AgentChoice,
    state_dir: Path,
    settings: RuntimeSettings,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = True,
    total: int | None = None,
    by_position: bool = False,
    live: dict[str, Any] | None = None,
) -> tuple[list[Record], str | None]:
    """Process ``paths``, resuming from ``state_dir``; return every record and why
    the run stopped early (None when it did not). ``live``, when given, receives
    the run's certificate and threshold at its end (:func:`live_summary`).

    A rerun skips the images whose latest record is final, retries those that failed
    and processes new ones wherever they come. With ``by_position`` (a stream that
    shows the same image more than once, as an experiment does) it instead continues
    after the last recorded position.
    """
    with (
        open_agent_env(cloud, choice, max_pixels=max_pixels) as (compressor, env),
        RunStore(state_dir) as store,
    ):
        metadata = run_metadata(cloud, compressor, settings)
        runtime = Runtime(env, compressor, settings, store, metadata=metadata)
        bar = Progress(total, "run", enabled=progress)
        confidence = runtime.settings.control.certificate_confidence
        saved, stopped = 0, None
        recent: list[float] = []
        for path, photo in pending(paths, store, by_position):
            if photo is None:
                bar.update()
                continue
            try:
                record = runtime.process(path, photo)
            except CircuitOpen as err:
                stopped = str(err)
                break
            saved += (record.reference_bytes or 0) - record.bytes_uploaded
            if record.accuracy is not None:
                recent = [*recent, record.accuracy][-50:]
            bar.update(
                1,
                state=record.kind[:5],
                acc=f"{np.mean(recent):.2f}" if recent else "-",
                p_est=f"{record.p_est:.2f}",
                saved=f"{saved / 1e6:.1f}MB",
                **live_postfix(runtime, confidence if progress else None),
            )
        bar.close()
        if live is not None:
            live.update(live_summary(runtime))
        return store.records(), stopped


def run_metadata(
    cloud: CloudSettings, compressor: Compressor, settings: RuntimeSettings
) -> dict[str, Any]:
    """What identifies a run: a resumed run must have the same backend, features
    and actions."""
    return {
        "backend": cloud.backend,
        "features": compressor.card.features,
        "actions": [a.key for a in compressor.actions],
        "agent_file": compressor.source,
        "settings": asdict(settings),
    }


def live_postfix(runtime: Runtime, confidence: float | None) -> dict[str, str]:
    """The progress line's certificate (``kept ≥0.986 (95%, 212 est)``) and the
    controlled threshold, if any (nothing is computed without a progress line)."""
    if confidence is None:
        return {}
    certificate = runtime.state.certificate
    shown = {
        "kept": f"≥{certificate.kept_at_least(confidence):.3f} "
        f"({confidence:.0%}, {certificate.estimates} est)"
    }
    if runtime.choice.controlled is not None:
        shown["threshold"] = f"{runtime.state.control.threshold:.4f}"
    return shown


def live_summary(runtime: Runtime) -> dict[str, Any]:
    """The live certificate, and where the threshold control left the threshold."""
    confidence = runtime.settings.control.certificate_confidence
    control = runtime.state.control
    return {
        "certificate": runtime.state.certificate.summary(confidence),
        "threshold": None
        if runtime.choice.controlled is None
        else {
            "start": survival_threshold(control.start)
            if control.start is not None
            else runtime.policy.settings.threshold,
            "now": control.threshold,
            "updates": control.updates,
            "answer_feedback": runtime.choice.feedback is not None
            and runtime.settings.control.feedback_step > 0,
            "weighted_miss_rate": control.miss_rate(),
            "aim": runtime.choice.alpha,
        },
    }


def pending(
    paths: Iterable[Path], store: RunStore, by_position: bool
) -> Iterator[tuple[Path, PhotoFile | None]]:
    """Each path with the photo read from it, or None where the store says it is
    done (a photo is read once: its bytes go on to the runtime)."""
    if by_position:
        done = store.next_position()
        for position, path in enumerate(paths):
            yield path, None if position < done else read_photo(path)
        return
    finished = store.done()
    for path in paths:
        photo = read_photo(path)
        yield path, None if is_done(photo, finished) else photo


def is_done(photo: PhotoFile, finished: set[tuple[str, str | None]]) -> bool:
    """Whether a run whose store finished ``finished`` is done with ``photo``."""
    legacy = (str(photo.path), None)  # records from before identities
    return photo.identity in finished or legacy in finished


def summarize(records: list[Record], backend: str) -> dict[str, Any]:
    """Totals of a run: states, traffic, estimates, retrains, errors.

    A failed upload that a later run retried counts only as that retry; its bytes
    and calls still count (they were paid).
    """
    last_try = {r.identity: r.position for r in records}
    current = [
        r for r in records if r.kind != "failed" or last_try[r.identity] == r.position
    ]
    kinds = Counter(r.kind for r in current)
    known = [r.accuracy for r in records if r.accuracy is not None]
    uploaded = sum(r.bytes_uploaded for r in records)
    reference = sum(r.reference_bytes or 0 for r in records)
    retrains = sum(
        1
        for before, after in zip(records, records[1:], strict=False)
        if before.kind == "retrain" and after.kind != "retrain"
    )
    return {
        "backend": backend,
        "images": len(current),
        "attempts": len(records),
        "states": dict(kinds),
        "bytes_uploaded": uploaded,
        "reference_bytes": reference,
        "traffic_ratio": uploaded / reference if reference else None,
        "estimates": kinds.get("estimate", 0),
        "calls": {
            "new": sum(r.calls for r in records),
            "per_image": (
                sum(r.calls for r in records) / len(current) if current else None
            ),
        },
        "retrains": retrains,
        "accuracy_when_known": float(np.mean(known)) if known else None,
        "problems": [
            {"position": r.position, "path": r.path, "state": r.kind, "error": r.error}
            for r in current
            if r.error
        ],
    }


def plan_run(settings: RunSettings) -> CallPlan:
    """The calls :func:`run` would make at most: one an image in inference, two in
    an estimate or a retrain step, less what is cached, for the images its state
    folder has not finished (a rerun skips those); nothing is sent."""
    paths = list(input_paths(settings.images))
    finished = finished_in(
        Path(settings.state or default_state_dir(settings.cloud.backend))
    )
    with open_agent_env(
        settings.cloud, settings.choice, max_pixels=settings.max_pixels
    ) as (_, env):
        samples, _ = identify(env, paths, progress=settings.progress)
        todo = [
            s
            for s in samples
            if not is_done(
                PhotoFile(s.path, photo_source(s.path), s.digest, None), finished
            )
        ]
        plan = plan_calls(env, todo, per_image=(1, 2))
    return replace(plan, done=len(samples) - len(todo))


def finished_in(state_dir: Path) -> set[tuple[str, str | None]]:
    """The photos the run stored in ``state_dir`` finished (none without a store:
    nothing is created)."""
    if not (state_dir / STORE_FILE).is_file():
        return set()
    with RunStore(state_dir) as store:
        return store.done()


def default_state_dir(backend: str) -> Path:
    """``out/run-<backend>``, the backend made safe as a folder name."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", backend).strip("_")
    return Path(f"out/run-{safe}")


def run(settings: RunSettings) -> tuple[dict[str, Any], list[Record]]:
    """``adacompress run``: process the stream, write the report (with every
    record); return it and the records."""
    state_dir = Path(settings.state or default_state_dir(settings.cloud.backend))
    paths = input_paths(settings.images)
    total = None
    if settings.images != "-":
        paths_list = list(paths)
        total, paths = len(paths_list), iter(paths_list)
    live: dict[str, Any] = {}
    records, stopped = run_stream(
        paths,
        cloud=settings.cloud,
        choice=settings.choice,
        state_dir=state_dir,
        settings=settings.runtime,
        max_pixels=settings.max_pixels,
        progress=settings.progress,
        total=total,
        live=live,
    )
    report = summarize(records, settings.cloud.backend)
    report.update(live)
    report["stopped"] = stopped
    report["records"] = [r.stored() for r in records]
    report["state"] = str(state_dir)
    atomic_write_json(Path(settings.json or state_dir / "report.json"), report)
    return report, records
