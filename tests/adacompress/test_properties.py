"""Property-based tests (hypothesis) of the pure parts: the codec, the action keys,
the monotone implications, the estimate rate, the drift test's bounds and the
answer cache's keys."""

from __future__ import annotations

import io
import math
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from adacompress.core.labels import Label
from adacompress.core.limits import UploadLimits
from adacompress.device.actions import FORMATS, Action, get_action_set
from adacompress.device.codec import encode, scaled_size
from adacompress.exchange.cache import AnswerCache, Outcome
from adacompress.exchange.monotone import dominance, propagate
from adacompress.runtime.p_est import EstimateRate
from adacompress.runtime.settings import DriftSettings, EstimateSettings
from adacompress.runtime.wald import DriftTest, wald_bounds
from basekit.images import ImageError

FAST = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

actions = st.builds(
    Action,
    quality=st.integers(1, 100),
    scale=st.floats(0.01, 1.0, allow_nan=False),
    format=st.sampled_from(sorted(FORMATS)),
)


@st.composite
def rgb_images(draw: st.DrawFn) -> Image.Image:
    width, height = draw(st.integers(1, 96)), draw(st.integers(1, 96))
    seed = draw(st.integers(0, 2**32 - 1))
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3))
    return Image.fromarray(pixels.astype(np.uint8))


@FAST
@given(action=actions)
def test_an_action_key_parses_back_to_the_action(action: Action) -> None:
    parsed = Action.from_key(action.key)
    assert parsed.quality == action.quality and parsed.format == action.format
    assert math.isclose(parsed.scale, action.scale, rel_tol=1e-5)
    assert Action.from_key(parsed.key) == parsed  # the key is a fixed point


@FAST
@given(
    image=rgb_images(),
    action=actions,
    min_side=st.integers(1, 64),
    max_bytes=st.none() | st.integers(1024, 20_000),
)
def test_an_encode_decodes_within_the_limits(
    image: Image.Image, action: Action, min_side: int, max_bytes: int | None
) -> None:
    limits = UploadLimits(min_side=min_side, max_bytes=max_bytes)
    try:
        data = encode(image, action, limits)
    except ImageError:  # under the minimum side, or nothing fits the bytes
        assert min(image.size) < min_side or max_bytes is not None
        return
    assert min(image.size) >= min_side  # a smaller photo is refused, not sent
    with Image.open(io.BytesIO(data)) as sent:
        sent.load()
        size = sent.size
    assert FORMATS[action.format][0].endswith(sent.format.lower())
    assert max_bytes is None or len(data) <= max_bytes
    assert min(size) >= min_side  # never under the floor...
    assert size[0] <= image.width and size[1] <= image.height  # ...never upscaled
    if max_bytes is None:
        assert size == scaled_size(image.size, action.scale, min_side)


@FAST
@given(image=rgb_images(), quality=st.integers(1, 100))
def test_a_downscale_never_has_more_pixels(image: Image.Image, quality: int) -> None:
    areas = [
        math.prod(scaled_size(image.size, scale))
        for scale in (1.0, 0.75, 0.5, 0.35, 0.25)
    ]
    assert areas == sorted(areas, reverse=True)


@FAST
@given(st.data())
def test_implied_outcomes_respect_dominance(data: st.DataObject) -> None:
    """Whatever is known, propagation never changes an observed entry, and what it
    fills agrees with an outcome table that is monotone (kept implies kept above)."""
    grid = get_action_set("scale-quality")
    up = dominance(grid)
    threshold = data.draw(st.floats(0.0, 1.0))
    budget = np.array([a.scale * a.quality / 100 for a in grid])
    truth = (budget >= threshold).astype(float)  # monotone by construction
    assert all(truth[j] >= truth[i] for i in range(25) for j in np.flatnonzero(up[i]))
    seen = data.draw(st.lists(st.booleans(), min_size=25, max_size=25))
    known = np.where(seen, truth, np.nan)
    filled = propagate(known, up)
    observed = ~np.isnan(known)
    np.testing.assert_array_equal(filled[observed], known[observed])
    implied = ~np.isnan(filled)
    np.testing.assert_array_equal(filled[implied], truth[implied])


@FAST
@given(accuracies=st.lists(st.floats(0.0, 1.0), max_size=200))
def test_the_estimate_rate_stays_within_its_bounds(accuracies: list[float]) -> None:
    s = EstimateSettings()
    rate = EstimateRate(s.p_est_initial)
    for accuracy in accuracies:
        rate.add(accuracy, s)
        assert s.p_est_min <= rate.p_est <= s.p_est_max
        assert len(rate.estimates) <= s.window
        assert 0.0 <= rate.recent() <= 1.0


@FAST
@given(
    alpha=st.floats(0.001, 0.4),
    beta=st.floats(0.001, 0.4),
    outcomes=st.lists(st.sampled_from([0.0, 1.0]), max_size=300),
)
def test_the_drift_test_ends_between_its_bounds(
    alpha: float, beta: float, outcomes: list[float]
) -> None:
    s = DriftSettings(drift_test_alpha=alpha, drift_test_beta=beta)
    low, high = wald_bounds(s)
    assert low < 0 < high
    test = DriftTest()
    test.start()
    for accuracy in outcomes:
        if test.rejects(s):
            break
        test.add(accuracy, s)
        assert test.llr is None or test.llr > low  # "no change" ends the test


@settings(max_examples=30, deadline=None)
@given(
    digest=st.text(min_size=1, max_size=80),
    service=st.text(min_size=1, max_size=40),
    answers=st.dictionaries(
        st.builds(lambda a: a.key, actions),
        st.tuples(
            st.integers(0, 10**8),
            st.integers(-1, 999),
            st.text(max_size=20),
            st.floats(0, 1),
        ),
        max_size=5,
    ),
)
def test_the_answer_cache_gives_back_what_it_was_given(
    digest: str, service: str, answers: dict[str, tuple[int, int, str, float]]
) -> None:
    outcomes = {
        key: Outcome(nbytes, [Label(class_id, name, score)])
        for key, (nbytes, class_id, name, score) in answers.items()
    }
    with tempfile.TemporaryDirectory() as tmp:
        with AnswerCache(Path(tmp, "cache.sqlite")) as cache:
            cache.put_answers(digest, service, outcomes)
            found = cache.get_answers(digest, service, [*outcomes, "never-asked"])
            other = cache.get_answers(digest + "x", service, list(outcomes))
    assert found == outcomes and other == {}
