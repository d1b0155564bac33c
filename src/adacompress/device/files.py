"""``adacompress compress``: the chosen upload of every input image, written to a
folder, with a manifest; no cloud is called.

Each input keeps its path relative to the folder it was found in (or its name, for
a file given directly); the extension becomes the upload format's. ``manifest.jsonl``
has one line per input: what was written and why, or why the input was skipped. A
second run over the same inputs redoes nothing that is done (same content, same
agent, same limits, output present) and retries the rest.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from adacompress.core.datasets import IMAGE_SUFFIXES
from adacompress.core.limits import UploadLimits
from adacompress.device.compressor import Compressor, Upload
from basekit.atomic import atomic_write
from basekit.images import ImageError, read_image_file

MANIFEST = "manifest.jsonl"
SAVE_EVERY_S = 5.0
"""How often a long run saves its manifest (rewriting it every chunk costs
quadratic time over 100,000 photos)."""


@dataclass(frozen=True)
class Entry:
    """One input's line of the manifest."""

    source: str
    output: str | None = None
    """relative to the output folder"""
    action: str | None = None
    bytes: int | None = None
    source_bytes: int | None = None
    width: int | None = None
    height: int | None = None
    sha256: str | None = None
    agent: str | None = None
    skipped: str | None = None
    """why the input was not compressed"""
    mime: str | None = None
    """media type of the output"""
    limits: str | None = None
    """the upload limits it was made under (:func:`limits_text`)"""


def expand_inputs(inputs: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """``(source, relative output path without the upload's extension)`` for every
    image file under ``inputs``.

    A folder contributes its image files (recursively, sorted; hidden files and
    anything that is not a regular file are left out), keeping their paths relative
    to it; a file contributes itself under its name. Two inputs that would land on
    the same output keep their original extension in the name to stay apart.
    """
    pairs: list[tuple[Path, Path]] = []
    for item in inputs:
        root = Path(item)
        if root.is_dir():
            files = sorted(
                p
                for p in root.rglob("*")
                if p.suffix.lower() in IMAGE_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(root).parts)
            )
            pairs += [(p, p.relative_to(root)) for p in files]
        else:
            pairs.append((root, Path(root.name)))
    taken: set[Path] = set()
    planned = []
    for source, relative in pairs:
        output = relative.with_suffix("")
        if output in taken:
            output = relative
        taken.add(output)
        planned.append((source, output))
    return planned


def read_manifest(path: Path) -> dict[str, Entry]:
    """The entries of an existing manifest by source (empty if there is none).

    Raises:
        ValueError: the file is damaged (one line, naming it).
    """
    if not path.exists():
        return {}
    entries = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = Entry(**json.loads(line))
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"damaged manifest {path} (line {number}: "
                f"{str(err).splitlines()[0]}); move it away to start over"
            ) from None
        entries[entry.source] = entry
    return entries


def limits_text(limits: UploadLimits) -> str:
    """The limits as a short text (``""`` for none): a manifest entry made under
    other limits is done again."""
    formats = f"+{','.join(sorted(limits.formats))}" if limits.formats else ""
    return limits.key + formats


def write_manifest(path: Path, entries: Iterable[Entry]) -> None:
    text = "".join(json.dumps(asdict(e)) + "\n" for e in entries)
    atomic_write(path, lambda handle: handle.write(text.encode()))


def compress_files(
    compressor: Compressor,
    inputs: Iterable[str | Path],
    out: Path,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write every input's chosen upload under ``out``; returns the run's summary
    (``written``, ``reused``, ``skipped`` with reasons, bytes in and out).

    Inputs stream through a chunk at a time (each file read once, memory bounded
    by the chunk); the manifest is saved every :data:`SAVE_EVERY_S` seconds and at
    the end, so a killed run redoes at most those seconds. ``on_progress(done,
    total)`` follows every chunk.
    """
    planned = expand_inputs(inputs)
    manifest = out / MANIFEST
    previous = read_manifest(manifest)
    agent = Path(compressor.source).name
    made_under = limits_text(compressor.limits)
    entries: dict[str, Entry] = {}
    chunk: list[tuple[Path, Path, str, bytes]] = []
    counts = {"written": 0, "reused": 0, "done": 0}
    saved = time.monotonic()

    def save() -> None:
        ordered = [entries[str(s)] for s, _ in planned if str(s) in entries]
        write_manifest(manifest, ordered)

    def flush() -> None:
        results = compressor.try_compress_many([data for *_, data in chunk])
        for (source, output, digest, _), result in zip(chunk, results, strict=True):
            if isinstance(result, ImageError):
                entries[str(source)] = Entry(
                    str(source), skipped=str(result), sha256=digest
                )
                continue
            output = output.with_name(output.name + result.extension)
            _write(out / output, result)
            counts["written"] += 1
            entries[str(source)] = Entry(
                str(source),
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
            )
        chunk.clear()

    for source, output in planned:
        counts["done"] += 1
        try:
            data = read_image_file(source)
        except ImageError as err:
            entries[str(source)] = Entry(str(source), skipped=str(err))
            continue
        digest = hashlib.sha256(data).hexdigest()
        done = previous.get(str(source))
        if (
            done is not None
            and done.skipped is None
            and done.sha256 == digest
            and done.agent == agent
            and (done.limits or "") == made_under
            and (out / str(done.output)).is_file()
        ):
            entries[str(source)] = done
            counts["reused"] += 1
            continue
        chunk.append((source, output, digest, data))
        if len(chunk) >= compressor.batch_size:
            flush()
            if on_progress:
                on_progress(counts["done"], len(planned))
            if time.monotonic() - saved >= SAVE_EVERY_S:
                save()
                saved = time.monotonic()
    flush()
    if on_progress:
        on_progress(counts["done"], len(planned))
    ordered = [entries[str(s)] for s, _ in planned]
    write_manifest(manifest, ordered)
    kept = [e for e in ordered if e.skipped is None]
    return {
        "inputs": len(ordered),
        "written": counts["written"],
        "reused": counts["reused"],
        "skipped": [
            {"path": e.source, "error": e.skipped}
            for e in ordered
            if e.skipped is not None
        ],
        "bytes": sum(e.bytes or 0 for e in kept),
        "source_bytes": sum(e.source_bytes or 0 for e in kept),
        "manifest": str(manifest),
    }


def _write(path: Path, upload: Upload) -> None:
    atomic_write(path, lambda handle: handle.write(upload.data))
