"""``manifest.jsonl``: one line per input of ``adacompress compress``, read back as
untrusted input.

A manifest on a shared disk may be edited, truncated, swapped for a FIFO or grown
huge. Reading one never blocks on a special file, refuses a file over
:data:`MAX_MANIFEST_BYTES` (from its size, before reading) and streams it a line at
a time; a line that is not an entry as this module writes it -- wrong types, an
output outside the folder, too long -- is ignored and counted, never trusted.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any

from adacompress.core.limits import UploadLimits
from adacompress.device.actions import FORMATS
from basekit.atomic import atomic_write

MANIFEST = "manifest.jsonl"
MAX_MANIFEST_BYTES = 128 * 1024 * 1024
"""A larger manifest is refused unread (it would list over a quarter of a million
photos)."""
MAX_LINE_BYTES = 64 * 1024
"""A longer line is ignored (an entry holds two paths and a short reason)."""
UPLOAD_EXTENSIONS = tuple(sorted({extension for _, extension in FORMATS.values()}))
"""Every extension an output can have: the last suffix of each output's name."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One input's line of the manifest."""

    source: str
    output: str | None = None
    """relative to the output folder"""
    action: str | None = None
    bytes: int | None = None
    """size of the output"""
    source_bytes: int | None = None
    width: int | None = None
    height: int | None = None
    sha256: str | None = None
    """of the source's content"""
    agent: str | None = None
    skipped: str | None = None
    """why the input was not compressed"""
    mime: str | None = None
    """media type of the output"""
    limits: str | None = None
    """the upload limits it was made under (:func:`limits_text`)"""
    output_sha256: str | None = None
    """of the output's content: a replaced output is not taken for done"""
    agent_sha256: str | None = None
    """of what the agent is made of (``Compressor.digest``): with ``agent``, its
    name, what identifies it"""

    @classmethod
    def parse(cls, data: Any) -> Entry:
        """An entry from a decoded JSON line; unknown keys are left out.

        Raises:
            ValueError: not an object, a field of the wrong type, or an output that
                is not a plain relative path ending in an upload's extension.
        """
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if not data.get("source"):
            raise ValueError("no source")
        values = {}
        for field in fields(cls):
            value = data.get(field.name)
            if value is None:
                continue
            wanted = int if field.name in _COUNTS else str
            if type(value) is not wanted or (wanted is int and value < 0):
                raise ValueError(f"{field.name} is not a {wanted.__name__}")
            values[field.name] = value
        entry = cls(**values)
        if entry.output is not None and not plain_output(entry.output):
            raise ValueError("output is not a path inside the output folder")
        return entry


_COUNTS = frozenset({"bytes", "source_bytes", "width", "height"})


def plain_output(text: str) -> bool:
    """Whether ``text`` names a file under the output folder by a plain relative
    path (no ``..``, not absolute) with an upload's extension."""
    path = PurePosixPath(text)
    return (
        not path.is_absolute()
        and "\0" not in text
        and "\\" not in text
        and all(part not in ("", ".", "..") for part in text.split("/"))
        and path.suffix in UPLOAD_EXTENSIONS
    )


@dataclass(frozen=True)
class Manifest:
    """What a manifest file held: its valid entries by source, in file order, and
    how many lines were ignored."""

    entries: dict[str, Entry]
    ignored: int = 0


def read_manifest(path: Path) -> Manifest:
    """The entries of the manifest at ``path`` (none if there is no file).

    Raises:
        ValueError: not a regular file, too large, or no line is an object with
            a ``source`` (then it is not a manifest this command wrote, and is
            left alone); one line naming the file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return Manifest({})
    except OSError as err:
        raise ValueError(
            f"cannot read manifest {path} ({err.strerror or err}); move it away"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"manifest {path} is not a regular file; move it away")
        if info.st_size > MAX_MANIFEST_BYTES:
            raise ValueError(
                f"manifest {path} too large: {info.st_size:,} bytes (limit "
                f"{MAX_MANIFEST_BYTES:,}); move it away to start over"
            )
        entries: dict[str, Entry] = {}
        lines = ours = ignored = 0
        for line in _lines(handle, info.st_size):
            if not line.strip():
                continue
            lines += 1
            try:
                data = json.loads(line)
                ours += isinstance(data, dict) and "source" in data
                entry = Entry.parse(data)
            except (ValueError, RecursionError):
                ignored += 1
                continue
            entries[entry.source] = entry
    if lines and not ours:
        raise ValueError(
            f"damaged manifest {path} (no line is an entry of adacompress "
            "compress); move it away to start over"
        )
    return Manifest(entries, ignored)


def _lines(handle: Any, size: int) -> Iterable[bytes]:
    """The lines of ``handle``, each cut to at most :data:`MAX_LINE_BYTES` (a longer
    one comes back cut, so it fails to parse); stops at ``size`` bytes, should the
    file grow while it is read."""
    left = size
    while left > 0:
        line = handle.readline(min(MAX_LINE_BYTES + 1, left))
        if not line:
            return
        left -= len(line)
        if len(line) > MAX_LINE_BYTES:
            while left > 0 and not line.endswith(b"\n"):  # drop the rest of it
                line = handle.readline(min(MAX_LINE_BYTES, left))
                if not line:
                    break
                left -= len(line)
            yield b"\0"
            continue
        yield line


def limits_text(limits: UploadLimits) -> str:
    """The limits as a short text (``""`` for none): a manifest entry made under
    other limits is done again."""
    formats = f"+{','.join(sorted(limits.formats))}" if limits.formats else ""
    return limits.key + formats


def write_manifest(path: Path, entries: Iterable[Entry]) -> None:
    """``entries`` as the manifest at ``path``, replaced atomically."""

    def write(handle: Any) -> None:
        for entry in entries:
            handle.write((json.dumps(asdict(entry)) + "\n").encode())

    atomic_write(path, write)
