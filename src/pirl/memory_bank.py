"""The memory bank: one L2-normalised entry per training image (docs/formulas.md,
"Memory bank").

Follows VISSL's PIRL (not lightly's FIFO queue): slot ``i`` holds the exponential
moving average of ``f(v_I)`` for image ``i``, ``m_I <- normalize(mu * m_I + (1 - mu) *
f(v_I))`` with ``mu = 0.5``, updated after the loss. Negatives ``I' != I`` are drawn
uniformly from the other slots.

Several processes (``torchrun``) keep identical banks: the update all-gathers the
indices and embeddings of every process first, and negatives are drawn for the
*global* batch from a generator seeded the same on every process, each process using
its own rows. One process with the combined batch therefore draws the same negatives
and ends with the same bank.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


class MemoryBank(nn.Module):
    """One ``dim``-d unit vector per training image, momentum-updated.

    Args:
        size: number of training images ``|D|``.
        dim: entry size (128).
        momentum: weight of the old entry in the update (0.5 in the paper).
        seed: seed of the random initial entries and of negative sampling.

    Shape: ``bank`` is (size, dim).

    Examples:
        >>> bank = MemoryBank(50_000)
        >>> negatives = bank.sample_negatives(torch.tensor([0, 7]), 4096)  # (2, 4096)
        >>> bank.update(torch.tensor([0, 7]), f.detach())
    """

    bank: torch.Tensor

    def __init__(
        self, size: int, dim: int = 128, *, momentum: float = 0.5, seed: int = 0
    ) -> None:
        super().__init__()
        if size < 2:
            raise ValueError(f"a memory bank needs at least 2 images, got {size}")
        self.size, self.dim, self.momentum = size, dim, momentum
        init = torch.Generator().manual_seed(seed)
        self.register_buffer(
            "bank", F.normalize(torch.randn(size, dim, generator=init), dim=1)
        )
        self.generator = torch.Generator().manual_seed(seed + 1)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        """The entries ``m_I``. Shape: (...,) -> (..., dim)."""
        return self.bank[indices]

    def sample_negatives(
        self,
        indices: torch.Tensor,
        n: int,
        *,
        rank: int = 0,
        world: int = 1,
    ) -> torch.Tensor:
        """``n`` slot numbers per image, uniform over the slots other than its own.

        With ``world > 1`` every process passes its local ``indices``; negatives are
        drawn for ``world * batch`` rows (same generator state everywhere) and this
        process keeps rows ``rank * batch`` onwards.

        Shape: (batch,) -> (batch, n).
        """
        batch = indices.shape[0]
        draw = torch.randint(
            0, self.size - 1, (world * batch, n), generator=self.generator
        )
        draw = draw[rank * batch : (rank + 1) * batch].to(indices.device)
        # Uniform over {0..size-1} \ {i}: draw from size-1 values, skip over i.
        return draw + (draw >= indices[:, None]).long()

    def sample_shared(self, n: int) -> torch.Tensor:
        """``n`` slot numbers, uniform, one set shared by the whole batch.

        The same draw on every process (same generator state). The caller masks an
        image's own slot. Shape: (n,).
        """
        return torch.randint(0, self.size, (n,), generator=self.generator)

    @torch.no_grad()
    def update(self, indices: torch.Tensor, features: torch.Tensor) -> None:
        """``m_I <- normalize(mu * m_I + (1 - mu) * f)`` for every process's batch.

        Shape: indices (batch,), features (batch, dim).
        """
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            indices, features = _all_gather(indices), _all_gather(features)
        features = features.detach().to(self.bank.dtype)
        mixed = self.momentum * self.bank[indices] + (1 - self.momentum) * features
        self.bank[indices] = F.normalize(mixed, dim=1)

    def get_extra_state(self) -> Any:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: Any) -> None:
        self.generator.set_state(state["generator"])


def _all_gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every process in rank order (equal shapes)."""
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)
