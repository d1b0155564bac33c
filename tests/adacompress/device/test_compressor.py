"""The device side as one object: the same choice as evaluate and the runtime, every
input kind, bad inputs as one-line errors."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from adacompress.cli import main
from adacompress.core.datasets import builtin_photos
from adacompress.core.limits import UploadLimits
from adacompress.device.compressor import Compressor
from adacompress.device.resolution import DEFAULT_PHOTO_CAP
from basekit.images import ImageError
from tests.helpers import photo, write_bad_inputs

PHOTOS = builtin_photos()[:6]


@pytest.fixture(scope="module")
def compressor() -> Compressor:
    return Compressor.load("lite0", actions="paper")  # the alpha-DQN: greedy by score


def test_inputs_of_every_kind_give_the_same_upload(compressor: Compressor) -> None:
    path = PHOTOS[3]
    from_path = compressor.compress(path)
    from_bytes = compressor.compress(path.read_bytes())
    from_image = compressor.compress(Image.open(path))
    assert from_path.data == from_bytes.data == from_image.data
    assert from_path.action == from_bytes.action == from_image.action
    assert from_path.mime == "image/jpeg" and from_path.extension == ".jpg"
    assert from_path.source_bytes == path.stat().st_size
    assert from_image.source_bytes is None
    decoded = Image.open(io.BytesIO(from_path.data))
    assert decoded.size == (from_path.width, from_path.height)
    assert from_path.nbytes < path.stat().st_size


def test_compress_many_batches_but_chooses_as_one_by_one(
    compressor: Compressor,
) -> None:
    many = compressor.compress_many(PHOTOS)
    one_by_one = [compressor.compress(p) for p in PHOTOS]
    assert [u.action for u in many] == [u.action for u in one_by_one]
    assert [u.data for u in many] == [u.data for u in one_by_one]


def test_one_photo_starts_no_thread_pool(
    compressor: Compressor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compress() of one photo, what most API users call, paid for a thread pool
    each call (issue 32; fixed with the photo cap): many photos share one."""
    pools: list[int] = []

    class Counted(ThreadPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pools.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr("adacompress.device.compressor.ThreadPoolExecutor", Counted)
    compressor.compress(PHOTOS[0])
    assert pools == []
    compressor.compress_many(PHOTOS[:3])
    assert pools == [1]


def test_the_choice_is_greedy_and_never_dominated(compressor: Compressor) -> None:
    features = compressor.features([compressor.decode(p) for p in PHOTOS])
    choices = compressor.choose(features)
    scores = compressor.policy.scores(features)
    allowed = compressor.candidates
    assert all(not compressor.actions[i].dominated for i in allowed)
    expected = [allowed[int(np.argmax(row[allowed]))] for row in scores]
    assert choices.tolist() == expected
    # What its training left: exploration, never used to choose.
    assert compressor.policy.progress.epsilon >= 0


def test_bad_inputs_are_one_line_errors(compressor: Compressor, tmp_path: Path) -> None:
    expected = write_bad_inputs(tmp_path)
    for name, word in expected.items():
        with pytest.raises(ImageError, match=word) as caught:
            compressor.compress(tmp_path / name)
        assert "\n" not in str(caught.value) and name in str(caught.value)


def test_compress_many_gives_each_input_its_upload_or_its_error(
    compressor: Compressor, tmp_path: Path
) -> None:
    """A bad file among good ones costs the good ones nothing: one result an input,
    in order (it stopped at the first bad file, issue 32)."""
    write_bad_inputs(tmp_path)
    sources = [tmp_path / "zero.jpg", PHOTOS[0], tmp_path / "notes.png", PHOTOS[1]]
    results = compressor.compress_many(sources)
    assert [type(r).__name__ for r in results] == [
        "ImageError",
        "Upload",
        "ImageError",
        "Upload",
    ]
    assert "empty" in str(results[0]) and "not an image" in str(results[2])
    assert results[1] == compressor.compress(PHOTOS[0])


def test_limits_are_honoured() -> None:
    tight = Compressor.load("lite0", limits=UploadLimits(min_side=200))
    upload = tight.compress(PHOTOS[0])
    assert min(upload.width, upload.height) >= 200 or upload.action.scale == 1.0


def test_a_photo_no_setting_fits_is_its_own_error() -> None:
    """An upload limit no setting meets fails that photo, not the batch."""
    tight = Compressor.load("lite0", limits=UploadLimits(min_side=300, max_bytes=1024))
    results = tight.compress_many(PHOTOS[:3])
    assert all(isinstance(r, ImageError) for r in results)
    assert "under 1,024 bytes" in str(results[0])
    with pytest.raises(ImageError, match="under 1,024 bytes"):
        tight.compress(PHOTOS[0])


def test_unknown_agents_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="unknown shipped agent 'lite3'"):
        Compressor.load("lite3")
    with pytest.raises(ValueError, match="not found"):
        Compressor.load("no/such/agent.pt")
    with pytest.raises(ValueError, match="trained with actions 'scale-quality'"):
        Compressor.load(
            Compressor.load("lite0-scale-quality").source,
            actions="paper",
        )


