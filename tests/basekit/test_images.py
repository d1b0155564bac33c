"""Decoding untrusted files: every odd mode becomes 8-bit RGB, every bad input a
one-line error."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from basekit.images import ImageError, image_header, load_image, to_rgb
from basekit.memory import return_large_buffers
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


def test_high_bit_depths_round_half_up_in_bands() -> None:
    """16-bit: x * 255 / 65535 rounded half up; 8-bit range kept; floats stretched;
    the same values as converting the whole image at once in float64."""
    values = np.array([[0, 257, 32768, 65535] * 100] * 600, dtype=np.uint16)
    rgb = np.asarray(load_image(_png(Image.fromarray(values))))
    assert rgb[0, :4, 0].tolist() == [0, 1, 128, 255] and rgb.shape[0] == 600
    small = np.array([[0, 7, 255]], dtype=np.uint16)
    assert np.asarray(load_image(_png(Image.fromarray(small))))[0, :, 1].tolist() == [
        0,
        7,
        255,
    ]
    floats = Image.fromarray(np.array([[-1.0, 0.0, 1.0]], dtype=np.float32))
    assert np.asarray(to_rgb(floats))[0, :, 2].tolist() == [0, 128, 255]


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_the_decode_cost_is_read_from_the_header() -> None:
    """What decoding will hold, before decoding: RGB 4 bytes a pixel, 16-bit gray
    10 (its bands and working copies, then RGB), and a rotation one copy more."""
    assert image_header(jpeg_bytes(photo(1, (200, 100)))).decode_bytes == 200 * 100 * 4
    gray16 = Image.fromarray(np.zeros((100, 200), dtype=np.uint16))
    assert image_header(_png(gray16)).decode_bytes == 200 * 100 * 10
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    photo(1, (200, 100)).save(buffer, "JPEG", exif=exif.tobytes())
    assert image_header(buffer.getvalue()).decode_bytes == 200 * 100 * 8
    with pytest.raises(ImageError, match="not an image"):
        image_header(b"not an image")


def test_large_buffers_go_back_to_the_system_on_linux() -> None:
    assert return_large_buffers() == sys.platform.startswith("linux")


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
