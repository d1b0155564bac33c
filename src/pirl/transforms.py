"""Augmentations: the image view, the jigsaw pretext transform and rotation.

Every transform is ``(PIL image, numpy Generator) -> tensors`` and draws all its
randomness from the generator it is given (see :mod:`pirl.data`), so it is
reproducible and safe in worker processes. Written with PIL, numpy and torch only.

Each transform first *draws* its random parameters (``draw``: crop box, flip, colour
factors, cell offsets, permutation) and then renders them. The batched torch path
(:mod:`pirl.batch_transforms`) calls the same ``draw`` with the same generator, so
both paths make the same random choices for the same key and differ only in how the
pixels are resampled.

Jigsaw geometry (docs/formulas.md, "Jigsaw transform"): a random crop is resized to
``grid_size`` pixels, cut into 3x3 cells of ``grid_size // 3``, and a random
``patch_size`` crop is taken inside each cell, so neighbouring patches never share an
edge. On 32-pixel images the crop is *upsampled* (``grid_size=48``: cells of 16,
patches of 12 by default); see README, "PIRL", for the measurement behind it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
GRAY = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)

Box = tuple[int, int, int, int]
"""``(left, top, width, height)`` of a crop, in pixels of the source image."""


def to_tensor(image: Image.Image) -> torch.Tensor:
    """8-bit RGB image -> float tensor in [0, 1]. Shape: (3, height, width)."""
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Subtract the ImageNet mean and divide by its std. Shape: (..., 3, h, w)."""
    return (x - MEAN.to(x)) / STD.to(x)


def crop_box(
    width: int,
    height: int,
    rng: np.random.Generator,
    *,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> Box:
    """A random box covering ``scale`` of the area with aspect ratio in ``ratio``;
    after 10 failed tries, the centre square."""
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            return left, top, w, h
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side, side


def resize_box(image: Image.Image, size: int, box: Box) -> Image.Image:
    """The ``box`` of ``image`` resized (bilinear) to ``size`` x ``size``."""
    left, top, w, h = box
    return image.resize(
        (size, size), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h)
    )


