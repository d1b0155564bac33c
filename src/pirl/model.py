"""The PIRL network: a shared encoder with heads ``f`` and ``g`` (docs/formulas.md,
"Network").

``f``: pooled features of the whole image -> linear -> 128-d.
``g`` (jigsaw): each of the 9 patches goes through the same encoder, each pooled patch
feature -> linear -> 128-d, the 9 are concatenated in the shuffled order -> linear ->
128-d. ``g`` (rotation): pooled features of the rotated image -> linear -> 128-d.
Both embeddings are L2-normalised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PRETEXTS = ("jigsaw", "rotation", "none")


class PIRLModel(nn.Module):
    """Encoder ``phi`` plus heads ``f`` and ``g``.

    Args:
        encoder: maps (batch, 3, h, w) to (batch, encoder.out_dim).
        dim: embedding size (128 in the paper).
        pretext: ``"jigsaw"``, ``"rotation"`` or ``"none"`` (no ``g``: NPID).
        n_patches: jigsaw patches (9).

    Examples:
        >>> model = PIRLModel(resnet("resnet18", width=16, cifar_stem=True))
        >>> f, g = model(torch.randn(4, 3, 32, 32), torch.randn(4, 9, 3, 12, 12))
        >>> f.shape, g.shape
        (torch.Size([4, 128]), torch.Size([4, 128]))
    """

    def __init__(
        self,
        encoder: nn.Module,
        *,
        dim: int = 128,
        pretext: str = "jigsaw",
        n_patches: int = 9,
    ) -> None:
        super().__init__()
        if pretext not in PRETEXTS:
            raise ValueError(f"pretext must be one of {PRETEXTS}, got {pretext!r}")
        features = int(encoder.out_dim)  # type: ignore[arg-type]
        self.encoder = encoder
        self.pretext = pretext
        self.n_patches = n_patches
        self.f = nn.Linear(features, dim)
        if pretext == "jigsaw":
            self.g_patch = nn.Linear(features, dim)
            self.g = nn.Linear(n_patches * dim, dim)
        elif pretext == "rotation":
            self.g = nn.Linear(features, dim)

    def embed_image(self, images: torch.Tensor) -> torch.Tensor:
        """``f(v_I)``, L2-normalised. Shape: (batch, 3, h, w) -> (batch, dim)."""
        return F.normalize(self.f(self.encoder(images)), dim=1)

    def embed_pretext(self, pretext: torch.Tensor) -> torch.Tensor:
        """``g(v_{I^t})``, L2-normalised.

        Shape: jigsaw (batch, 9, 3, p, p) or rotation (batch, 3, h, w) -> (batch, dim).
        """
        if self.pretext == "jigsaw":
            b, n = pretext.shape[:2]
            patches = self.encoder(pretext.flatten(0, 1))  # (b*9, features)
            per_patch = self.g_patch(patches).view(b, n * self.g_patch.out_features)
            return F.normalize(self.g(per_patch), dim=1)
        if self.pretext == "rotation":
            return F.normalize(self.g(self.encoder(pretext)), dim=1)
        raise ValueError("this model has no g head (pretext='none')")

    def forward(
        self, images: torch.Tensor, pretext: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(f(v_I), g(v_{I^t}))``; ``g`` is None without a pretext input."""
        f = self.embed_image(images)
        g = None if pretext is None else self.embed_pretext(pretext)
        return f, g
