"""Meet an accuracy target at the smallest size, calibrated on training images only.

A user thinks in "keep 99% of the answers", not in reward weights. The reward
``R = α·A − Δs`` trades accuracy against bytes: the larger ``α``, the more accuracy
the agent buys. k-fold cross-validation on the training images estimates, for one
``α``, the accuracy an agent trained on the other folds reaches on images it has never
seen; a binary search over a geometric grid of ``α`` then finds the smallest ``α``
whose cross-validated accuracy reaches the target -- the smallest uploads that keep it.
For the survival policy (``PolicySettings.policy="survival"``) the knob is the threshold
on predicted survival instead: one k-fold pass predicts every training image's
survival per action out of fold, and the threshold with the smallest size whose
accuracy reaches the target is chosen (:class:`ThresholdSearch`).
The held-out test images play no part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from adacompress.core.objective import Objective, check_target
from adacompress.device.policies.base import LearnedPolicy
from adacompress.device.policies.survival import cheapest_trusted
from adacompress.exchange.environment import CompressionEnv, Sample
from adacompress.learning.fit import action_cost
from adacompress.learning.survey import Survey

FitFn = Callable[[list[Sample], int, Objective], LearnedPolicy]
"""Trains a policy on some images with a seed (the fold's number) for an
objective."""

ALPHA_GRID = tuple(float(a) for a in np.geomspace(0.5, 64.0, 15))
"""Candidate reward weights, a factor √2 apart."""
THRESHOLD_GRID = tuple(float(1 - m) for m in np.geomspace(0.7, 1e-4, 120))
"""Candidate survival thresholds of the survival policy, 0.3 to 0.9999, denser
towards 1."""
FOLD_SEED = 7


@dataclass
class Calibration:
    """The chosen ``alpha`` and every cross-validation run behind it."""

    target_accuracy: float
    alpha: float
    reached: bool
    """False: even the largest alpha missed the target on cross-validation"""
    folds: int
    table: list[dict[str, float]] = field(default_factory=list)
    """alpha (or threshold), cv_accuracy, cv_size_ratio per value tried, sorted"""
    threshold: float | None = None
    """the survival policy's calibrated threshold (None for the q policy)"""


def folds_of(n: int, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(training indices, held-out indices)`` of each fold, fixed by FOLD_SEED."""
    order = np.random.default_rng(FOLD_SEED).permutation(n)
    out = []
    for held in np.array_split(order, folds):
        held_set = set(held.tolist())
        out.append((np.array([i for i in order if i not in held_set]), held))
    return out


class KFold:
    """k folds of ``n`` training images (fixed by ``FOLD_SEED``), one policy per
    fold: the check and the loop every calibration search shares, whatever knob it
    tunes.

    Raises:
        ValueError: not 2 to n/2 folds.
    """

    def __init__(self, n: int, folds: int) -> None:
        if not 2 <= folds <= n // 2:
            raise ValueError(f"need 2..{n // 2} folds for {n} images, got {folds}")
        self.n, self.folds = n, folds

    def policies(
        self, fit: Callable[[np.ndarray, int], LearnedPolicy]
    ) -> Iterator[tuple[np.ndarray, LearnedPolicy]]:
        """``(held-out indices, fit(the other folds' indices, fold number))`` per
        fold."""
        for k, (rest, held) in enumerate(folds_of(self.n, self.folds)):
            yield held, fit(rest, k)


def out_of_fold_table(
    table: Survey, survival: np.ndarray, cost: np.ndarray
) -> list[dict[str, float]]:
    """:func:`threshold_table` of out-of-fold ``survival`` on ``table``; an outcome
    the table does not know counts at its predicted survival (the expected accuracy,
    from a model that never saw the image)."""
    expected = np.where(np.isnan(table.kept), survival, table.kept)
    return threshold_table(survival, expected, table.sizes, table.reference, cost)


class CrossValidation:
    """k folds of the training images (fixed by ``FOLD_SEED``), one policy per fold.

    Args:
        env: the training environment.
        samples: the training images.
        fit: trains a policy on the other folds' images (seeded by the fold).
        folds: number of cross-validation folds.
        objective: what the policies learn (a search may vary its ``alpha``).
    """

    def __init__(
        self,
        env: CompressionEnv,
        samples: list[Sample],
        fit: FitFn,
        folds: int = 5,
        *,
        objective: Objective = Objective(),
    ) -> None:
        self.kfold = KFold(len(samples), folds)
        self.env = env
        self.samples = samples
        self.fit = fit
        self.folds = folds
        self.objective = objective

    def fold_policies(
        self, objective: Objective | None = None
    ) -> Iterator[tuple[np.ndarray, LearnedPolicy]]:
        """``(held-out indices, policy trained on the other folds)`` per fold, for
        ``objective`` (default: the search's own)."""
        wanted = objective or self.objective

        def fit(rest: np.ndarray, k: int) -> LearnedPolicy:
            return self.fit([self.samples[i] for i in rest], k, wanted)

        return self.kfold.policies(fit)


class AlphaSearch(CrossValidation):
    """Cross-validated accuracy and size per ``alpha``, computed once each.

    Args: as :class:`CrossValidation` (each run replaces the objective's ``alpha``).
    """

    @cached_property
    def results(self) -> dict[float, dict[str, float]]:
        """The rows measured so far, by alpha."""
        return {}

    def cross_validate(self, alpha: float) -> dict[str, float]:
        """Accuracy and size ratio on every image, each scored by an agent that
        was trained on the other folds with this ``alpha``."""
        if alpha in self.results:
            return self.results[alpha]
        correct, kept, reference = 0.0, 0, 0
        for held, policy in self.fold_policies(self.objective.with_alpha(alpha)):
            for i in held:
                sample = self.samples[i]
                choice = policy.act(sample.features)
                result = self.env.step(sample, choice)
                correct += result.accuracy
                kept += result.nbytes
                reference += result.reference_bytes
        row = {
            "alpha": alpha,
            "cv_accuracy": correct / len(self.samples),
            "cv_size_ratio": kept / reference,
        }
        self.results[alpha] = row
        return row

    def for_target(
        self, target: float, grid: tuple[float, ...] = ALPHA_GRID
    ) -> Calibration:
        """The smallest ``alpha`` of ``grid`` whose cross-validated accuracy reaches
        ``target`` (binary search: accuracy grows with alpha)."""
        check_target(target)

        def meets(index: int) -> bool:
            return self.cross_validate(grid[index])["cv_accuracy"] >= target

        low, high = 0, len(grid) - 1
        if not meets(high):
            chosen, reached = high, False
        elif meets(low):
            chosen, reached = low, True
        else:
            while high - low > 1:
                middle = (low + high) // 2
                if meets(middle):
                    high = middle
                else:
                    low = middle
            chosen, reached = high, True
        return Calibration(
            target_accuracy=target,
            alpha=grid[chosen],
            reached=reached,
            folds=self.folds,
            table=[self.results[a] for a in sorted(self.results)],
        )


class ThresholdSearch(CrossValidation):
    """The survival policy's cross-validated accuracy and size per threshold.

    One k-fold pass (computed on first use): each fold's agent predicts the held-out
    images' survival per action; every threshold of :data:`THRESHOLD_GRID` is then
    scored on those out-of-fold predictions with the action costs of all images
    (what the final agent uses).

    Args: as :class:`CrossValidation` (``fit`` trains survival policies; the
    objective's ``alpha`` is reported unchanged).
    """

    @cached_property
    def table(self) -> list[dict[str, float]]:
        """threshold, cv_accuracy, cv_size_ratio for every threshold of the grid."""
        samples, env = self.samples, self.env
        cost = np.asarray(action_cost(env, samples))
        survival = np.zeros((len(samples), len(env.actions)))
        for held, policy in self.fold_policies():
            for i in held:
                survival[i] = policy.belief(samples[i].features)[0]
        return out_of_fold_table(Survey.full(env, samples), survival, cost)

    def for_target(self, target: float) -> Calibration:
        """The threshold with the smallest cross-validated size whose
        cross-validated accuracy reaches ``target`` (the largest if none does)."""
        return threshold_for(
            self.table, target, alpha=self.objective.alpha, folds=self.folds
        )


SEARCHES: dict[str, type[AlphaSearch] | type[ThresholdSearch]] = {
    "alpha": AlphaSearch,
    "threshold": ThresholdSearch,
}
"""The search for each knob a policy tunes (``LearnedPolicy.tunes``)."""


def threshold_table(
    survival: np.ndarray,
    kept: np.ndarray,
    nbytes: np.ndarray,
    reference: np.ndarray,
    cost: np.ndarray,
) -> list[dict[str, float]]:
    """Accuracy and size of the survival rule at every threshold of the grid.

    Shape: survival, kept, nbytes (n, actions); reference (n,); cost (actions,).
    ``kept`` may hold an expected accuracy where the outcome is not known.
    """
    rows = np.arange(len(survival))
    table = []
    for threshold in THRESHOLD_GRID:
        choice = cheapest_trusted(survival, threshold, cost)
        table.append(
            {
                "threshold": threshold,
                "cv_accuracy": float(kept[rows, choice].mean()),
                "cv_size_ratio": float(nbytes[rows, choice].sum() / reference.sum()),
            }
        )
    return table


def threshold_for(
    table: list[dict[str, float]], target: float, *, alpha: float, folds: int
) -> Calibration:
    """The threshold of ``table`` with the smallest size whose accuracy reaches
    ``target`` (the most careful one if none does)."""
    check_target(target)
    feasible = [row for row in table if row["cv_accuracy"] >= target]
    best = table[-1]  # none reaches the target: the most careful threshold
    if feasible:
        best = min(feasible, key=lambda row: row["cv_size_ratio"])
    return Calibration(
        target_accuracy=target,
        alpha=alpha,
        reached=bool(feasible),
        folds=folds,
        table=table,
        threshold=best["threshold"],
    )


class SurveyThresholdSearch:
    """The survival threshold calibrated on a survey: k folds of the surveyed images,
    each scored by a policy fitted to the others.

    Where a held-out image's outcome for the chosen action is not known (never asked
    and not implied), the out-of-fold predicted survival stands in for it: the
    expected accuracy, from a model that never saw the image.

    Args:
        survey: the training images and what is known of them.
        fit: trains a survival policy on a sub-survey (seeded by the fold).
        folds: number of folds.
        alpha: the reward weight the calibration reports unchanged.
    """

    def __init__(
        self,
        survey: Survey,
        fit: Callable[[Survey, int], LearnedPolicy],
        folds: int = 5,
        *,
        alpha: float = 1.0,
    ) -> None:
        self.kfold = KFold(len(survey.samples), folds)
        self.survey, self.fit, self.folds, self.alpha = survey, fit, folds, alpha

    @cached_property
    def table(self) -> list[dict[str, float]]:
        survey = self.survey
        survival = np.zeros(survey.kept.shape)

        def fit(rest: np.ndarray, k: int) -> LearnedPolicy:
            return self.fit(survey.subset(rest), k)

        for held, policy in self.kfold.policies(fit):
            survival[held] = policy.belief(survey.features[held])
        return out_of_fold_table(survey, survival, survey.ratios.mean(axis=0))

    def for_target(self, target: float) -> Calibration:
        return threshold_for(self.table, target, alpha=self.alpha, folds=self.folds)
