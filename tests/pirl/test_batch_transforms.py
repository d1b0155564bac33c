"""Batched transforms: shapes, ranges, keyed determinism, and the PIL path's draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from pirl.batch_transforms import BatchViews, batched, resized_crops, to_float
from pirl.jigsaw_baseline import max_hamming_permutations
from pirl.transforms import (
    MEAN,
    STD,
    EvalView,
    ImageView,
    Jigsaw,
    Rotation,
    Views,
    to_tensor,
)
from tests.pirl.helpers import tiny_image

KEYS = [(i, 3, 1) for i in range(12)]


def pixels(size: int = 32, n: int = 12) -> tuple[list, torch.Tensor]:
    """``n`` textured images as PIL images and as one uint8 batch (b, h, w, 3)."""
    images = [tiny_image(i, size=size) for i in range(n)]
    return images, torch.from_numpy(np.stack([np.asarray(im) for im in images]))


def rngs(keys: list[tuple[int, int, int]]) -> list[np.random.Generator]:
    return [np.random.default_rng(list(k)) for k in keys]


def flat(x: object) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        return [x]
    return [t for part in x for t in flat(part)]  # type: ignore[attr-defined]


def both_paths(views: Views, size: int = 32) -> tuple[list, list]:
    """The PIL path (collated) and the batched path for the same keys, flattened."""
    images, batch = pixels(size)
    pil = [views(im, rng) for im, rng in zip(images, rngs(KEYS), strict=True)]
    return flat(default_collate(pil)), flat(BatchViews(views)(batch, rngs(KEYS)))


def test_shapes_ranges_and_permutations() -> None:
    _, batch = pixels()
    views = BatchViews(Views(ImageView(32), Jigsaw(30, 8)))
    images, (patches, perms) = views(batch, rngs(KEYS))
    assert images.shape == (12, 3, 32, 32) and images.dtype == torch.float32
    assert patches.shape == (12, 9, 3, 8, 8) and perms.shape == (12, 9)
    low, high = (0 - MEAN) / STD, (1 - MEAN) / STD
    for x in (images, patches.flatten(0, 1)):
        assert bool((x >= low - 1e-5).all()) and bool((x <= high + 1e-5).all())
    assert all(sorted(p.tolist()) == list(range(9)) for p in perms)
    rotated, ks = BatchViews(Views(Rotation(32)))(batch, rngs(KEYS))[0]
    assert rotated.shape == (12, 3, 32, 32) and set(ks.tolist()) <= {0, 1, 2, 3}


def test_randomness_is_keyed_per_image() -> None:
    _, batch = pixels()
    views = BatchViews(Views(ImageView(32), Jigsaw(30, 8)))
    a = flat(views(batch, rngs(KEYS)))
    b = flat(views(batch, rngs(KEYS)))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    other_epoch = flat(views(batch, rngs([(i, 3, 2) for i in range(12)])))
    assert not torch.equal(a[0], other_epoch[0])
    # an image's views do not depend on which other images share its batch
    alone = flat(views(batch[5:6], rngs(KEYS[5:6])))
    for together, apart in zip(a, alone, strict=True):
        assert torch.allclose(together[5:6], apart, atol=1e-6)


@pytest.mark.parametrize(
    "views",
    [
        Views(ImageView(32), Jigsaw(30, 8)),
        Views(ImageView(32), Jigsaw(48, 12)),
        Views(ImageView(32), Rotation(32)),
        Views(Jigsaw(30, 8, permutations=max_hamming_permutations(20))),
    ],
    ids=["pirl-30/8", "pirl-48/12", "rotation", "covariant-jigsaw"],
)
def test_same_draws_as_the_pil_path_up_to_resampling(views: Views) -> None:
    pil, fast = both_paths(views)
    assert [t.shape for t in pil] == [t.shape for t in fast]
    for a, b in zip(pil, fast, strict=True):
        if not a.is_floating_point():  # permutations and quarter turns
            assert torch.equal(a, b)
            continue
        # normalised units (1/255 of the range is about 0.018): PIL rounds its crops
        # to 8 bits and smooths when shrinking, grid_sample does neither
        assert float((a - b).abs().mean()) < 0.02
        assert float((a.mean() - b.mean()).abs()) < 0.01
        assert float((a.std() - b.std()).abs()) < 0.01


def test_identity_geometry_matches_the_pil_path_exactly() -> None:
    """A full-image crop at the image's own size: flips, cell offsets, colour factors
    and the shuffle must land exactly where the PIL path puts them."""
    views = Views(
        ImageView(48, scale=(1.0, 1.0)),
        Jigsaw(48, 12, scale=(1.0, 1.0)),
        Rotation(48, scale=(1.0, 1.0)),
    )
    pil, fast = both_paths(views, size=48)
    for a, b in zip(pil, fast, strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-5)


def test_resized_crops_follow_pils_box_convention() -> None:
    image = tiny_image(7, size=32)
    x = to_float(torch.from_numpy(np.array(image))[None])
    box = (4, 6, 20, 16)  # upsampling: PIL's bilinear is plain interpolation there
    fast = resized_crops(x, [box], 40)[0]
    pil = to_tensor(image.resize((40, 40), box=(4, 6, 24, 22), resample=2))
    assert float((fast - pil).abs().max()) < 1.5 / 255
    flipped = resized_crops(x, [box], 40, [True])[0]
    assert torch.equal(flipped, fast.flip(-1))


def test_a_transform_without_a_batched_version_is_refused() -> None:
    with pytest.raises(TypeError, match="EvalView"):
        batched(EvalView(32))
