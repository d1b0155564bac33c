"""The photo cap: big photos are decided and encoded as their reduced copy, small
ones as they are, and the reference stays the whole photo."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from adacompress.device.actions import REFERENCE_ACTION, Action, paper_actions
from adacompress.device.codec import encode, scaled_size
from adacompress.device.resolution import (
    DEFAULT_PHOTO_CAP,
    cap_photo,
    capped_digest,
    capped_size,
    load_capped,
)
from adacompress.exchange.cache import AnswerCache
from adacompress.exchange.environment import CompressionEnv
from basekit.images import load_image
from tests.adacompress.fakes import MeanFeatures, SizeCloud
from tests.helpers import photo


def jpeg(size: tuple[int, int], seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    photo(seed, size).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def test_capped_size_keeps_the_aspect_and_leaves_small_photos() -> None:
    assert capped_size((4000, 3000), 512) == (683, 512)
    assert capped_size((3000, 4000), 512) == (512, 683)
    assert capped_size((500, 375), 512) == (500, 375)
    assert capped_size((4000, 3000), None) == (4000, 3000)


def test_a_big_jpeg_decodes_at_a_dct_scale_that_keeps_the_cap() -> None:
    data = jpeg((2400, 1800))
    drafted = load_image(data, min_short_side=400)
    assert drafted.size == (600, 450)  # 1/4: the smallest scale at >= 400 px
    assert load_image(data, min_short_side=2000).size == (2400, 1800)
    capped = load_capped(data, 400)
    assert capped.size == (533, 400)


def test_the_drafted_photo_stays_close_to_the_full_decode() -> None:
    data = jpeg((2400, 1800), seed=3)
    fast = np.asarray(load_capped(data, 400), dtype=np.float32)
    full = np.asarray(cap_photo(load_image(data), 400), dtype=np.float32)
    assert fast.shape == full.shape
    assert np.abs(fast - full).mean() < 3.0  # of 255: a slight blur, nothing more


def test_capped_digest_is_the_photo_own_below_the_cap() -> None:
    assert capped_digest("abc", (500, 375), 512) == "abc"
    assert capped_digest("abc", (4000, 3000), None) == "abc"
    big = capped_digest("abc", (4000, 3000), 512)
    assert big != "abc" and big != capped_digest("abc", (4000, 3000), 640)


def make_env(tmp_path: Path, cap: int | None) -> CompressionEnv:
    return CompressionEnv(
        SizeCloud(threshold=1),
        AnswerCache(tmp_path / f"cache-{cap}.sqlite"),
        actions=paper_actions(),
        extractor=MeanFeatures(),
        photo_cap=cap,
    )


def test_a_capped_agent_encodes_the_reduced_photo_and_scores_the_whole_one(
    tmp_path: Path,
) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(jpeg((1600, 1200), seed=1))
    env = make_env(tmp_path, 300)
    [sample], _ = env.prepare([big], progress=False)
    assert sample.seen != sample.digest
    at_75 = Action(75)
    found = env.outcomes(sample, [REFERENCE_ACTION, at_75])
    whole = len(encode(load_image(big), REFERENCE_ACTION))
    reduced = len(encode(load_capped(big, 300), at_75))
    assert found[REFERENCE_ACTION].nbytes == whole
    assert found[at_75].nbytes == reduced < whole
    assert not env.is_reference(sample, at_75)
    sizes = env.sizes(sample)
    assert sizes[paper_actions().index(at_75)] == reduced
    result, _, uploaded = env.step_with_reference(sample, paper_actions().index(at_75))
    assert uploaded == whole + reduced and result.size_ratio < 1.0


def test_below_the_cap_nothing_changes(tmp_path: Path) -> None:
    small = tmp_path / "small.jpg"
    small.write_bytes(jpeg((400, 300), seed=2))
    capped, plain = make_env(tmp_path, 512), make_env(tmp_path, None)
    [a], _ = capped.prepare([small], progress=False)
    [b], _ = plain.prepare([small], progress=False)
    assert a.seen == a.digest and np.array_equal(a.features, b.features)
    assert [r.nbytes for r in capped.step_all(a)] == [
        r.nbytes for r in plain.step_all(b)
    ]
    index = paper_actions().index(Action(75))
    assert capped.is_reference(a, Action(75))
    _, _, uploaded = capped.step_with_reference(a, index)
    assert uploaded == capped.reference_bytes(a)  # the same upload, sent once
    assert capped.calls().new == 10  # the reference and action 75 are one call


@pytest.mark.parametrize("cap", [None, 256])
def test_the_compressor_sends_the_action_on_the_capped_photo(cap: int | None) -> None:
    from adacompress.device.compressor import Compressor

    shipped = Compressor.load("lite0")
    compressor = Compressor(
        shipped.policy,
        shipped.extractor,
        shipped.actions,
        card=replace(shipped.card, photo_cap=cap),
    )
    upload = compressor.compress(jpeg((1200, 900), seed=4))
    seen = capped_size((1200, 900), cap)
    assert (upload.width, upload.height) == scaled_size(seen, upload.action.scale)


def test_an_export_keeps_the_cap_and_sends_the_same_upload(tmp_path: Path) -> None:
    from adacompress.device.compressor import Compressor
    from adacompress.device.export import export_agent

    full = Compressor.load("lite0")
    assert full.card.photo_cap == DEFAULT_PHOTO_CAP  # the default agents are capped
    export_agent(full, tmp_path / "agent")
    exported = Compressor.load(tmp_path / "agent")
    assert exported.card.photo_cap == DEFAULT_PHOTO_CAP
    data = jpeg((1600, 1200), seed=5)
    sent = exported.compress(data)
    assert sent.data == full.compress(data).data
    assert min(sent.width, sent.height) <= DEFAULT_PHOTO_CAP
