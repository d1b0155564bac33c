"""Meet an accuracy target at the smallest size, calibrated on training images only.

A user thinks in "keep 99% of the answers", not in reward weights. One k-fold
cross-validation (:class:`CalibrationSearch`) estimates what an agent trained on the
other folds reaches on images it has never seen, and tunes the knob the policy says
it tunes (``LearnedPolicy.tunes``):

- ``alpha`` (q policy): the reward ``R = α·A − Δs`` trades accuracy against bytes;
  a binary search over a geometric grid finds the smallest ``α`` whose
  cross-validated accuracy reaches the target -- the smallest uploads that keep it.
- ``threshold`` (survival policy): one k-fold pass predicts every training image's
  survival per action out of fold, and the threshold with the smallest size whose
  accuracy reaches the target is chosen.

The training images come as a survey's table or as images asked online
(:class:`~adacompress.learning.fit.Online`); how each is split, predicted and
priced is kept in a small adapter of its own. The held-out test images play no part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from adacompress.core.objective import Objective, check_target
from adacompress.device.policies.base import LearnedPolicy
from adacompress.device.policies.survival import cheapest_trusted
from adacompress.exchange.environment import StepResult
from adacompress.learning.fit import Online, action_cost
from adacompress.learning.survey import Survey

FitFn = Callable[[Survey | Online, int, Objective], LearnedPolicy]
"""Trains a policy on some training images (the other folds') with a seed (the
fold's number) for an objective."""

ALPHA_GRID = tuple(float(a) for a in np.geomspace(0.5, 64.0, 15))
"""Candidate reward weights, a factor √2 apart."""
THRESHOLD_GRID = tuple(float(1 - m) for m in np.geomspace(0.7, 1e-4, 120))
"""Candidate survival thresholds of the survival policy, 0.3 to 0.9999, denser
towards 1."""
FOLD_SEED = 7
KNOBS = ("alpha", "threshold")
"""What a calibration can tune (``LearnedPolicy.tunes``)."""


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


def _folds_of(n: int, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(training indices, held-out indices)`` of each fold, fixed by FOLD_SEED."""
    order = np.random.default_rng(FOLD_SEED).permutation(n)
    out = []
    for held in np.array_split(order, folds):
        held_set = set(held.tolist())
        out.append((np.array([i for i in order if i not in held_set]), held))
    return out


class CalibrationSearch:
    """k folds of the training images (fixed by ``FOLD_SEED``), one policy per fold,
    tuning ``tunes`` for any number of targets (each value is cross-validated once).

    Args:
        data: the training images: a survey's table, or images asked online.
        fit: trains a policy on the other folds' images (seeded by the fold).
        tunes: the knob, ``alpha`` or ``threshold`` (``LearnedPolicy.tunes``).
        folds: number of cross-validation folds.
        objective: what the policies learn (the alpha search varies its ``alpha``;
            the threshold search reports it unchanged).

    Raises:
        ValueError: not 2 to n/2 folds; an unknown knob; ``alpha`` on a survey.
    """

    def __init__(
        self,
        data: Survey | Online,
        fit: FitFn,
        *,
        tunes: str,
        folds: int = 5,
        objective: Objective = Objective(),
    ) -> None:
        n = len(data.samples)
        if not 2 <= folds <= n // 2:
            raise ValueError(f"need 2..{n // 2} folds for {n} images, got {folds}")
        if tunes not in KNOBS or (tunes == "alpha" and isinstance(data, Survey)):
            raise ValueError(f"cannot calibrate {tunes!r} on {type(data).__name__}")
        self.data, self.fit, self.tunes = data, fit, tunes
        self.folds, self.objective = folds, objective
        self.adapter = _Asked(data) if isinstance(data, Online) else _Surveyed(data)
        self.results: dict[float, dict[str, float]] = {}
        """The alpha search's rows measured so far, by alpha."""
        self._thresholds: list[dict[str, float]] | None = None

    def for_target(self, target: float) -> Calibration:
        """What meets ``target`` on cross-validation: the smallest ``alpha`` of
        :data:`ALPHA_GRID`, or the threshold with the smallest size (the most
        careful one if none reaches it)."""
        check_target(target)
        if self.tunes == "alpha":
            chosen, reached = _smallest_meeting(
                lambda alpha: self.cross_validate(alpha)["cv_accuracy"] >= target,
                ALPHA_GRID,
            )
            return Calibration(
                target_accuracy=target,
                alpha=chosen,
                reached=reached,
                folds=self.folds,
                table=[self.results[a] for a in sorted(self.results)],
            )
        return _threshold_for(
            self.threshold_table(), target, alpha=self.objective.alpha, folds=self.folds
        )

    def fold_policies(
        self, objective: Objective
    ) -> Iterator[tuple[np.ndarray, LearnedPolicy]]:
        """``(held-out indices, policy trained on the other folds for
        objective)`` per fold."""
        for k, (rest, held) in enumerate(_folds_of(len(self.data.samples), self.folds)):
            yield held, self.fit(self.data.subset(rest), k, objective)

    def cross_validate(self, alpha: float) -> dict[str, float]:
        """Accuracy and size ratio on every image, each scored by an agent that
        was trained on the other folds with this ``alpha``."""
        if alpha in self.results:
            return self.results[alpha]
        correct, kept, reference = 0.0, 0, 0
        for held, policy in self.fold_policies(self.objective.with_alpha(alpha)):
            for result in self.adapter.held_out(policy, held):
                correct += result.accuracy
                kept += result.nbytes
                reference += result.reference_bytes
        row = {
            "alpha": alpha,
            "cv_accuracy": correct / len(self.data.samples),
            "cv_size_ratio": kept / reference,
        }
        self.results[alpha] = row
        return row

    def threshold_table(self) -> list[dict[str, float]]:
        """threshold, cv_accuracy, cv_size_ratio for every threshold of the grid,
        on out-of-fold survival predictions (one k-fold pass, on first use)."""
        if self._thresholds is None:
            cost = self.adapter.cost()
            survival = np.zeros((len(self.data.samples), self.adapter.n_actions))
            for held, policy in self.fold_policies(self.objective):
                survival[held] = self.adapter.survival(policy, held)
            self._thresholds = _out_of_fold_table(self.adapter.table(), survival, cost)
        return self._thresholds


class _Asked:
    """Images asked online, as the search sees them: the environment scores a held-out
    image's chosen action, survival is predicted one image at a time, and the action
    costs are the rounded ones the final agent keeps."""

    def __init__(self, data: Online) -> None:
        self.env, self.samples = data.env, data.samples
        self.n_actions = len(self.env.actions)

    def held_out(self, policy: LearnedPolicy, held: np.ndarray) -> Iterator[StepResult]:
        for i in held:
            sample = self.samples[i]
            yield self.env.step(sample, policy.act(sample.features))

    def survival(self, policy: LearnedPolicy, held: np.ndarray) -> np.ndarray:
        return np.array([policy.belief(self.samples[i].features)[0] for i in held])

    def cost(self) -> np.ndarray:
        return np.asarray(action_cost(self.env, self.samples))

    def table(self) -> Survey:
        return Survey.full(self.env, self.samples)


class _Surveyed:
    """A survey, as the search sees it: survival is predicted for a fold's images at
    once, and the action costs are the survey's mean size ratios as they are."""

    def __init__(self, data: Survey) -> None:
        self.survey = data
        self.n_actions = data.kept.shape[1]

    def held_out(self, policy: LearnedPolicy, held: np.ndarray) -> Iterator[StepResult]:
        raise ValueError("a survey calibrates the survival threshold only")

    def survival(self, policy: LearnedPolicy, held: np.ndarray) -> np.ndarray:
        return policy.belief(self.survey.features[held])

    def cost(self) -> np.ndarray:
        return self.survey.ratios.mean(axis=0)

    def table(self) -> Survey:
        return self.survey


def _smallest_meeting(
    meets: Callable[[float], bool], grid: tuple[float, ...]
) -> tuple[float, bool]:
    """The smallest value of ``grid`` that ``meets`` the target, found by binary
    search (meeting it is monotone along the grid), and whether one does (if
    none, the largest)."""
    low, high = 0, len(grid) - 1
    if not meets(grid[high]):
        return grid[high], False
    if meets(grid[low]):
        return grid[low], True
    while high - low > 1:
        middle = (low + high) // 2
        if meets(grid[middle]):
            high = middle
        else:
            low = middle
    return grid[high], True


def _out_of_fold_table(
    table: Survey, survival: np.ndarray, cost: np.ndarray
) -> list[dict[str, float]]:
    """:func:`_survival_rule_table` of out-of-fold ``survival`` on ``table``; an outcome
    the table does not know counts at its predicted survival (the expected accuracy,
    from a model that never saw the image)."""
    expected = np.where(np.isnan(table.kept), survival, table.kept)
    return _survival_rule_table(survival, expected, table.sizes, table.reference, cost)


def _survival_rule_table(
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


def _threshold_for(
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
