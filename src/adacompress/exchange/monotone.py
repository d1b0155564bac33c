"""What one answer says about the others: survival is (nearly) monotone.

If an upload keeps the cloud's answer, an upload at least as large in every respect
-- the same format, the same or a larger scale, the same or a higher quality --
almost always keeps it too; if it loses the answer, every upload at most as large
does as well. So a few answers per image fix many: a partly known row of outcomes is
completed by propagation, and the next action to ask about is the one whose answer,
either way, is expected to settle the most unknowns (bisection when nothing else is
known).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adacompress.device.actions import Action


def dominance(actions: Sequence[Action]) -> np.ndarray:
    """``up[i, j]``: action ``j`` is in the same format as action ``i`` and at least
    it in scale and quality, so ``i`` surviving implies ``j`` does (qualities of
    different formats are not comparable). Shape: (n_actions, n_actions), bool."""
    scale = np.array([a.scale for a in actions])
    quality = np.array([a.quality for a in actions])
    format_ = np.array([a.format for a in actions])
    return (
        (scale[None, :] >= scale[:, None])
        & (quality[None, :] >= quality[:, None])
        & (format_[None, :] == format_[:, None])
    )


def propagate(known: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Fill what the known outcomes imply; an entry both sides claim stays unknown.

    Args:
        known: 1 (kept), 0 (lost) or NaN (unknown) per action. Shape: (n_actions,).
        up: :func:`dominance` of the actions.

    Returns the completed row (observed entries are never changed).
    """
    kept = known == 1
    lost = known == 0
    above = up[kept].any(axis=0)  # implied kept
    below = up[:, lost].any(axis=1)  # implied lost
    out = known.astype(float).copy()
    unknown = np.isnan(known)
    out[unknown & above & ~below] = 1.0
    out[unknown & below & ~above] = 0.0
    return out


def next_query(
    known: np.ndarray,
    survival: np.ndarray,
    up: np.ndarray,
    *,
    cost: np.ndarray | None = None,
    trust: float | None = None,
) -> int | None:
    """The unknown action worth asking about next.

    Its answer settles itself and, if kept, every unknown above it, if lost, every
    unknown below it; the score is the smaller of the two (asking in the middle
    settles the most whatever the answer: bisection) times how uncertain the belief
    is about it (binary entropy: an answer the model is sure of teaches little).

    With ``trust`` (and each action's ``cost``), the action the policy would send
    is checked first: the cheapest unknown one believed kept at ``trust`` -- where a
    wrong belief costs answers, an answer teaches the most.

    Args:
        known: the row so far (1, 0, NaN). Shape: (n_actions,).
        survival: the current belief that each action keeps the answer.
        up: :func:`dominance` of the actions.
        cost: each action's size (any scale), with ``trust``.
        trust: the belief at which the policy sends an action.

    Returns None when nothing is unknown.
    """
    unknown = np.isnan(known)
    if not unknown.any():
        return None
    if trust is not None and cost is not None:
        trusted = unknown & (survival >= trust)
        if trusted.any():
            return int(np.flatnonzero(trusted)[np.argmin(cost[trusted])])
    p = np.clip(survival, 1e-6, 1 - 1e-6)
    entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    settled_if_kept = (unknown[None, :] & up).sum(axis=1)
    settled_if_lost = (unknown[:, None] & up).sum(axis=0)
    score = np.minimum(settled_if_kept, settled_if_lost) * entropy
    score[~unknown] = -1.0
    return int(np.argmax(score))


def violations(kept: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Per image, the pairs that break monotonicity: a larger upload lost the answer
    a smaller one kept. Shape: kept (n_images, n_actions) -> (n_images,) counts."""
    strict = up & ~np.eye(len(up), dtype=bool)
    kept = kept == 1
    lost = ~kept
    return np.einsum(
        "ni,ij,nj->n", kept.astype(int), strict.astype(int), lost.astype(int)
    )
