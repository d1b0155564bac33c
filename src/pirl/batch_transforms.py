"""The training transforms applied to a whole batch of decoded images in torch.

The PIL transforms (:mod:`pirl.transforms`) crop, cut and jitter one image at a time;
here the random choices are still drawn per image -- by the PIL transform's own
``draw``, from the image's own generator keyed by ``(index, seed, epoch)`` -- but the
pixel work is done once for the batch: every random resized crop (with its flip) is
one ``grid_sample``, the jigsaw cut is one gather, the colour jitter one call of
:func:`~pirl.transforms.apply_jitter`. So for the same key both paths make the same
choices (same boxes, flips, factors, offsets, permutations) and differ only in the
resampling: bilinear here, PIL's bilinear (which also smooths when shrinking) there.

Works on any device: the draws are made on the CPU and the pixels stay where the
images are; permutations and quarter turns come back on the CPU, as the PIL path's
collate gives them (the labels are looked up there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from pirl.transforms import (
    Box,
    ImageView,
    Jigsaw,
    JigsawDraw,
    Rotation,
    ViewDraw,
    Views,
    apply_jitter,
    normalize,
)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """8-bit channels-last images -> floats in [0, 1].

    Shape: (batch, height, width, 3) uint8 -> (batch, 3, height, width) float32.
    """
    return images.permute(0, 3, 1, 2).float().div_(255.0)


def resized_crops(
    x: torch.Tensor,
    boxes: Sequence[Box],
    size: int,
    flips: Sequence[bool] | None = None,
) -> torch.Tensor:
    """Each image's ``box`` resized (bilinear) to ``size`` x ``size``, then mirrored
    left-right where ``flips`` says so.

    Output pixel ``i`` samples the source at ``left + (i + 0.5) * w / size - 0.5``,
    PIL's convention for ``resize(box=...)``; edges repeat the border pixel.

    Shape: (batch, 3, height, width) -> (batch, 3, size, size).
    """
    b, _, height, width = x.shape
    box = torch.tensor(boxes, dtype=torch.float32, device=x.device)
    left, top, w, h = box.unbind(1)
    scale_x = w / width
    if flips is not None:
        sign = torch.tensor(flips, device=x.device)
        scale_x = torch.where(sign, -scale_x, scale_x)
    theta = torch.zeros(b, 2, 3, device=x.device)
    theta[:, 0, 0] = scale_x
    theta[:, 0, 2] = (2 * left + w) / width - 1
    theta[:, 1, 1] = h / height
    theta[:, 1, 2] = (2 * top + h) / height - 1
    grid = F.affine_grid(theta.to(x.dtype), [b, 3, size, size], align_corners=False)
    return F.grid_sample(
        x, grid, mode="bilinear", padding_mode="border", align_corners=False
    )


def stacked_jitter(factors: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """The per-image colour factors as one tensor. Shape: (sum of rows, 4)."""
    return torch.from_numpy(np.concatenate(factors)).float().to(device)


class BatchTransform(Protocol):
    """Per-image ``draw`` (the PIL transform's) and one batched ``__call__``."""

    def draw(self, rng: np.random.Generator, width: int, height: int) -> Any: ...

    def __call__(self, x: torch.Tensor, draws: Sequence[Any]) -> Any: ...


class BatchImageView:
    """:class:`~pirl.transforms.ImageView` on a batch.

    Shape: (batch, 3, h, w) in [0, 1] -> (batch, 3, size, size), normalised.
    """

    def __init__(self, view: ImageView) -> None:
        self.view = view

    def draw(self, rng: np.random.Generator, width: int, height: int) -> ViewDraw:
        return self.view.draw(rng, width, height)

    def __call__(self, x: torch.Tensor, draws: Sequence[ViewDraw]) -> torch.Tensor:
        crops = resized_crops(
            x, [d.box for d in draws], self.view.size, [d.flip for d in draws]
        )
        jitter = stacked_jitter([d.jitter for d in draws], x.device)
        return normalize(apply_jitter(crops, jitter))


class BatchJigsaw:
    """:class:`~pirl.transforms.Jigsaw` on a batch: crop, 3x3 cut, jitter, shuffle.

    Shape: (batch, 3, h, w) in [0, 1] -> patches (batch, 9, 3, p, p), normalised,
    and permutations (batch, 9) on the CPU; ``patches[b, i]`` is cell
    ``perms[b, i]``.
    """

    def __init__(self, jigsaw: Jigsaw) -> None:
        self.jigsaw = jigsaw

    def draw(self, rng: np.random.Generator, width: int, height: int) -> JigsawDraw:
        return self.jigsaw.draw(rng, width, height)

    def __call__(
        self, x: torch.Tensor, draws: Sequence[JigsawDraw]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        j = self.jigsaw
        b, n, p = len(draws), j.grid * j.grid, j.patch_size
        grids = resized_crops(x, [d.box for d in draws], j.grid_size)
        offsets = torch.from_numpy(np.stack([d.offsets for d in draws])).to(x.device)
        cells = torch.arange(n, device=x.device)
        tops = (cells // j.grid) * j.cell + offsets[..., 0]  # (batch, 9)
        lefts = (cells % j.grid) * j.cell + offsets[..., 1]
        span = torch.arange(p, device=x.device)
        rows = (tops[..., None] + span)[..., :, None]  # (batch, 9, p, 1)
        cols = (lefts[..., None] + span)[..., None, :]  # (batch, 9, 1, p)
        batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
        patches = grids.permute(0, 2, 3, 1)[batch, rows, cols]  # (batch, 9, p, p, 3)
        patches = patches.permute(0, 1, 4, 2, 3).reshape(b * n, 3, p, p)
        jitter = stacked_jitter([d.jitter for d in draws], x.device)
        patches = apply_jitter(patches, jitter).view(b, n, 3, p, p)
        perms = torch.stack([d.perm for d in draws])
        rows = torch.arange(b, device=x.device)[:, None]
        return normalize(patches[rows, perms.to(x.device)]), perms


class BatchRotation:
    """:class:`~pirl.transforms.Rotation` on a batch.

    Shape: (batch, 3, h, w) in [0, 1] -> (batch, 3, size, size), (batch,).
    """

    def __init__(self, rotation: Rotation) -> None:
        self.rotation = rotation
        self.view = BatchImageView(rotation.view)

    def draw(
        self, rng: np.random.Generator, width: int, height: int
    ) -> tuple[int, ViewDraw]:
        return self.rotation.draw(rng, width, height)

    def __call__(
        self, x: torch.Tensor, draws: Sequence[tuple[int, ViewDraw]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        views = self.view(x, [d for _, d in draws])
        ks = torch.tensor([k for k, _ in draws])
        turned = views.clone()
        for k in (1, 2, 3):
            chosen = (ks == k).to(x.device)
            turned[chosen] = torch.rot90(views[chosen], k, dims=(2, 3))
        return turned, ks


BATCHED: dict[type, type] = {
    ImageView: BatchImageView,
    Jigsaw: BatchJigsaw,
    Rotation: BatchRotation,
}


def batched(transform: object) -> BatchTransform:
    """The batched counterpart of a PIL transform.

    Raises:
        TypeError: a transform with no batched version (use the files path).
    """
    cls = BATCHED.get(type(transform))
    if cls is None:
        raise TypeError(f"no batched version of {type(transform).__name__}")
    return cls(transform)


class BatchViews:
    """:class:`~pirl.transforms.Views` on a batch: each transform's outputs, stacked.

    The draws go transform by transform, and within each image by image with that
    image's own generator, so every generator is consumed in the order
    :class:`~pirl.transforms.Views` consumes it.

    Shape: (batch, h, w, 3) uint8 and one generator per image -> a tuple with one
    batched output per transform, as the default collate of the PIL path gives.

    Examples:
        >>> views = BatchViews(Views(ImageView(32), Jigsaw(30, 8)))
        >>> rngs = [np.random.default_rng([i, 0, 0]) for i in range(4)]
        >>> pixels = torch.zeros(4, 32, 32, 3, dtype=torch.uint8)
        >>> images, (patches, perms) = views(pixels, rngs)
        >>> images.shape, patches.shape
        (torch.Size([4, 3, 32, 32]), torch.Size([4, 9, 3, 8, 8]))
    """

    def __init__(self, views: Views) -> None:
        self.parts = [batched(t) for t in views.transforms]

    def __call__(
        self, images: torch.Tensor, rngs: Sequence[np.random.Generator]
    ) -> tuple[Any, ...]:
        x = to_float(images)
        height, width = x.shape[2:]
        outputs = []
        for part in self.parts:
            draws = [part.draw(rng, width, height) for rng in rngs]
            outputs.append(part(x, draws))
        return tuple(outputs)