@pytest.mark.parametrize("actions", ["paper", "scale-quality"])
def test_evaluate_and_the_runtime_choose_what_the_compressor_chooses(
    actions: str, tmp_path: Path
) -> None:
    compressor = Compressor.load("lite0", actions=actions)
    expected = {
        p.name: u.action.key
        for p, u in zip(PHOTOS, compressor.compress_many(PHOTOS), strict=True)
    }
    listing = tmp_path / "photos.txt"
    listing.write_text("\n".join(str(p) for p in PHOTOS))
    report = tmp_path / "report.json"
    assert (
        main(
            [
                "--quiet",
                "evaluate",
                "--images",
                str(listing),
                "--actions",
                actions,
                "--json",
                str(report),
            ]
        )
        == 0
    )
    counts = json.loads(report.read_text())["agent"]["actions"]
    assert {k: v for k, v in counts.items() if v} == _counts(expected.values())
    # The runtime, never estimating and its threshold frozen (the control moves it
    # with every answer): every image is an inference of that choice.
    overrides = [
        f"--{k.replace('_', '-')}={v}"
        for k, v in (
            ("p_est_initial", 0.0),
            ("p_est_min", 0.0),
            ("p_est_max", 0.0),
            ("drift_window", 0),
        )
    ] + ["--no-threshold-control"]
    state = tmp_path / "state"
    assert (
        main(
            [
                "--quiet",
                "run",
                "--images",
                str(listing),
                "--actions",
                actions,
                "--state",
                str(state),
                *overrides,
            ]
        )
        == 0
    )
    records = json.loads((state / "report.json").read_text())["records"]
    assert {Path(r["path"]).name: r["action"] for r in records} == expected
    assert {r["state"] for r in records} == {"inference"}


def _counts(keys: object) -> dict[str, int]:
    out: dict[str, int] = {}
    for key in keys:  # type: ignore[attr-defined]
        out[key] = out.get(key, 0) + 1
    return out


def test_the_photo_cap_never_goes_below_the_services_minimum_side() -> None:
    """A photo over the cap is reduced to it, but never below the side the service
    needs: else every large photo would be skipped under a minimum above the cap."""
    big = photo(5, (1000, 800))
    capped = Compressor.load("lite0")
    assert capped.card.photo_cap == DEFAULT_PHOTO_CAP
    assert min(capped.decode(big).size) == DEFAULT_PHOTO_CAP
    strict = Compressor.load("lite0", limits=UploadLimits(min_side=600))
    assert min(strict.decode(big).size) == 600
    upload = strict.compress(big)
    assert min(upload.width, upload.height) >= 600
