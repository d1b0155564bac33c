"""The manifest as untrusted input: wrong types, outputs outside the folder, special
files and huge files give a result or one line, never a traceback or a hang."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adacompress.device.manifest import (
    MAX_LINE_BYTES,
    MAX_MANIFEST_BYTES,
    Entry,
    Manifest,
    read_manifest,
    write_manifest,
)

GOOD = {"source": "a.jpg", "output": "a.jpg", "bytes": 10, "output_sha256": "0" * 64}


def write_lines(path: Path, *lines: object) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_entries_round_trip(tmp_path: Path) -> None:
    entries = [Entry("a.jpg", "a.jpg", bytes=3), Entry("b.png", skipped="empty")]
    write_manifest(tmp_path / "m", entries)
    assert list(read_manifest(tmp_path / "m").entries.values()) == entries


@pytest.mark.parametrize(
    "bad",
    [
        {"source": {"a": 1}},
        {"source": "b.jpg", "bytes": "x"},
        {"source": "b.jpg", "bytes": True},
        {"source": "b.jpg", "width": -1},
        {"source": "b.jpg", "output": 5},
        {"source": "b.jpg", "output": "/etc/passwd"},
        {"source": "b.jpg", "output": "../../../../etc/passwd"},
        {"source": "b.jpg", "output": "x/../../a.jpg"},
        {"source": "b.jpg", "output": "notes.txt"},
        {"source": ""},
        ["a list"],
        "a string",
    ],
)
def test_a_line_of_wrong_types_or_an_outside_output_is_ignored(
    tmp_path: Path, bad: object
) -> None:
    manifest = read_manifest(write_lines(tmp_path / "m", GOOD, bad))
    assert list(manifest.entries) == ["a.jpg"] and manifest.ignored == 1


def test_unknown_keys_are_left_out(tmp_path: Path) -> None:
    manifest = read_manifest(write_lines(tmp_path / "m", {**GOOD, "new": 1}))
    assert manifest.entries["a.jpg"].bytes == 10


def test_a_file_with_no_entry_at_all_is_not_a_manifest(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "m", {"name": "a.jpg"}, [1])
    with pytest.raises(ValueError, match="damaged manifest"):
        read_manifest(path)  # someone else's file: left alone
    path = write_lines(tmp_path / "m", {"source": {"a": 1}})
    assert read_manifest(path) == Manifest({}, ignored=1)  # ours, damaged


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "m")
    errors: list[Exception] = []

    def read() -> None:
        try:
            read_manifest(tmp_path / "m")
        except ValueError as err:
            errors.append(err)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(60)  # a hang guard, not a timing: the old reader never returned
    assert not reader.is_alive()
    assert len(errors) == 1 and "not a regular file" in str(errors[0])


def test_a_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m").symlink_to(write_lines(tmp_path / "real", GOOD))
    with pytest.raises(ValueError, match="cannot read manifest"):
        read_manifest(tmp_path / "m")


def test_a_huge_manifest_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "m"
    with open(path, "wb") as handle:  # sparse: no disk, no memory
        handle.truncate(MAX_MANIFEST_BYTES + 1)
    with pytest.raises(ValueError, match="too large"):
        read_manifest(path)


def test_an_overlong_line_is_ignored_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "m"
    long = {"source": "x" * (3 * MAX_LINE_BYTES)}
    write_lines(path, GOOD, long, {**GOOD, "source": "c.jpg"})
    manifest = read_manifest(path)
    assert list(manifest.entries) == ["a.jpg", "c.jpg"] and manifest.ignored == 1


def test_deep_json_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "m"
    path.write_text(json.dumps(GOOD) + "\n" + "[" * 50_000 + "\n")
    assert read_manifest(path).ignored == 1


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_bytes_give_entries_or_one_line(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "m")
        path.write_bytes(json.dumps(GOOD).encode() + b"\n" + data)
        manifest = read_manifest(path)
        assert manifest.entries  # the good line's, or one a random line replaced
        assert all(type(e.source) is str for e in manifest.entries.values())