def center_square(image: Image.Image, size: int) -> Image.Image:
    """The centre square of ``image`` resized to ``size`` (unchanged if it is one)."""
    width, height = image.size
    if (width, height) == (size, size):
        return image
    side = min(width, height)
    box = ((width - side) // 2, (height - side) // 2, side, side)
    return resize_box(image, size, box)


def draw_jitter(
    rng: np.random.Generator,
    n: int,
    *,
    strength: float = 0.4,
    p: float = 0.8,
    gray_p: float = 0.2,
) -> np.ndarray:
    """Colour factors for ``n`` images: brightness, contrast, saturation, gray.

    Each factor is in ``[1 - strength, 1 + strength]`` with probability ``p``, else
    1; the fourth column is 1 for images that turn gray (probability ``gray_p``).

    Shape: returns (n, 4).
    """
    columns = []
    for _ in range(3):
        draw = rng.uniform(1 - strength, 1 + strength, n)
        columns.append(np.where(rng.random(n) < p, draw, 1.0))
    columns.append((rng.random(n) < gray_p).astype(np.float64))
    return np.stack(columns, axis=1)


def apply_jitter(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast, saturation and grayscale from :func:`draw_jitter`.

    Hue jitter is left out (costly, small effect at this scale).

    Shape: (n, 3, h, w) in [0, 1] and (n, 4) -> (n, 3, h, w) in [0, 1].
    """
    n = x.shape[0]
    factors = factors.to(x).view(n, 4, 1, 1, 1)
    brightness, contrast, saturation = factors[:, 0], factors[:, 1], factors[:, 2]
    weights = GRAY.to(x)
    x = (x * brightness).clamp_(0, 1)
    gray = (x * weights).sum(1, keepdim=True)
    mean = gray.mean(dim=(2, 3), keepdim=True)
    x = ((x - mean) * contrast + mean).clamp_(0, 1)
    gray = (x * weights).sum(1, keepdim=True)
    x = ((x - gray) * saturation + gray).clamp_(0, 1)
    gray = (x * weights).sum(1, keepdim=True).expand_as(x)
    return torch.where(factors[:, 3] > 0.5, gray, x)


def color_jitter(
    x: torch.Tensor,
    rng: np.random.Generator,
    *,
    strength: float = 0.4,
    p: float = 0.8,
    gray_p: float = 0.2,
) -> torch.Tensor:
    """Independent brightness, contrast, saturation jitter and grayscale per image.

    Each image of the batch gets its own factors (see :func:`draw_jitter`).

    Shape: (n, 3, h, w) in [0, 1] -> same.
    """
    factors = draw_jitter(rng, x.shape[0], strength=strength, p=p, gray_p=gray_p)
    return apply_jitter(x, torch.from_numpy(factors).float())


class ViewDraw(NamedTuple):
    """The random choices of one :class:`ImageView`."""

    box: Box
    flip: bool
    jitter: np.ndarray
    """(1, 4) colour factors"""


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

    def draw(self, rng: np.random.Generator, width: int, height: int) -> ViewDraw:
        """The random choices for a ``width`` x ``height`` image."""
        box = crop_box(width, height, rng, scale=self.scale)
        flip = bool(rng.random() < 0.5)
        factors = draw_jitter(rng, 1, strength=self.jitter, gray_p=self.gray_p)
        return ViewDraw(box, flip, factors)

    def render(self, image: Image.Image, draw: ViewDraw) -> torch.Tensor:
        crop = resize_box(image, self.size, draw.box)
        if draw.flip:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        x = apply_jitter(to_tensor(crop)[None], torch.from_numpy(draw.jitter).float())
        return normalize(x[0])

    def __call__(self, image: Image.Image, rng: np.random.Generator) -> torch.Tensor:
        return self.render(image, self.draw(rng, *image.size))


class JigsawDraw(NamedTuple):
    """The random choices of one :class:`Jigsaw`."""

    box: Box
    offsets: np.ndarray
    """(grid*grid, 2) ``(dy, dx)`` of each patch inside its cell, row by row"""
    jitter: np.ndarray
    """(grid*grid, 4) colour factors per patch, in grid order"""
    perm: torch.Tensor
    """(grid*grid,) the shuffle"""


class Jigsaw:
    """docs/formulas.md, "Jigsaw transform": crop, 3x3 grid, jittered patches, shuffle.

    Args:
        grid_size: side (pixels) the random crop is resized to before cutting; on
            small images a value above the image size means upsampling.
        patch_size: side of the random crop inside each cell (at most
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

    def draw(self, rng: np.random.Generator, width: int, height: int) -> JigsawDraw:
        """The random choices for a ``width`` x ``height`` image."""
        box = crop_box(width, height, rng, scale=self.scale)
        n = self.grid * self.grid
        offsets = rng.integers(0, self.cell - self.patch_size + 1, (n, 2))
        factors = draw_jitter(rng, n, strength=self.jitter, gray_p=self.gray_p)
        if self.permutations is None:
            perm = torch.from_numpy(rng.permutation(n))
        else:
            perm = self.permutations[int(rng.integers(len(self.permutations)))]
        return JigsawDraw(box, offsets, factors, perm.long())

    def cut(self, x: torch.Tensor, offsets: np.ndarray) -> torch.Tensor:
        """The ``patch_size`` crop at ``offsets`` inside each cell, row by row.

        Shape: (3, grid_size, grid_size) -> (grid*grid, 3, patch_size, patch_size).
        """
        p, c = self.patch_size, self.cell
        patches = []
        for cell, (dy, dx) in enumerate(offsets.tolist()):
            row, col = divmod(cell, self.grid)
            top, left = row * c + dy, col * c + dx
            patches.append(x[:, top : top + p, left : left + p])
        return torch.stack(patches)

    def __call__(
        self, image: Image.Image, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        draw = self.draw(rng, *image.size)
        crop = resize_box(image, self.grid_size, draw.box)
        patches = self.cut(to_tensor(crop), draw.offsets)
        patches = apply_jitter(patches, torch.from_numpy(draw.jitter).float())
        return normalize(patches[draw.perm]), draw.perm


class Rotation:
    """The rotation pretext transform: the image view turned by 0/90/180/270 degrees.

    Returns ``(view, k)`` with the view rotated counter-clockwise by ``k * 90``.
    Shape: (3, size, size), ().
    """

    def __init__(self, size: int = 32, **view_kwargs: object) -> None:
        self.view = ImageView(size, **view_kwargs)  # type: ignore[arg-type]

    def draw(
        self, rng: np.random.Generator, width: int, height: int
    ) -> tuple[int, ViewDraw]:
        """The quarter turns ``k`` and the view's random choices."""
        k = int(rng.integers(4))
        return k, self.view.draw(rng, width, height)

    def __call__(
        self, image: Image.Image, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        k, draw = self.draw(rng, *image.size)
        return torch.rot90(self.view.render(image, draw), k, dims=(1, 2)), torch.tensor(
            k
        )


class EvalView:
    """Deterministic view for feature extraction: resize shorter side, centre crop.

    Shape: returns (3, size, size), normalised.
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size

    def __call__(
        self, image: Image.Image, rng: np.random.Generator | None = None
    ) -> torch.Tensor:
        return normalize(to_tensor(center_square(image, self.size)))


class Views:
    """Apply several transforms to the same image; returns a tuple of their outputs."""

    def __init__(self, *transforms: object) -> None:
        self.transforms = transforms

    def __call__(
        self, image: Image.Image, rng: np.random.Generator
    ) -> tuple[object, ...]:
        return tuple(t(image, rng) for t in self.transforms)  # type: ignore[operator]
