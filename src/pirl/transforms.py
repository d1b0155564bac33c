"""Augmentations: the image view, the jigsaw pretext transform and rotation.

Every transform is ``(PIL image, numpy Generator) -> tensors`` and draws all its
randomness from the generator it is given (see :mod:`pirl.data`), so it is
reproducible and safe in worker processes. Written with PIL, numpy and torch only.

Jigsaw geometry (SPEC.md, "Jigsaw transform"): a random crop is resized to
``grid_size`` pixels, cut into 3x3 cells of ``grid_size // 3``, and a random
``patch_size`` crop is taken inside each cell, so neighbouring patches never share an
edge. On 32-pixel images the crop is *upsampled* (``grid_size=48``: cells of 16,
patches of 12 by default); see README, "PIRL", for the measurement behind it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
GRAY = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """8-bit RGB image -> float tensor in [0, 1]. Shape: (3, height, width)."""
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Subtract the ImageNet mean and divide by its std. Shape: (..., 3, h, w)."""
    return (x - MEAN) / STD


def random_resized_crop(
    image: Image.Image,
    size: int,
    rng: np.random.Generator,
    *,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> Image.Image:
    """A random crop covering ``scale`` of the area, resized to ``size`` x ``size``."""
    width, height = image.size
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            box = (left, top, left + w, top + h)
            return image.resize((size, size), Image.Resampling.BILINEAR, box=box)
    side = min(width, height)  # fallback: centre square
    left, top = (width - side) // 2, (height - side) // 2
    box = (left, top, left + side, top + side)
    return image.resize((size, size), Image.Resampling.BILINEAR, box=box)


def color_jitter(
    x: torch.Tensor,
    rng: np.random.Generator,
    *,
    strength: float = 0.4,
    p: float = 0.8,
    gray_p: float = 0.2,
) -> torch.Tensor:
    """Independent brightness, contrast, saturation jitter and grayscale per image.

    Each image of the batch gets its own factors in ``[1 - strength, 1 + strength]``
    (with probability ``p``; else no jitter) and turns gray with probability
    ``gray_p``. Hue jitter is left out (costly, small effect at this scale).

    Shape: (n, 3, h, w) in [0, 1] -> same.
    """
    n = x.shape[0]

    def factors() -> torch.Tensor:
        draw = rng.uniform(1 - strength, 1 + strength, n)
        draw = np.where(rng.random(n) < p, draw, 1.0)
        return torch.from_numpy(draw).float().view(n, 1, 1, 1)

    brightness, contrast, saturation = factors(), factors(), factors()
    x = (x * brightness).clamp_(0, 1)
    gray = (x * GRAY).sum(1, keepdim=True)
    mean = gray.mean(dim=(2, 3), keepdim=True)
    x = ((x - mean) * contrast + mean).clamp_(0, 1)
    gray = (x * GRAY).sum(1, keepdim=True)
    x = ((x - gray) * saturation + gray).clamp_(0, 1)
    to_gray = torch.from_numpy(rng.random(n) < gray_p).view(n, 1, 1, 1)
    gray = (x * GRAY).sum(1, keepdim=True).expand_as(x)
    return torch.where(to_gray, gray, x)


class ImageView:
    """The augmented whole-image view ``v_I``: random resized crop, flip, colour.

    Args:
        size: output side in pixels.
        scale: crop area range (fraction of the image).
        jitter: colour jitter strength.
        gray_p: probability of grayscale.

    Shape: returns (3, size, size), normalised.

    Examples:
        >>> view = ImageView(32)
        >>> view(image, np.random.default_rng(0)).shape
        torch.Size([3, 32, 32])
    """

    def __init__(
        self,
        size: int = 32,
        *,
        scale: tuple[float, float] = (0.2, 1.0),
        jitter: float = 0.4,
        gray_p: float = 0.2,
    ) -> None:
        self.size, self.scale, self.jitter, self.gray_p = size, scale, jitter, gray_p

    def __call__(self, image: Image.Image, rng: np.random.Generator) -> torch.Tensor:
        crop = random_resized_crop(image, self.size, rng, scale=self.scale)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        x = color_jitter(
            to_tensor(crop)[None], rng, strength=self.jitter, gray_p=self.gray_p
        )
        return normalize(x[0])


class Jigsaw:
    """SPEC.md, "Jigsaw transform": crop, 3x3 grid, jittered patches, shuffle.

    Args:
        grid_size: side (pixels) the random crop is resized to before cutting; on
            small images a value above the image size means upsampling.
        patch_size: side of the random crop taken inside each cell (at most
            ``grid_size // grid``; smaller leaves gaps so patches share no edge).
        grid: cells per side (3 in the paper).
        scale: area range of the first random crop.
        jitter: per-patch colour jitter strength.
        gray_p: per-patch grayscale probability.
        permutations: if given, ``(P, grid*grid)`` allowed permutations to draw from
            (the covariant Jigsaw baseline); else any permutation.

    Returns ``(patches, perm)``: ``patches[i]`` is the cell ``perm[i]`` of the grid
    (cells numbered row by row). Shape: (grid*grid, 3, patch_size, patch_size), (9,).

    Examples:
        >>> patches, perm = Jigsaw(48, 12)(image, np.random.default_rng(0))
        >>> patches.shape, sorted(perm.tolist()) == list(range(9))
        (torch.Size([9, 3, 12, 12]), True)
    """

    def __init__(
        self,
        grid_size: int = 48,
        patch_size: int = 12,
        *,
        grid: int = 3,
        scale: tuple[float, float] = (0.6, 1.0),
        jitter: float = 0.4,
        gray_p: float = 0.2,
        permutations: torch.Tensor | None = None,
    ) -> None:
        cell = grid_size // grid
        if not 0 < patch_size <= cell:
            raise ValueError(
                f"patch_size must be in 1..{cell} (grid_size {grid_size} // {grid}), "
                f"got {patch_size}"
            )
        self.grid_size, self.patch_size, self.grid, self.cell = (
            grid_size,
            patch_size,
            grid,
            cell,
        )
        self.scale, self.jitter, self.gray_p = scale, jitter, gray_p
        self.permutations = permutations

    def cut(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """A random ``patch_size`` crop inside each cell, row by row.

        Shape: (3, grid_size, grid_size) -> (grid*grid, 3, patch_size, patch_size).
        """
        p, c = self.patch_size, self.cell
        patches = []
        for row in range(self.grid):
            for col in range(self.grid):
                dy, dx = (int(v) for v in rng.integers(0, c - p + 1, 2))
                top, left = row * c + dy, col * c + dx
                patches.append(x[:, top : top + p, left : left + p])
        return torch.stack(patches)

    def __call__(
        self, image: Image.Image, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        crop = random_resized_crop(image, self.grid_size, rng, scale=self.scale)
        patches = self.cut(to_tensor(crop), rng)
        patches = color_jitter(patches, rng, strength=self.jitter, gray_p=self.gray_p)
        n = self.grid * self.grid
        if self.permutations is None:
            perm = torch.from_numpy(rng.permutation(n))
        else:
            perm = self.permutations[int(rng.integers(len(self.permutations)))]
        return normalize(patches[perm]), perm.long()


class Rotation:
    """The rotation pretext transform: the image view turned by 0/90/180/270 degrees.

    Returns ``(view, k)`` with the view rotated counter-clockwise by ``k * 90``.
    Shape: (3, size, size), ().
    """

    def __init__(self, size: int = 32, **view_kwargs: object) -> None:
        self.view = ImageView(size, **view_kwargs)  # type: ignore[arg-type]

    def __call__(
        self, image: Image.Image, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        k = int(rng.integers(4))
        return torch.rot90(self.view(image, rng), k, dims=(1, 2)), torch.tensor(k)


class EvalView:
    """Deterministic view for feature extraction: resize shorter side, centre crop.

    Shape: returns (3, size, size), normalised.
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size

    def __call__(
        self, image: Image.Image, rng: np.random.Generator | None = None
    ) -> torch.Tensor:
        width, height = image.size
        if (width, height) != (self.size, self.size):
            side = min(width, height)
            left, top = (width - side) // 2, (height - side) // 2
            image = image.resize(
                (self.size, self.size),
                Image.Resampling.BILINEAR,
                box=(left, top, left + side, top + side),
            )
        return normalize(to_tensor(image))


class Views:
    """Apply several transforms to the same image; returns a tuple of their outputs."""

    def __init__(self, *transforms: object) -> None:
        self.transforms = transforms

    def __call__(
        self, image: Image.Image, rng: np.random.Generator
    ) -> tuple[object, ...]:
        return tuple(t(image, rng) for t in self.transforms)  # type: ignore[operator]
