from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from adacompress.core.limits import UploadLimits
from adacompress.device.actions import Action, get_action_set, paper_actions
from adacompress.device.codec import encode
from basekit.images import ImageError
from tests.helpers import decoded_size, photo


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


def test_encodes_of_one_image_share_each_downscale() -> None:
    """Every action of the grid from one resize per scale: the same bytes."""
    image, resized = photo(3, (400, 300)), {}
    actions = get_action_set("scale-quality")
    shared = [encode(image, a, resized=resized) for a in actions]
    assert shared == [encode(image, a) for a in actions]
    assert len(resized) == 4  # 0.75, 0.5, 0.35, 0.25; full size is not resized


def test_min_side_raises_a_too_small_downscale_but_never_upscales() -> None:
    image = photo(3, (320, 240))
    limits = UploadLimits(min_side=80)
    # 0.25 would give 80x60: the shorter side is lifted to 80 instead.
    assert decoded_size(encode(image, Action(35, 0.25), limits)) == (107, 80)
    assert decoded_size(encode(image, Action(35, 0.5), limits)) == (160, 120)
    # Already under the minimum: refused, never enlarged. It was sent as it was,
    # an upload the service refuses, though --help said none is made (issue 32).
    small = photo(3, (100, 60))
    with pytest.raises(ImageError, match="shorter side is 60 px, under .* 80 px"):
        encode(small, Action(35, 0.5), limits)
    assert decoded_size(encode(small, Action(35, 0.5), UploadLimits(60))) == (100, 60)


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
