"""The format as part of the action: WebP next to JPEG, and a service's formats
respected everywhere -- never chosen, never encoded, refused by the environment."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from adacompress.core.datasets import builtin_photos
from adacompress.core.limits import (
    GOOGLE_VISION_FORMATS,
    REKOGNITION_FORMATS,
    UploadLimits,
)
from adacompress.device.actions import Action, get_action_set
from adacompress.device.codec import encode
from adacompress.device.compressor import Compressor
from adacompress.device.files import MANIFEST, compress_files
from adacompress.exchange.cache import AnswerCache
from adacompress.exchange.environment import CompressionEnv
from tests.helpers import photo

REKOGNITION = UploadLimits(80, None, REKOGNITION_FORMATS)


def test_format_keys_round_trip_and_jpeg_keys_are_unchanged() -> None:
    for action in (Action(15, 0.5, "webp"), Action(5, 1.0, "webp"), Action(15)):
        assert Action.from_key(action.key) == action
    assert Action(15, 0.5, "webp").key == "webp:15@0.5"
    assert Action(15, 0.5).key == "15@0.5"  # caches and agents made before formats
    assert Action(15, 0.5, "webp").mime == "image/webp"
    with pytest.raises(ValueError, match="not an action key: 'gif:15'"):
        Action.from_key("gif:15")
    with pytest.raises(ValueError, match="unknown format"):
        Action(15, 1.0, "gif")
    assert not Action(95, 1.0, "webp").dominated and Action(95).dominated
    webp = get_action_set("webp-scale-quality")
    assert {a.format for a in webp} == {"webp"} and len(webp) == 25


def test_webp_is_encoded_and_a_refused_format_is_never_encoded() -> None:
    image = photo(2, (320, 240))
    data = encode(image, Action(35, 0.5, "webp"))
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    assert Image.open(io.BytesIO(data)).size == (160, 120)
    assert len(data) < len(encode(image, Action(35, 0.5)))  # what WebP is for
    with pytest.raises(ValueError, match="does not take webp"):
        encode(image, Action(35, 0.5, "webp"), REKOGNITION)
    fits = encode(image, Action(95, 1.0, "webp"), UploadLimits(max_bytes=2048))
    assert len(fits) <= 2048 and fits[8:12] == b"WEBP"  # steps down in its format


def mixed_compressor(limits: UploadLimits) -> Compressor:
    """The shipped lite0 paper-action policy over ten actions that alternate JPEG and
    WebP."""
    shipped = Compressor.load("lite0", actions="paper")
    actions = [
        Action(a.quality, a.scale, "webp" if i % 2 else "jpeg")
        for i, a in enumerate(shipped.actions)
    ]
    return Compressor(
        shipped.policy,
        shipped.extractor,
        actions,
        limits=limits,
        metadata=shipped.metadata,
    )


def test_the_compressor_chooses_only_formats_the_service_takes(tmp_path: Path) -> None:
    photos = builtin_photos()
    free = mixed_compressor(UploadLimits(formats=GOOGLE_VISION_FORMATS))
    strict = mixed_compressor(REKOGNITION)
    assert strict.accepted == [0, 2, 4, 6, 8]
    free_uploads = free.compress_many(photos)
    strict_uploads = strict.compress_many(photos)
    assert {u.action.format for u in free_uploads} == {"jpeg", "webp"}  # both used
    assert {u.mime for u in strict_uploads} == {"image/jpeg"}
    scores = strict.policy.scores(strict.features([strict.decode(p) for p in photos]))
    best_jpeg = [max(strict.candidates, key=lambda i: row[i]) for row in scores]
    assert [strict.actions.index(u.action) for u in strict_uploads] == best_jpeg
    shipped = Compressor.load("lite0", actions="paper")
    with pytest.raises(ValueError, match="takes none of the agent's formats"):
        Compressor(
            shipped.policy,
            shipped.extractor,
            [Action(a.quality, a.scale, "webp") for a in shipped.actions],
            limits=REKOGNITION,
        )
    # The manifest and the file names carry the format.
    summary = compress_files(free, photos[:6], tmp_path / "out")
    lines = [
        json.loads(x)
        for x in (tmp_path / "out" / MANIFEST).read_text().split("\n")
        if x
    ]
    assert summary["written"] == 6
    for line in lines:
        action = Action.from_key(line["action"])
        assert line["output"].endswith(action.extension) and line["mime"] == action.mime
        assert (tmp_path / "out" / line["output"]).is_file()


class JpegOnlyService:
    name = cache_name = "jpeg-only"
    limits = REKOGNITION

    def classify(self, images: object) -> list:
        raise AssertionError("never called")


def test_the_environment_refuses_actions_the_service_does_not_take(
    tmp_path: Path,
) -> None:
    from adacompress.device.features import get_extractor

    with AnswerCache(tmp_path / "c.sqlite") as cache:
        with pytest.raises(ValueError, match="jpeg-only does not take webp uploads"):
            CompressionEnv(
                JpegOnlyService(),
                cache,
                actions=get_action_set("webp-scale-quality"),
                extractor=get_extractor("confidence"),
            )
        env = CompressionEnv(
            JpegOnlyService(),
            cache,
            actions=get_action_set("scale-quality"),
            extractor=get_extractor("confidence"),
        )
        assert env.cache_name == "jpeg-only+min80"  # formats change no cache key
