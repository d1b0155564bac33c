from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adacompress.cloud.backends import BACKENDS, get_backend
from adacompress.cloud.service import ServiceError
from adacompress.core.datasets import builtin_photos
from adacompress.core.labels import imagenet_classes
from adacompress.device.actions import Action
from adacompress.device.codec import encode
from adacompress.device.features import get_extractor
from basekit.images import load_image

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian


def test_registry_and_class_names() -> None:
    assert {"lite0", "lite1", "lite2"} <= set(BACKENDS)
    classes = imagenet_classes()
    assert len(classes) == 1000
    assert classes[0] == ("n01440764", "tench")
    assert classes[281][1] == "tabby"
    with pytest.raises(ValueError, match="unknown backend"):
        get_backend("nope")


def test_lite0_answers_a_real_photo() -> None:
    chelsea = next(p for p in builtin_photos() if p.name == "chelsea.png")
    upload = encode(load_image(chelsea), Action(75))
    answer = get_backend("lite0").classify([upload])[0]
    assert len(answer) == 10
    assert answer[0].class_id in CAT_CLASSES
    scores = [label.score for label in answer]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1


def test_batched_answers_equal_single_answers(imagenet_dir: Path) -> None:
    paths = sorted(imagenet_dir.glob("*.JPEG"))[:10]
    uploads = [encode(load_image(p), Action(75)) for p in paths]
    cloud = get_backend("lite0")
    batched = cloud.classify(uploads)
    single = [cloud.classify([u])[0] for u in uploads]
    for a, b in zip(batched, single, strict=True):
        assert [x.class_id for x in a[:5]] == [x.class_id for x in b[:5]]
        assert a[0].score == pytest.approx(b[0].score, abs=1e-4)
    # The cloud is a real ImageNet classifier: most samples are labelled right.
    correct = sum(answer[0].class_id == i for i, answer in enumerate(batched))
    assert correct >= 7


@pytest.mark.parametrize("backend", ["lite1", "lite2"])
def test_bigger_clouds_agree_on_an_easy_photo(backend: str) -> None:
    chelsea = next(p for p in builtin_photos() if p.name == "chelsea.png")
    answer = get_backend(backend).classify([encode(load_image(chelsea), Action(75))])[0]
    assert answer[0].class_id in CAT_CLASSES


def test_service_refuses_a_non_image_upload() -> None:
    with pytest.raises(ServiceError, match="refused"):
        get_backend("lite0").classify([b"not a jpeg"])


def test_lite0_features_shape_and_determinism() -> None:
    images = [load_image(p) for p in builtin_photos()[:3]]
    extractor = get_extractor("lite0")
    first = extractor.extract(images)
    assert first.shape == (3, 1280) and first.dtype == np.float32
    np.testing.assert_allclose(extractor.extract(images[:1]), first[:1], atol=1e-4)
    confidence = get_extractor("confidence").extract(images[:1])
    assert confidence.shape == (1, 11)
    top = confidence[0, :10]
    assert np.all(np.diff(top) <= 0) and 0 < top.sum() <= 1.0001
    assert confidence[0, 10] == pytest.approx(
        np.log(images[0].width * images[0].height)
    )
