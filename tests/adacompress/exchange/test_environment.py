from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from adacompress.cloud.service import ServiceError
from adacompress.core.labels import Answer
from adacompress.core.objective import Objective
from adacompress.device.actions import REFERENCE_ACTION, Action, paper_actions
from adacompress.exchange import cache
from tests.adacompress.fakes import SizeCloud, make_env, write_photos
from tests.helpers import write_bad_inputs


def test_step_scores_accuracy_and_size_for_the_reward(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    samples, skipped = env.prepare(write_photos(tmp_path / "img", 1), progress=False)
    assert not skipped
    low = env.step(samples[0], 0)  # q=5: small upload, answer flips
    ref = env.step(samples[0], paper_actions().index(Action(REFERENCE_ACTION.quality)))
    assert low.accuracy == 0.0 and low.size_ratio < 1.0
    reward = Objective().reward
    assert reward(low.accuracy, low.size_ratio) == pytest.approx(-low.size_ratio)
    assert ref.accuracy == 1.0 and ref.size_ratio == 1.0
    assert reward(ref.accuracy, ref.size_ratio) == 0.0


def test_answers_are_cached_across_runs(tmp_path: Path) -> None:
    paths = write_photos(tmp_path / "img", 3)
    cloud = SizeCloud()
    env = make_env(tmp_path, cloud)
    samples, _ = env.prepare(paths, progress=False)
    for sample in samples:
        env.step_all(sample)
    assert cloud.calls == 30 and env.calls().new == 30
    env.cache.close()

    again = make_env(tmp_path, cloud)  # a new process would see the same file
    samples, _ = again.prepare(paths, progress=False)
    first = [again.step_all(s) for s in samples]
    assert cloud.calls == 30, "no new service calls"
    assert again.calls().new == 0 and again.calls().cached == 30
    assert [r.accuracy for r in first[0]] == [
        r.accuracy for r in again.step_all(samples[0])
    ]


def test_answers_in_memory_are_bounded_and_agree_with_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "REMEMBERED_IMAGES", 2)
    paths = write_photos(tmp_path / "img", 3)
    cloud = SizeCloud()
    env = make_env(tmp_path, cloud)
    samples, _ = env.prepare(paths, progress=False)
    first = [env.step_all(sample) for sample in samples]
    assert len(env.answers.recent) == 2  # a long stream does not grow memory
    again = [env.step_all(sample) for sample in samples]  # the first from SQLite
    assert again == first and cloud.calls == 30


def test_features_are_cached_and_order_is_kept(tmp_path: Path) -> None:
    paths = write_photos(tmp_path / "img", 4)
    env = make_env(tmp_path)
    first, _ = env.prepare(paths, progress=False)
    assert [s.path for s in first] == paths
    # An extractor with no extract(): any recomputation would fail.
    named = {"name": "mean", "cache_name": "mean", "dim": 3}
    env.intake.extractor = type("Named", (), named)()  # type: ignore[assignment]
    second, _ = env.prepare(list(reversed(paths)), progress=False)
    assert [s.path for s in second] == list(reversed(paths))
    np.testing.assert_array_equal(second[-1].features, first[0].features)


def test_bad_images_are_skipped_with_reasons(tmp_path: Path) -> None:
    expected = write_bad_inputs(tmp_path / "bad")
    good = write_photos(tmp_path / "bad", 1)
    env = make_env(tmp_path)
    paths = sorted((tmp_path / "bad").iterdir())
    samples, skipped = env.prepare(paths, progress=False)
    assert [s.path for s in samples] == good
    # Read, hashed and decoded in a pool, the reasons still come in the paths' order.
    assert [Path(s.path) for s in skipped] == [p for p in paths if p not in good]
    reasons = {Path(s.path).name: s.error for s in skipped}
    assert set(reasons) == set(expected)
    for name, word in expected.items():
        assert word in reasons[name]


def test_service_failure_is_an_error_and_nothing_is_cached(tmp_path: Path) -> None:
    class Down(SizeCloud):
        def classify(self, images: Sequence[bytes]) -> list[Answer]:
            raise ServiceError("size-cloud unreachable")

    env = make_env(tmp_path, Down())
    samples, _ = env.prepare(write_photos(tmp_path / "img", 1), progress=False)
    with pytest.raises(ServiceError, match="unreachable"):
        env.step(samples[0], 0)
    assert env.cache.get_answers(samples[0].digest, "size-cloud", ["5", "75"]) == {}
