"""The small full-batch classifier fit the benchmark scripts share."""

from __future__ import annotations

import torch

STEPS = 300
"""Adam steps of a fit (a smoke run takes fewer)."""


def fit_logits(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    weight_decay: float,
    steps: int | None = None,
    lr: float = 1e-2,
) -> None:
    """Full-batch Adam on the binary cross-entropy of ``model(inputs)`` (logits,
    reshaped to ``targets``' shape) against ``targets`` in [0, 1]; ``steps``
    (default :data:`STEPS`) of them."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(STEPS if steps is None else steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            model(inputs).reshape(targets.shape), targets
        )
        loss.backward()
        optimizer.step()
