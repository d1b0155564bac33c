"""Which file each input of ``adacompress compress`` becomes: every name distinct,
and the same on every rerun.

An input keeps its path relative to the folder it was found in (or its name, for a
file given directly) without its extension; the upload's extension is added once
its format is known, so a name is planned as a *stem* that holds every upload
extension. Names are given in a fixed order, so the same inputs and manifest always
get the same names:

1. an output an earlier run recorded keeps its name (its input finds it done; the
   entry of an input not in this run stays true);
2. each input takes its own stem (``cats/a`` for ``cats/a.png``) if free;
3. the rest, in input order, take their name with its extension (``a.png`` ->
   ``a.png.jpg``), else the stem numbered (``a~2``, ``a~3``, ...; flattened to the
   top, ``x~a~2``, should a folder of its path be another output's file).

Names are compared case-folded (case-insensitive disks), and a name never doubles
as another's folder.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from adacompress.core.datasets import IMAGE_SUFFIXES
from adacompress.device.manifest import UPLOAD_EXTENSIONS, Entry


def expand_inputs(inputs: Iterable[str | Path]) -> list[tuple[Path, PurePosixPath]]:
    """``(source, path relative to where it was found)`` for every image file
    under ``inputs``, each source once.

    A folder contributes its image files (recursively, sorted; hidden files are
    left out); a file contributes itself under its name.
    """
    found: dict[str, tuple[Path, PurePosixPath]] = {}
    for item in inputs:
        root = Path(item)
        if root.is_dir():
            files = sorted(
                p
                for p in root.rglob("*")
                if p.suffix.lower() in IMAGE_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(root).parts)
            )
            pairs = [(p, PurePosixPath(p.relative_to(root).as_posix())) for p in files]
        else:
            pairs = [(root, PurePosixPath(root.name))]
        for source, relative in pairs:
            found.setdefault(str(source), (source, relative))
    return list(found.values())


@dataclass(frozen=True)
class OutputPlan:
    """The output stem of each input (by source, in input order), and the earlier
    entries that stay (in manifest order: their names taken; this run's inputs'
    among them, to be replaced)."""

    stems: dict[str, PurePosixPath]
    kept: dict[str, Entry]
    dropped: int
    """earlier entries whose names clash with others' (a damaged manifest)"""


class _Names:
    """The stems taken so far, with the file names and folders they occupy."""

    def __init__(self) -> None:
        self._files: set[str] = set()
        self._folders: set[str] = set()

    def free(self, stem: PurePosixPath) -> bool:
        key = stem.as_posix().casefold()
        mine = [key + ext for ext in UPLOAD_EXTENSIONS]
        if any(name in self._files or name in self._folders for name in mine):
            return False
        return not self.blocks_folders(stem)

    def blocks_folders(self, stem: PurePosixPath) -> bool:
        """Whether a folder ``stem`` needs is another output's file."""
        return any(folder in self._files for folder in _folders(stem))

    def claim(self, stem: PurePosixPath) -> None:
        key = stem.as_posix().casefold()
        self._files.update(key + ext for ext in UPLOAD_EXTENSIONS)
        self._folders.update(_folders(stem))


def _fallbacks(
    relative: PurePosixPath, own: PurePosixPath, names: _Names
) -> Iterator[PurePosixPath]:
    """Names to try, in order, for an input whose own stem is taken: its name
    with its extension, then the stem numbered -- in its folder, or, when a folder
    of its path is another output's file, flattened to the top (``a~b~2``)."""
    yield relative
    base = own
    if names.blocks_folders(own):
        base = PurePosixPath(own.as_posix().replace("/", "~"))
        yield base
    for n in itertools.count(2):  # ends: finitely many names are taken
        yield base.with_name(f"{base.name}~{n}")


def _folders(stem: PurePosixPath) -> list[str]:
    return [p.as_posix().casefold() for p in stem.parents if p.parts]


def plan_outputs(
    found: Iterable[tuple[Path, PurePosixPath]], earlier: Mapping[str, Entry]
) -> OutputPlan:
    """Name every input's output (see the module's doc for the order).

    Args:
        found: what :func:`expand_inputs` returned.
        earlier: the entries of the folder's manifest by source.

    """
    found = list(found)
    names = _Names()
    stems: dict[str, PurePosixPath] = {}
    kept: dict[str, Entry] = {}
    dropped = 0
    for key, entry in earlier.items():
        if entry.output is None:
            kept[key] = entry
            continue
        stem = PurePosixPath(entry.output).with_suffix("")
        if not names.free(stem):
            dropped += 1
            continue
        names.claim(stem)
        kept[key] = entry
        stems[key] = stem
    todo = []
    for source, relative in found:
        if str(source) in stems:
            continue
        own = relative.with_suffix("")
        if names.free(own):
            names.claim(own)
            stems[str(source)] = own
        else:
            todo.append((source, relative, own))
    for source, relative, own in todo:
        stem = next(c for c in _fallbacks(relative, own, names) if names.free(c))
        names.claim(stem)
        stems[str(source)] = stem
    order = {str(source): i for i, (source, _) in enumerate(found)}
    ordered = sorted((s for s in stems if s in order), key=order.__getitem__)
    return OutputPlan({s: stems[s] for s in ordered}, kept, dropped)
