"""The live certificate: a lower confidence bound on the kept rate of a run's
answers, valid at every image at once (docs/formulas.md, "Certificate").

A photo answered from the agent's upload (an inference or an estimate, not a retrain
step) either keeps the reference's answer or loses it (``m_i`` ∈ [0, 1] lost); only
estimates show which. Each is an estimate with probability ``p_i``, drawn before the
photo is seen, so ``Z_i = E_i·m_i / p_i`` is an unbiased guess of ``m_i`` whatever
the photos are. For every ``λ ≥ 0``

    L_t(λ) = Π_i exp(λ·(m_i − Z_i) − ψ_i(λ)·m_i),
    ψ_i(λ) = λ + log(1 − p_i + p_i·e^(−λ/p_i)),

is a nonnegative supermartingale with ``L_0 = 1`` (exactly a martingale for ``m_i``
in {0, 1}); so is a mixture ``Σ_k w_k L_t(λ_k)`` over a fixed grid, and by Ville's
inequality it stays below ``1/δ`` at every ``t`` with probability ``≥ 1 − δ``. As
``ψ_i`` grows as ``p_i`` falls, ``ψ_i ≤ ψ(·; p_min)``, and on that event the lost
answers so far ``M_t = Σ m_i`` satisfy ``Σ_k w_k exp((λ_k − ψ(λ_k; p_min))·M_t −
λ_k·S_t) < 1/δ`` with ``S_t = Σ Z_i``: the largest such ``M_t`` is the upper bound,
and ``1 − M_t / n_t`` the kept rate's lower bound over the ``n_t`` answered photos.
The photos may be any sequence (not a sample from a distribution, and shifting);
only the draws of the estimates are random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LAMBDAS = np.logspace(-4, 1.5, 56)
"""The mixture's grid of bets, each weighted equally."""


def psi(lambdas: np.ndarray, p: float) -> np.ndarray:
    """``ψ(λ; p) = λ + log(1 − p + p·e^(−λ/p))`` (< λ for p > 0)."""
    return lambdas + np.log1p(-p + p * np.exp(-lambdas / p))


def most_lost(
    answered: int, weighted_lost: float, lowest_p: float, delta: float
) -> float:
    """The upper confidence bound on the answers lost among ``answered`` photos,
    given ``S = Σ Z_i`` (``weighted_lost``) and the lowest estimate rate used.

    Valid with probability ``≥ 1 − delta`` simultaneously at every image.
    """
    if answered == 0:
        return 0.0
    if lowest_p <= 0.0:
        return float(answered)  # photos that could never be estimated
    gain = LAMBDAS - psi(LAMBDAS, lowest_p)  # > 0
    log_weight = -np.log(len(LAMBDAS))
    bound = np.log(1.0 / delta)

    def log_mixture(m: float) -> float:
        terms = log_weight + gain * m - LAMBDAS * weighted_lost
        top = float(terms.max())
        return top + float(np.log(np.exp(terms - top).sum()))

    if log_mixture(float(answered)) < bound:
        return float(answered)
    low, high = 0.0, float(answered)
    if log_mixture(low) >= bound:  # not reached: S is never negative
        return 0.0
    for _ in range(60):
        middle = (low + high) / 2
        if log_mixture(middle) < bound:
            low = middle
        else:
            high = middle
    return high


@dataclass
class KeptCertificate:
    """What the certificate needs of a run so far (committed with its state).

    Args:
        answered: photos answered from the agent's upload (inference, estimate).
        estimates: those that were estimates.
        lost: estimates that lost the answer (sum of ``1 − accuracy``).
        weighted_lost: ``S = Σ (1 − accuracy) / p_est`` over the estimates.
        lowest_p: the lowest estimate rate any answered photo was drawn at.
    """

    answered: int = 0
    estimates: int = 0
    lost: float = 0.0
    weighted_lost: float = 0.0
    lowest_p: float = 1.0

    def answer(self, p_est: float) -> None:
        """A photo answered from the agent's upload, drawn at ``p_est``."""
        self.answered += 1
        self.lowest_p = min(self.lowest_p, p_est)

    def estimate(self, accuracy: float, p_est: float) -> None:
        """That photo was an estimate: the agent's upload kept ``accuracy``."""
        self.estimates += 1
        self.lost += 1.0 - accuracy
        if accuracy < 1.0:  # p_est > 0: the photo was drawn
            self.weighted_lost += (1.0 - accuracy) / max(p_est, 1e-12)

    def kept_at_least(self, confidence: float) -> float:
        """The lower bound on the kept rate so far (0 before any answer)."""
        if self.answered == 0:
            return 0.0
        lost = most_lost(
            self.answered, self.weighted_lost, self.lowest_p, 1.0 - confidence
        )
        return max(0.0, 1.0 - lost / self.answered)

    def text(self, confidence: float) -> str:
        """``kept ≥ 0.986 of answers, 95% confidence, 212 estimates``."""
        return (
            f"kept ≥ {self.kept_at_least(confidence):.3f} of answers, "
            f"{confidence:.0%} confidence, {self.estimates} estimates"
        )

    def summary(self, confidence: float) -> dict[str, float | int | str]:
        """For a run's report."""
        return {
            "kept_at_least": self.kept_at_least(confidence),
            "confidence": confidence,
            "estimates": self.estimates,
            "answered": self.answered,
            "lost_in_estimates": self.lost,
            "text": self.text(confidence),
        }
