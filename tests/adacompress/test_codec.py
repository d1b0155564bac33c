from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import (
    decoded_size,
    jpeg_bytes,
    photo,
    write_bad_inputs,
    write_odd_but_valid,
)

from adacompress.codec import (
    Action,
    ImageError,
    UploadLimits,
    encode,
    get_action_set,
    load_image,
    paper_actions,
)


def test_paper_action_set_is_the_ten_qualities() -> None:
    assert [a.quality for a in paper_actions()] == [
        5,
        15,
        25,
        35,
        45,
        55,
        65,
        75,
        85,
        95,
    ]
    assert get_action_set("paper") == paper_actions()
    with pytest.raises(ValueError, match="unknown action set"):
        get_action_set("nope")


def test_action_keys_round_trip() -> None:
    for action in (Action(15), Action(5, 0.5), Action(95, 0.35)):
        assert Action.from_key(action.key) == action
    assert Action(15).key == "15"
    assert Action(15, 0.5).key == "15@0.5"
    with pytest.raises(ValueError):
        Action(0)
    with pytest.raises(ValueError):
        Action(50, 1.5)


def test_encode_size_grows_with_quality_and_shrinks_with_scale() -> None:
    image = photo(3, (320, 240))
    sizes = [len(encode(image, a)) for a in paper_actions()]
    assert sizes == sorted(sizes)
    assert len(encode(image, Action(75, 0.5))) < len(encode(image, Action(75)))
    half = Image.open(__import__("io").BytesIO(encode(image, Action(75, 0.5))))
    assert half.size == (160, 120)


def test_min_side_raises_a_too_small_downscale_but_never_upscales() -> None:
    image = photo(3, (320, 240))
    limits = UploadLimits(min_side=80)
    # 0.25 would give 80x60: the shorter side is lifted to 80 instead.
    assert decoded_size(encode(image, Action(35, 0.25), limits)) == (107, 80)
    assert decoded_size(encode(image, Action(35, 0.5), limits)) == (160, 120)
    small = photo(3, (100, 60))  # already under the minimum: sent as it is
    assert decoded_size(encode(small, Action(35, 0.5), limits)) == (100, 60)


def test_max_bytes_steps_quality_then_size_down_until_it_fits() -> None:
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (400, 400, 3), dtype=np.uint8))
    full = len(encode(noise, Action(95)))
    limits = UploadLimits(max_bytes=full // 3)
    fitted = encode(noise, Action(95), limits)
    assert 1024 <= len(fitted) <= full // 3
    tiny = UploadLimits(min_side=380, max_bytes=1024)
    with pytest.raises(ImageError, match="cannot encode the image under 1,024 bytes"):
        encode(noise, Action(95), tiny)
    assert encode(noise, Action(95), UploadLimits(max_bytes=full)) == encode(
        noise, Action(95)
    )


def test_limits_key_names_only_binding_limits() -> None:
    assert UploadLimits().key == ""
    assert UploadLimits(min_side=80, max_bytes=5242880).key == "+min80+max5242880"
    with pytest.raises(ValueError):
        UploadLimits(min_side=0)


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
