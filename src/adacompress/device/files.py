"""``adacompress compress``: the chosen upload of every input image, written to a
folder, with a manifest; no cloud is called.

Each input gets a distinct output name that reruns find again
(:mod:`~adacompress.device.output_names`); nothing is written onto or into an input,
and one run at a time writes to the folder
(:mod:`~adacompress.device.out_folder`). ``manifest.jsonl``
(:mod:`~adacompress.device.manifest`) has one line per input the folder has seen,
this run's and earlier runs': what was written and why, or why the input was
skipped. A rerun redoes nothing that is done (same content, same agent -- its
name and the SHA-256 of what it is made of --, same limits, the output there
unchanged) and retries the rest.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from adacompress.device.compressor import Compressor
from adacompress.device.manifest import (
    MANIFEST,
    UPLOAD_EXTENSIONS,
    Entry,
    limits_text,
    read_manifest,
    write_manifest,
)
from adacompress.device.out_folder import OutFolder
from adacompress.device.output_names import expand_inputs, plan_outputs
from basekit.images import ImageError, read_image_file

SAVE_EVERY_S = 5.0
"""How often a long run saves its manifest (rewriting it every chunk costs
quadratic time over 100,000 photos)."""


def compress_files(
    compressor: Compressor,
    inputs: Iterable[str | Path],
    out: Path,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write every input's chosen upload under ``out``; returns the run's summary
    (``written``, ``reused``, ``skipped`` with reasons, bytes in and out, and how
    many damaged manifest lines were ignored).

    Inputs stream through a chunk at a time (each file read once, memory bounded
    by the chunk); the manifest is saved every :data:`SAVE_EVERY_S` seconds, at the
    end and when the run is interrupted. ``on_progress(done, total)`` follows every
    chunk.

    Raises:
        ValueError: ``out`` is or lies under an input, an output would land on an
            input, another run holds ``out``, or its manifest is unusable (one
            line).
    """
    given = [Path(item) for item in inputs]
    found = expand_inputs(given)
    folder = OutFolder(out, given, [source for source, _ in found])
    with folder.locked():
        return _compress(compressor, found, folder, on_progress)


def _compress(
    compressor: Compressor,
    found: list[tuple[Path, PurePosixPath]],
    folder: OutFolder,
    on_progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    manifest = folder.checked(MANIFEST)
    earlier = read_manifest(manifest)
    plan = plan_outputs(found, earlier.entries)
    outputs = [
        PurePosixPath(f"{stem}{extension}")
        for stem in plan.stems.values()
        for extension in UPLOAD_EXTENSIONS
    ]
    for output in outputs:  # refused before anything is written
        folder.checked(output)
    earlier_outputs = [PurePosixPath(e.output) for e in plan.kept.values() if e.output]
    folder.remove_stale_temps([PurePosixPath(MANIFEST), *outputs, *earlier_outputs])

    agent, agent_sha256 = compressor.card.name, compressor.digest
    made_under = limits_text(compressor.limits)
    entries = dict(plan.kept)
    """every entry, earlier runs' first: this run's replace theirs in place"""
    chunk: list[tuple[str, PurePosixPath, str, bytes]] = []
    counts = {"written": 0, "reused": 0, "done": 0}
    saved = time.monotonic()

    def flush() -> None:
        results = compressor.compress_many([data for *_, data in chunk])
        for (key, stem, digest, _), result in zip(chunk, results, strict=True):
            if isinstance(result, ImageError):
                entries[key] = Entry(key, skipped=str(result), sha256=digest)
                continue
            output = PurePosixPath(f"{stem}{result.extension}")
            folder.write(output, result.data)
            counts["written"] += 1
            entries[key] = Entry(
                key,
                output.as_posix(),
                result.action.key,
                result.nbytes,
                result.source_bytes,
                result.width,
                result.height,
                digest,
                agent,
                mime=result.mime,
                limits=made_under,
                output_sha256=hashlib.sha256(result.data).hexdigest(),
                agent_sha256=agent_sha256,
            )
        chunk.clear()

    try:
        for source, _ in found:
            key = str(source)
            counts["done"] += 1
            try:
                data = read_image_file(source)
            except ImageError as err:
                entries[key] = Entry(key, skipped=str(err))
                continue
            digest = hashlib.sha256(data).hexdigest()
            done = plan.kept.get(key)
            if (
                done is not None
                and done.skipped is None
                and done.sha256 == digest
                and done.agent == agent
                and done.agent_sha256 == agent_sha256
                and (done.limits or "") == made_under
                and folder.intact(done)
            ):
                counts["reused"] += 1
                continue
            chunk.append((key, plan.stems[key], digest, data))
            if len(chunk) >= compressor.batch_size:
                flush()
                if on_progress:
                    on_progress(counts["done"], len(found))
                if time.monotonic() - saved >= SAVE_EVERY_S:
                    write_manifest(manifest, entries.values())
                    saved = time.monotonic()
        flush()
    finally:  # also when interrupted: what was written stays recorded
        write_manifest(manifest, entries.values())
    if on_progress:
        on_progress(counts["done"], len(found))
    ours = [entries[str(source)] for source, _ in found]
    kept = [e for e in ours if e.skipped is None]
    return {
        "inputs": len(ours),
        "written": counts["written"],
        "reused": counts["reused"],
        "skipped": [
            {"path": e.source, "error": e.skipped}
            for e in ours
            if e.skipped is not None
        ],
        "bytes": sum(e.bytes or 0 for e in kept),
        "source_bytes": sum(e.source_bytes or 0 for e in kept),
        "manifest": str(manifest),
        "manifest_ignored": earlier.ignored + plan.dropped,
    }
