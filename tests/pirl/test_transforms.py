from __future__ import annotations

import numpy as np
import pytest
import torch

from pirl.transforms import (
    ImageView,
    Jigsaw,
    Rotation,
    color_jitter,
    normalize,
    to_tensor,
)
from tests.pirl.helpers import tiny_image


def identity_jigsaw(**kwargs: object) -> Jigsaw:
    """A jigsaw without colour change and with a full-image crop (inspectable)."""
    return Jigsaw(scale=(1.0, 1.0), jitter=0.0, gray_p=0.0, **kwargs)  # type: ignore[arg-type]


def test_jigsaw_shapes_and_permutation() -> None:
    patches, perm = Jigsaw(48, 12)(tiny_image(0), np.random.default_rng(0))
    assert patches.shape == (9, 3, 12, 12)
    assert sorted(perm.tolist()) == list(range(9))


def test_jigsaw_patch_i_comes_from_cell_perm_i() -> None:
    """Bookkeeping: undo the shuffle with the returned permutation."""
    image = tiny_image(1, size=48)  # grid_size 48 and a full crop: no resampling
    jigsaw = identity_jigsaw(grid_size=48, patch_size=16)  # patch = cell: exact cells
    patches, perm = jigsaw(image, np.random.default_rng(3))
    grid = normalize(to_tensor(image))
    for i in range(9):
        row, col = divmod(int(perm[i]), 3)
        cell = grid[:, row * 16 : row * 16 + 16, col * 16 : col * 16 + 16]
        assert torch.allclose(patches[i], cell, atol=1e-5)


def test_jigsaw_patches_stay_inside_their_cells() -> None:
    """With patch < cell each patch is a sub-window of its own cell (no shared edge)."""
    image = tiny_image(2, size=48)
    jigsaw = identity_jigsaw(grid_size=48, patch_size=12)
    grid = normalize(to_tensor(image))
    for seed in range(5):
        patches, perm = jigsaw(image, np.random.default_rng(seed))
        for i in range(9):
            row, col = divmod(int(perm[i]), 3)
            cell = grid[:, row * 16 : (row + 1) * 16, col * 16 : (col + 1) * 16]
            windows = cell.unfold(1, 12, 1).unfold(2, 12, 1)  # (3, 5, 5, 12, 12)
            diff = (windows - patches[i][:, None, None]).abs().amax(dim=(0, 3, 4))
            assert float(diff.min()) < 1e-5


def test_jigsaw_draws_from_a_given_permutation_set() -> None:
    permutations = torch.tensor([[8, 7, 6, 5, 4, 3, 2, 1, 0], list(range(9))])
    jigsaw = Jigsaw(48, 12, permutations=permutations)
    seen = {
        tuple(jigsaw(tiny_image(0), np.random.default_rng(s))[1].tolist())
        for s in range(20)
    }
    assert seen == {tuple(p.tolist()) for p in permutations}


def test_bad_geometry_is_refused() -> None:
    with pytest.raises(ValueError, match="patch_size"):
        Jigsaw(30, 12)


def test_transforms_are_reproducible_from_the_generator() -> None:
    image = tiny_image(4)
    for transform in (ImageView(32), Jigsaw(48, 12), Rotation(32)):
        a = transform(image, np.random.default_rng(7))
        b = transform(image, np.random.default_rng(7))
        a_t = a if isinstance(a, torch.Tensor) else a[0]
        b_t = b if isinstance(b, torch.Tensor) else b[0]
        assert torch.equal(a_t, b_t)


def test_rotation_labels_the_quarter_turns() -> None:
    image = tiny_image(5)
    rotation = Rotation(32, scale=(1.0, 1.0), jitter=0.0, gray_p=0.0)
    ks = set()
    for seed in range(12):
        rotated, k = rotation(image, np.random.default_rng(seed))
        ks.add(int(k))
        # the same draw without the rotation, turned back, is the same view
        upright = torch.rot90(rotated, -int(k), dims=(1, 2))
        assert upright.shape == (3, 32, 32)
    assert ks == {0, 1, 2, 3}


def test_color_jitter_is_per_image_and_grayscale_is_gray() -> None:
    x = torch.rand(64, 3, 8, 8)
    out = color_jitter(x, np.random.default_rng(0), strength=0.4, gray_p=1.0)
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 1], out[:, 2])
    out = color_jitter(x, np.random.default_rng(0), strength=0.4, p=1.0, gray_p=0.0)
    ratio = out.mean(dim=(1, 2, 3)) / x.mean(dim=(1, 2, 3))
    assert float(ratio.std()) > 0.01  # different factors per image
    assert float(out.min()) >= 0 and float(out.max()) <= 1
