"""The port (examples/port_agent.py) proves the spec (issue 32): with numpy, Pillow
and ONNX Runtime alone -- torch and adacompress cannot even be imported where it
runs -- it reproduces the card's reference vectors and makes the same choices and
uploads as ``adacompress.load(folder)`` on real photos and odd formats."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adacompress.device.compressor import Compressor
from basekit.images import ImageError
from tests.helpers import OPTIONAL_MODULES, blocking_env, photo, write_odd_but_valid

ROOT = Path(__file__).resolve().parents[2]
PORT = ROOT / "examples" / "port_agent.py"
NOT_THERE = (*OPTIONAL_MODULES, "adacompress", "basekit", "pirl")


def port(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The port, run where neither the extras nor this project can be imported."""
    return subprocess.run(
        [sys.executable, str(PORT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=blocking_env(tmp_path / "bare", NOT_THERE),
        cwd=tmp_path,
    )


def test_the_port_reproduces_the_reference_vectors(
    tmp_path: Path, lite0_export: Path
) -> None:
    done = port(tmp_path, str(lite0_export), "--check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10 of 10 reference vectors match" in done.stdout


def odd_photos(folder: Path) -> list[Path]:
    """Photos in every mode and layout a decoder meets, beyond the common ones."""
    names = write_odd_but_valid(folder)
    base = photo(11, (300, 220))
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(base.size))
    rgba.convert("LA").save(folder / "gray-alpha.png")
    palette = base.convert("P", colors=32)
    palette.save(folder / "palette-transparent.png", transparency=3)
    base.convert("1").save(folder / "bilevel.png")
    gray = np.asarray(base.convert("L"), np.int32)
    Image.fromarray(gray * 4000, "I").save(folder / "int32.tif")
    Image.fromarray(gray.astype(np.float32) / 300.0, "F").save(folder / "float.tif")
    dark = Image.fromarray((gray // 3).astype(np.uint16))
    dark.save(folder / "gray16-dark.png")
    for orientation in (3, 6, 8):
        exif = Image.Exif()
        exif[0x0112] = orientation
        base.save(folder / f"exif-{orientation}.jpg", quality=90, exif=exif.tobytes())
    base.save(folder / "progressive.jpg", quality=80, progressive=True)
    photo(12, (2600, 2080)).save(folder / "large-quarter.jpg", quality=70)
    photo(13, (1100, 1030)).save(folder / "large-half.jpg", quality=70)
    photo(14, (20, 12)).save(folder / "tiny.png")
    photo(15, (1000, 90)).save(folder / "panorama.webp", quality=80)
    names += [p.name for p in sorted(folder.iterdir()) if p.name not in names]
    return [folder / name for name in names]


def test_the_port_makes_the_choices_of_adacompress_load(
    tmp_path: Path, lite0_export: Path, imagenet_dir: Path
) -> None:
    """On 50 ImageNet photos (every twentieth, grayscale ones included), 5 BSDS500
    scenes and 19 odd ones: the same action and the same upload, byte for byte."""
    real = sorted(imagenet_dir.glob("*.JPEG"))[::20]
    bsds = sorted((imagenet_dir.parent / "bsds500" / "test").glob("*.jpg"))[:5]
    photos = [*real, *bsds, *odd_photos(tmp_path / "odd")]
    assert len(photos) >= 70
    listing = [str(p) for p in photos]
    done = port(tmp_path, str(lite0_export), *listing)
    assert done.returncode == 0, done.stderr[-2000:]
    ported = {line["photo"]: line for line in map(json.loads, done.stdout.splitlines())}
    results = Compressor.load(lite0_export).compress_many(photos)
    differ = []
    for path, result in zip(listing, results, strict=True):
        line = ported[path]
        if isinstance(result, ImageError):
            expected: dict[str, object] = {"skipped": True}
            got: dict[str, object] = {"skipped": "skipped" in line}
        else:
            size = Image.open(io.BytesIO(result.data)).size
            expected = {"action": result.action.key, "upload": [*size, result.nbytes]}
            got = {"action": line.get("action"), "upload": line.get("upload")}
        if got != expected:
            differ.append((Path(path).name, got, expected))
    assert differ == []
    assert sum("upload" in line for line in ported.values()) >= 70


@pytest.mark.parametrize("filter_", ["bilinear"])
def test_another_view_filter_is_measured_not_assumed(
    tmp_path: Path, lite0_export: Path, filter_: str
) -> None:
    """The tolerance a porter has: the comparison runs and reports its numbers
    (docs/agent-card.md quotes them from the full command)."""
    photos = sorted((lite0_export / "reference").iterdir())
    done = port(
        tmp_path,
        str(lite0_export),
        *map(str, photos),
        "--compare-view-resize",
        filter_,
        "--json",
        "tolerance.json",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "tolerance.json").read_text())
    assert result["photos"] == len(photos) and result["view_resize"] == "bicubic"
    assert 0 <= result[filter_]["choices_changed"] <= len(photos)
    assert result[filter_]["largest_state_change"] > 0
