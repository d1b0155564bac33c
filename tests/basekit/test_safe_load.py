"""Torch files from anywhere: nothing executed, nothing unbounded read."""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path

import pytest
import torch

from basekit.safe_load import load_tensors


def test_plain_tensors_load_from_a_path_and_from_bytes(tmp_path: Path) -> None:
    path = tmp_path / "ok.pt"
    torch.save({"w": torch.ones(3), "n": 2}, path)
    assert load_tensors(path)["n"] == 2
    assert torch.equal(load_tensors(path.read_bytes())["w"], torch.ones(3))


def test_a_fifo_or_a_device_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.pt"
    os.mkfifo(fifo)  # reading it would wait for a writer forever
    start = time.monotonic()
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(ValueError, match="not a regular file"):
            load_tensors(path, what="pirl checkpoint")
    assert time.monotonic() - start < 5


def test_a_member_that_inflates_far_beyond_its_size_is_refused_unread(
    tmp_path: Path,
) -> None:
    """A checkpoint of a few hundred KB whose member inflates to 256 MB."""
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("archive/data.pkl", "w") as member:
            block = bytes(1 << 20)
            for _ in range(256):
                member.write(block)
    assert bomb.stat().st_size < 1 << 20
    for source in (bomb, bomb.read_bytes()):
        with pytest.raises(ValueError, match="decompression bomb"):
            load_tensors(source, what="pirl checkpoint")
    plain = io.BytesIO()
    torch.save({"w": torch.zeros(1 << 18)}, plain)  # a real 1 MB file still loads
    assert load_tensors(plain.getvalue())["w"].numel() == 1 << 18
