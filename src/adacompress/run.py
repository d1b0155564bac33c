"""``adacompress run``: the deployed loop over a stream of images, resumable.

Input: a folder (sorted), a ``.txt`` list of paths, ``-`` for paths on stdin, or the
photos bundled with scikit-image (the default). State: ``--state DIR`` (SQLite); the
same command after a crash or ``kill -9`` continues with the next unprocessed image.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from adacompress.agent import DQNAgent
from adacompress.backends import get_backend
from adacompress.cache import AnswerCache, default_cache_path
from adacompress.codec import DEFAULT_MAX_PIXELS
from adacompress.datasets import builtin_photos, resolve_images
from adacompress.environment import CompressionEnv
from adacompress.features import get_extractor
from adacompress.run_store import Record, RunStore
from adacompress.runtime import PRESETS, Runtime, RuntimeSettings
from adacompress.shipped import agent_actions, choose_agent
from adacompress.storage import atomic_write_json


@dataclass
class RunSettings:
    """Settings of ``adacompress run``."""

    backend: str = "lite0"
    """cloud service that answers the uploads"""
    agent: str | None = None
    """agent file; default: the agent shipped for the backend"""
    actions: str | None = None
    """action set of the shipped agent used when --agent is not given: paper or
    scale-quality (default: paper; with --agent, a check of its action set)"""
    images: str | None = None
    """folder, .txt list of paths, '-' (paths on stdin); default: the bundled photos"""
    state: str | None = None
    """state folder (resume point); default: out/run-<backend>"""
    preset: str = "default"
    """runtime constants: 'default' (ours) or 'paper' (the authors')"""
    json: str | None = None
    """write the run report here (default: <state>/report.json)"""
    plot: str | None = None
    """write the PNG plot here (default: beside the report)"""
    cache: str | None = None
    """SQLite cache of answers and features (default: $ADACOMPRESS_CACHE or .cache/)"""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """images with more pixels than this are recorded as skipped"""
    min_side: int | None = None
    """never upload an image with a shorter side below this (default: the backend's
    own limit, 80 for rekognition)"""
    max_bytes: int | None = None
    """never upload more bytes than this per image (default: the backend's limit)"""
    progress: bool = True
    """show a progress bar"""
    overrides: dict[str, Any] = field(default_factory=dict)
    """runtime constants that replace the preset's (RuntimeSettings field names)"""


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


def runtime_settings(preset: str, **overrides: Any) -> RuntimeSettings:
    """The named preset, with some constants replaced."""
    try:
        return replace(PRESETS[preset], **overrides)
    except KeyError:
        raise ValueError(
            f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}"
        ) from None


def run_stream(
    paths: Iterator[Path] | Sequence[Path],
    *,
    backend: str,
    agent_file: Path,
    state_dir: Path,
    settings: RuntimeSettings,
    cache_path: Path,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int | None = None,
    max_bytes: int | None = None,
    progress: bool = True,
    total: int | None = None,
) -> list[Record]:
    """Process ``paths`` (resuming from ``state_dir``); return every record."""
    agent, meta = DQNAgent.load(agent_file)
    actions = agent_actions(meta)
    metadata = {
        "backend": backend,
        "features": meta.get("features", "lite0"),
        "actions": [a.key for a in actions],
        "agent_file": str(agent_file),
        "settings": settings.__dict__,
    }
    with AnswerCache(cache_path) as cache, RunStore(state_dir) as store:
        env = CompressionEnv(
            get_backend(backend), cache, actions=actions,
            extractor=get_extractor(str(metadata["features"])),
            top_k=int(meta.get("top_k", 5)),  # type: ignore[call-overload]
            alpha=float(meta.get("alpha", 1.0)),  # type: ignore[arg-type]
            beta=float(meta.get("beta", 0.0)),  # type: ignore[arg-type]
            max_pixels=max_pixels, min_side=min_side, max_bytes=max_bytes,
        )  # fmt: skip
        runtime = Runtime(env, agent, settings, store, metadata=metadata)
        done = runtime.position
        previous = store.records()[-1].path if done else None
        bar = tqdm(
            total=total, initial=done, desc="run", unit="img", disable=not progress
        )
        saved = uploaded = 0
        recent: list[float] = []
        for position, path in enumerate(paths):
            if position < done:
                if position == done - 1 and str(path) != previous:
                    raise ValueError(
                        f"state folder {state_dir} was made for another input: image "
                        f"{position} was {previous}, now {path}"
                    )
                continue
            record = runtime.process(path)
            uploaded += record.bytes_uploaded
            saved += (record.reference_bytes or 0) - record.bytes_uploaded
            if record.accuracy is not None:
                recent = [*recent, record.accuracy][-50:]
            bar.update(1)
            bar.set_postfix(
                state=record.state[:5],
                acc=f"{np.mean(recent):.2f}" if recent else "-",
                p_est=f"{record.p_est:.2f}",
                saved=f"{saved / 1e6:.1f}MB",
            )
        bar.close()
        return store.records()


def summarize(records: list[Record], backend: str) -> dict[str, Any]:
    """Totals of a run: states, traffic, estimates, retrains, errors."""
    states = Counter(r.state for r in records)
    known = [r.accuracy for r in records if r.accuracy is not None]
    uploaded = sum(r.bytes_uploaded for r in records)
    reference = sum(r.reference_bytes or 0 for r in records)
    retrains = sum(
        1
        for before, after in zip(records, records[1:], strict=False)
        if before.state == "retrain" and after.state != "retrain"
    )
    return {
        "backend": backend,
        "images": len(records),
        "states": dict(states),
        "bytes_uploaded": uploaded,
        "reference_bytes": reference,
        "traffic_ratio": uploaded / reference if reference else None,
        "estimates": states.get("estimate", 0),
        "retrains": retrains,
        "accuracy_when_known": float(np.mean(known)) if known else None,
        "problems": [
            {"position": r.position, "path": r.path, "state": r.state, "error": r.error}
            for r in records
            if r.error
        ],
    }


def run(settings: RunSettings) -> dict[str, Any]:
    """``adacompress run``: process the stream, write the report and plot."""
    from adacompress.plots import plot_run

    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", settings.backend).strip("_")
    state_dir = Path(settings.state or f"out/run-{safe}")
    agent_file = choose_agent(settings.backend, settings.agent, settings.actions)
    paths = input_paths(settings.images)
    total = None
    if settings.images != "-":
        paths_list = list(paths)
        total, paths = len(paths_list), iter(paths_list)
    records = run_stream(
        paths, backend=settings.backend, agent_file=agent_file, state_dir=state_dir,
        settings=runtime_settings(settings.preset, **settings.overrides),
        cache_path=Path(settings.cache or default_cache_path()),
        max_pixels=settings.max_pixels, min_side=settings.min_side,
        max_bytes=settings.max_bytes, progress=settings.progress, total=total,
    )  # fmt: skip
    report = summarize(records, settings.backend)
    report["records"] = [r.__dict__ for r in records]
    json_path = Path(settings.json or state_dir / "report.json")
    atomic_write_json(json_path, report)
    if records:
        plot_run(records, Path(settings.plot or json_path.with_suffix(".png")))
    return report
