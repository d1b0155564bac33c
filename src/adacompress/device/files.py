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

from adacompress.device.compressor import Compressor, Upload
from adacompress.device.manifest import (
    MANIFEST,
    UPLOAD_EXTENSIONS,
    Entry,
    limits_text,
    read_manifest,
    write_manifest,
)
from adacompress.device.out_folder import OutFolder
from adacompress.device.output_names import OutputPlan, expand_inputs, plan_outputs
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
    _clear_way(folder, plan)
    run = _Run(compressor, folder, manifest, plan)
    try:
        for source, _ in found:
            run.take(source)
            if run.chunk_full():
                run.flush()
                if on_progress:
                    on_progress(run.done, len(found))
                run.save_if_due()
        run.flush()
    finally:  # also when interrupted: what was written stays recorded
        run.save()
    if on_progress:
        on_progress(run.done, len(found))
    return run.summary(found, ignored=earlier.ignored + plan.dropped)


def _clear_way(folder: OutFolder, plan: OutputPlan) -> None:
    """Refuse every output this run may write before anything is written, then
    remove temporary files an interrupted run left beside them."""
    outputs = [
        PurePosixPath(f"{stem}{extension}")
        for stem in plan.stems.values()
        for extension in UPLOAD_EXTENSIONS
    ]
    for output in outputs:
        folder.checked(output)
    earlier_outputs = [PurePosixPath(e.output) for e in plan.kept.values() if e.output]
    folder.remove_stale_temps([PurePosixPath(MANIFEST), *outputs, *earlier_outputs])


class _Run:
    """One compress run's progress: the manifest's entries, the chunk of inputs
    waiting to be compressed, and what was written, reused and looked at."""

    def __init__(
        self,
        compressor: Compressor,
        folder: OutFolder,
        manifest: Path,
        plan: OutputPlan,
    ) -> None:
        self.compressor = compressor
        self.folder = folder
        self.manifest = manifest
        self.plan = plan
        self.agent, self.agent_sha256 = compressor.card.name, compressor.digest
        self.made_under = limits_text(compressor.limits)
        self.entries = dict(plan.kept)
        """every entry, earlier runs' first: this run's replace theirs in place"""
        self.chunk: list[tuple[str, PurePosixPath, str, bytes]] = []
        self.written = 0
        self.reused = 0
        self.done = 0
        self.saved = time.monotonic()

    def take(self, source: Path) -> None:
        """Read one input: record it as skipped or reused, or queue it in the
        chunk."""
        key = str(source)
        self.done += 1
        try:
            data = read_image_file(source)
        except ImageError as err:
            self.entries[key] = Entry(key, skipped=str(err))
            return
        digest = hashlib.sha256(data).hexdigest()
        if self._already_done(key, digest):
            self.reused += 1
            return
        self.chunk.append((key, self.plan.stems[key], digest, data))

    def _already_done(self, key: str, digest: str) -> bool:
        """An earlier run wrote this input's upload from the same content, agent
        and limits, and the output is there unchanged."""
        done = self.plan.kept.get(key)
        return (
            done is not None
            and done.skipped is None
            and done.sha256 == digest
            and done.agent == self.agent
            and done.agent_sha256 == self.agent_sha256
            and (done.limits or "") == self.made_under
            and self.folder.intact(done)
        )

    def chunk_full(self) -> bool:
        return len(self.chunk) >= self.compressor.batch_size

    def flush(self) -> None:
        """Compress the chunk, write each upload and record its entry."""
        results = self.compressor.compress_many([data for *_, data in self.chunk])
        for (key, stem, digest, _), result in zip(self.chunk, results, strict=True):
            if isinstance(result, ImageError):
                self.entries[key] = Entry(key, skipped=str(result), sha256=digest)
                continue
            self.entries[key] = self._write(key, stem, digest, result)
        self.chunk.clear()

    def _write(
        self, key: str, stem: PurePosixPath, digest: str, result: Upload
    ) -> Entry:
        output = PurePosixPath(f"{stem}{result.extension}")
        self.folder.write(output, result.data)
        self.written += 1
        return Entry(
            key,
            output.as_posix(),
            result.action.key,
            result.nbytes,
            result.source_bytes,
            result.width,
            result.height,
            digest,
            self.agent,
            mime=result.mime,
            limits=self.made_under,
            output_sha256=hashlib.sha256(result.data).hexdigest(),
            agent_sha256=self.agent_sha256,
        )

    def save_if_due(self) -> None:
        if time.monotonic() - self.saved >= SAVE_EVERY_S:
            self.save()
            self.saved = time.monotonic()

    def save(self) -> None:
        write_manifest(self.manifest, self.entries.values())

    def summary(
        self, found: list[tuple[Path, PurePosixPath]], *, ignored: int
    ) -> dict[str, Any]:
        ours = [self.entries[str(source)] for source, _ in found]
        kept = [e for e in ours if e.skipped is None]
        return {
            "inputs": len(ours),
            "written": self.written,
            "reused": self.reused,
            "skipped": [
                {"path": e.source, "error": e.skipped}
                for e in ours
                if e.skipped is not None
            ],
            "bytes": sum(e.bytes or 0 for e in kept),
            "source_bytes": sum(e.source_bytes or 0 for e in kept),
            "manifest": str(self.manifest),
            "manifest_ignored": ignored,
        }
