"""``max_pixels`` is the decoding limit that holds, above Pillow's own default
(89,478,485 pixels) as below it; :func:`image_header`'s limit does not move."""

from __future__ import annotations

import pytest
from PIL import Image

from basekit.images import HEADER_MAX_PIXELS, ImageError, image_header, load_image
from tests.helpers import png_header


@pytest.fixture(autouse=True)
def _pillow_limit_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


def reason(data: bytes, **kwargs: int) -> str:
    with pytest.raises(ImageError) as err:
        load_image(data, **kwargs)
    return str(err.value)


def test_a_limit_above_pillows_is_the_one_that_holds() -> None:
    photo = png_header(9500, 9500)  # 90.25 MP: over Pillow's default, header only
    assert "too large" not in reason(photo)  # the 100 MP default lets it through
    assert "too large" not in reason(photo, max_pixels=500_000_000)
    assert "too large" not in reason(png_header(20000, 20000), max_pixels=500_000_000)
    assert "(limit 50,000,000)" in reason(photo, max_pixels=50_000_000)


def test_the_header_limit_stays() -> None:
    with pytest.raises(ImageError):
        load_image(png_header(9500, 9500), max_pixels=10**12)
    side = int(HEADER_MAX_PIXELS**0.5) + 1
    with pytest.raises(ImageError, match="too large"):
        image_header(png_header(side, side))
