"""The output folder of ``adacompress compress``: nothing written there may touch an
input, and one run at a time writes to it.

Paths are compared resolved (symbolic links followed), so neither ``--out .`` beside
a photo nor a link inside the folder that leads back to the inputs reaches one. The
folder is refused outright when it is, or lies under, an input: every rerun would
otherwise compress its own uploads again. A lock file held for the run keeps a
second run out, and under it the temp files a killed run left behind are removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath

from adacompress.device.manifest import Entry
from basekit.atomic import atomic_write

LOCK = ".adacompress.lock"
_TEMP = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")
"""What :func:`basekit.atomic.atomic_write` names its temp file beside ``name``."""


def where(path: str | os.PathLike[str]) -> str:
    """The place a write to ``path`` lands: its folder resolved, its name not (a
    write replaces a link there; it never writes through one)."""
    head, name = os.path.split(os.path.abspath(path))
    return os.path.join(os.path.realpath(head), name)


def within(path: str, folder: str) -> bool:
    """Whether resolved ``path`` is ``folder`` or lies under it."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class OutFolder:
    """Where the uploads go, guarded against the inputs.

    Args:
        root: the output folder (made on :meth:`locked`).
        inputs: the files and folders given as inputs.
        sources: every input file found in them.

    Raises:
        ValueError: ``root`` is, or lies under, an input (one line).
    """

    def __init__(self, root: Path, inputs: Iterable[Path], sources: Iterable[Path]):
        self.root = root
        self.real = os.path.realpath(root)
        self._folders: list[tuple[str, Path]] = []
        for item in inputs:
            real = os.path.realpath(item)
            if within(self.real, real):
                raise ValueError(
                    f"output folder {root} is or lies under input {item}: choose "
                    "one outside the inputs"
                )
            if os.path.isdir(real):
                self._folders.append((real, item))
        self._files: dict[str, Path] = {}
        """each input file by where it is and where its content is"""
        for source in sources:
            self._files[where(source)] = source
            self._files[os.path.realpath(source)] = source

    def checked(self, relative: PurePosixPath | str) -> Path:
        """The path of ``relative`` under the folder, once sure that writing it
        touches no input.

        Raises:
            ValueError: it resolves to an input file, into an input folder, or out
                of the folder (one line).
        """
        path = self.root / relative
        place = where(path)
        for real in (place, os.path.realpath(path)):
            if real in self._files:
                raise ValueError(
                    f"output {path} would overwrite input {self._files[real]}: "
                    "choose another output folder"
                )
        for folder, item in self._folders:
            if within(place, folder):
                raise ValueError(
                    f"output {path} would land in input folder {item}: choose "
                    "another output folder"
                )
        if not within(place, self.real):
            raise ValueError(f"output {path} leads out of {self.root} by a link")
        return path

    def write(self, relative: PurePosixPath, data: bytes) -> None:
        """``data`` as the file ``relative``, replaced atomically."""
        atomic_write(self.checked(relative), lambda handle: handle.write(data))

    def intact(self, entry: Entry) -> bool:
        """Whether the output ``entry`` describes is in the folder (no link out), a
        regular file, and of the size and content it records."""
        if entry.output is None or entry.output_sha256 is None or entry.bytes is None:
            return False
        path = self.root / entry.output
        if not within(where(path), self.real):
            return False
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError:
            return False
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size != entry.bytes:
                return False
            digest = hashlib.sha256()
            while block := handle.read(1 << 20):
                digest.update(block)
        return digest.hexdigest() == entry.output_sha256

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Make the folder and hold its lock for the block; the lock file goes
        when the block ends (and the folder too, if made here and left empty).

        Raises:
            ValueError: another run holds it (one line).
        """
        made = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as err:
            raise ValueError(f"cannot lock {path}: {err.strerror or err}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # a run that ended between our open and flock removed this file
                if os.stat(path).st_ino != os.fstat(fd).st_ino:
                    raise BlockingIOError
            except (BlockingIOError, FileNotFoundError):
                raise ValueError(
                    f"another adacompress compress is writing to {self.root}; "
                    "wait for it to finish"
                ) from None
            try:
                yield
            finally:
                path.unlink(missing_ok=True)  # still held: no one else has it
                if made:
                    with contextlib.suppress(OSError):
                        self.root.rmdir()  # only if empty
        finally:
            os.close(fd)  # releases the lock

    def remove_stale_temps(self, names: Sequence[PurePosixPath]) -> int:
        """Remove the temp files a killed run left beside any of ``names``
        (relative paths of files this folder holds); returns how many. Call it
        under :meth:`locked`: a running writer's temp file is not stale."""
        wanted: dict[PurePosixPath, set[str]] = {}
        for name in names:
            wanted.setdefault(name.parent, set()).add(name.name)
        removed = 0
        for parent, files in wanted.items():
            try:
                listing = list(os.scandir(self.root / parent))
            except OSError:
                continue
            for item in listing:
                match = _TEMP.fullmatch(item.name)
                if not match or match["name"] not in files:
                    continue
                if not item.is_file(follow_symlinks=False):
                    continue
                if where(item.path) in self._files:
                    continue
                Path(item.path).unlink(missing_ok=True)
                removed += 1
        return removed
