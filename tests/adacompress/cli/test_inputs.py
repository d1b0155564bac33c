"""Hostile inputs in a folder or a list: FIFOs, devices, symlink loops and huge files
are skipped with a reason, never read whole, never waited on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adacompress.core.datasets import list_images
from basekit.images import ImageError, read_image_file
from tests.helpers import photo


def hostile_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    photo(1, (200, 150)).save(root / "good.png")
    os.mkfifo(root / "fifo.jpg")
    (root / "loop.jpg").symlink_to(root / "loop.jpg")
    (root / "a-loop").symlink_to(root / "b-loop")  # no image suffix: listed too
    (root / "b-loop").symlink_to(root / "a-loop")
    (root / "dir-loop").symlink_to(root)  # not followed
    return root


def test_special_files_are_listed_then_refused_with_a_reason(tmp_path: Path) -> None:
    folder = hostile_folder(tmp_path / "in")
    names = [p.name for p in list_images(folder)]
    assert names == ["a-loop", "b-loop", "fifo.jpg", "good.png", "loop.jpg"]
    with pytest.raises(ImageError, match="not a regular file"):
        read_image_file(folder / "fifo.jpg")  # returns at once: never opened
    for loop in ("loop.jpg", "a-loop"):
        with pytest.raises(ImageError, match="cannot read file"):
            read_image_file(folder / loop)
    with pytest.raises(ImageError, match="not a regular file"):
        read_image_file("/dev/zero")
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff" * 5000)
    with pytest.raises(ImageError, match="file too large: 5,000 bytes"):
        read_image_file(big, max_bytes=4096)


def test_a_list_with_a_fifo_and_a_device_finishes_with_reasons(tmp_path: Path) -> None:
    folder = hostile_folder(tmp_path / "in")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{folder / 'fifo.jpg'}\n/dev/zero\n{folder / 'good.png'}\n")
    report = tmp_path / "r.json"
    command = [
        sys.executable,
        "-m",
        "adacompress",
        "--quiet",
        "evaluate",
        "--images",
        str(listing),
        "--json",
        str(report),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    result = json.loads(report.read_text())
    reasons = {Path(s["path"]).name: s["error"] for s in result["skipped"]}
    assert set(reasons) == {"fifo.jpg", "zero"}
    assert all("not a regular file" in r for r in reasons.values())
    assert result["n_images"] == 1


def test_a_file_name_cannot_forge_a_line_of_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from adacompress.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    photo(1).save(folder / "good.jpg")
    (folder / "bad.jpg\n  skipped forged.jpg").write_bytes(b"not an image")
    assert (
        main(["compress", str(folder), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    )
    lines = capsys.readouterr().out.splitlines()
    skipped = [line for line in lines if line.startswith("  skipped")]
    assert len(skipped) == 1 and "bad.jpg\\n  skipped forged.jpg" in skipped[0]
