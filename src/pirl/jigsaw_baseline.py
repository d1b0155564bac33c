"""The covariant Jigsaw baseline (Noroozi & Favaro, ECCV 2016): predict the permutation.

This is the pretext task PIRL builds on (docs/formulas.md, "Evaluation": PIRL should
beat it).
Patches are shuffled by one of a fixed set of permutations chosen greedily for
maximal Hamming distance; the network classifies which one. Same encoder as PIRL:
each patch -> encoder -> linear, concatenated in the shuffled order -> MLP -> logits.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn


def max_hamming_permutations(
    n: int = 100, *, size: int = 9, seed: int = 0
) -> torch.Tensor:
    """``n`` permutations of ``range(size)``, greedily far apart in Hamming distance.

    Noroozi & Favaro's algorithm: start from a random permutation, then repeatedly add
    the permutation whose minimum Hamming distance to the chosen ones is largest.

    Shape: returns (n, size), int64.
    """
    everything = np.array(list(itertools.permutations(range(size))), dtype=np.int8)
    if not 0 < n <= len(everything):
        raise ValueError(f"n must be in 1..{len(everything)}, got {n}")
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(len(everything)))]
    min_distance = (everything != everything[chosen[0]]).sum(1)
    for _ in range(n - 1):
        best = int(np.argmax(min_distance))
        chosen.append(best)
        min_distance = np.minimum(min_distance, (everything != everything[best]).sum(1))
    return torch.from_numpy(everything[chosen].astype(np.int64))


def permutation_labels(perms: torch.Tensor, permutations: torch.Tensor) -> torch.Tensor:
    """Index of each row of ``perms`` in ``permutations``.

    Shape: (batch, 9), (P, 9) -> (batch,).

    Raises:
        ValueError: a permutation not in the set.
    """
    match = (perms[:, None, :] == permutations[None, :, :]).all(dim=2)
    if not bool(match.any(dim=1).all()):
        raise ValueError("a permutation is not in the permutation set")
    return match.float().argmax(dim=1)


class JigsawClassifier(nn.Module):
    """Encoder + permutation classifier.

    Args:
        encoder: maps (batch, 3, p, p) to (batch, encoder.out_dim).
        n_permutations: number of classes.
        n_patches: 9.
        dim: per-patch embedding size.
        hidden: hidden units of the classifier MLP.

    Shape: (batch, 9, 3, p, p) -> (batch, n_permutations) logits.
    """

    def __init__(
        self,
        encoder: nn.Module,
        n_permutations: int = 100,
        *,
        n_patches: int = 9,
        dim: int = 128,
        hidden: int = 512,
    ) -> None:
        super().__init__()
        features = int(encoder.out_dim)  # type: ignore[arg-type]
        self.encoder = encoder
        self.patch = nn.Linear(features, dim)
        self.classifier = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Linear(n_patches * dim, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, n_permutations),
        )

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        b, n = patches.shape[:2]
        per_patch = self.patch(self.encoder(patches.flatten(0, 1))).view(b, -1)
        return self.classifier(per_patch)
