"""Decoding untrusted files: every odd mode becomes 8-bit RGB, every bad input a
one-line error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from basekit.images import ImageError, load_image
from tests.helpers import jpeg_bytes, photo, write_bad_inputs, write_odd_but_valid


def test_load_image_applies_exif_orientation(tmp_path: Path) -> None:
    image = photo(4, (200, 100))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif.tobytes())
    assert load_image(path).size == (100, 200)


@pytest.mark.parametrize(
    "name", ["alpha.png", "cmyk.jpg", "gray.jpg", "gray16.png", "palette.gif"]
)
def test_unusual_modes_become_8bit_rgb(tmp_path: Path, name: str) -> None:
    write_odd_but_valid(tmp_path)
    image = load_image(tmp_path / name)
    assert image.mode == "RGB"
    assert image.size == (160, 120)
    array = np.asarray(image)
    assert array.std() > 5, "content survived the conversion"


def test_sixteen_bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    write_odd_but_valid(tmp_path)
    gray = np.asarray(load_image(tmp_path / "gray16.png"))[..., 0].astype(int)
    expected = np.asarray(photo(2).convert("L")).astype(int)
    assert np.abs(gray - expected).max() <= 1


def test_alpha_is_composited_on_white(tmp_path: Path) -> None:
    clear = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    path = tmp_path / "clear.png"
    clear.save(path)
    assert np.asarray(load_image(path)).min() == 255


def test_bad_inputs_raise_one_line_errors(tmp_path: Path) -> None:
    expected = write_bad_inputs(tmp_path)
    for name, word in expected.items():
        with pytest.raises(ImageError) as info:
            load_image(tmp_path / name)
        message = str(info.value)
        assert word in message, (name, message)
        assert "\n" not in message


def test_missing_file_and_pixel_limit(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="cannot read"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="too large"):
        load_image(jpeg_bytes(photo(5)), max_pixels=100)
