"""Asking the cloud only what it takes to learn: a few answers per training image.

Every training image's reference goes up (the truth); then, instead of every action,
at most ``queries`` of them, each chosen to settle the most unknown outcomes given
what is known (:mod:`~adacompress.exchange.monotone`), the rest filled in by
monotone propagation. The belief that guides the choice is the survival model fitted
to the images surveyed so far (active learning), refitted as the survey goes on.
Sizes need no call: every action is encoded on the device. A call budget stops the
survey; it then says where.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from adacompress.cloud.service import ServiceError
from adacompress.device.actions import REFERENCE_ACTION, Action
from adacompress.exchange.cache import Outcome
from adacompress.exchange.environment import (
    CompressionEnv,
    Sample,
    Skipped,
    StepResult,
)
from adacompress.exchange.monotone import dominance, next_query, propagate
from basekit.images import ImageError
from basekit.progress import Progress

Predictor = Callable[[np.ndarray], np.ndarray]
"""features (n, d) -> survival belief (n, actions)."""
Belief = Callable[["Survey"], Predictor]
"""The survey so far -> a predictor fitted to it."""


@dataclass
class Survey:
    """What the cloud said about each surveyed image, and what follows from it: the
    image × action table learning consumes, dense when every action was asked
    (:meth:`full`), sparse with its monotone implications when a budget was
    (:func:`survey`).

    Attributes:
        samples: the surveyed images, in survey order.
        kept: 1 (kept), 0 (lost) or NaN (unknown) per image and action, answered or
            implied. Shape: (n, actions).
        asked: which actions were uploaded (besides the reference). Shape: like kept.
        sizes: bytes of every action's upload. Shape: like kept.
        reference: bytes of each reference upload. Shape: (n,).
        calls: new cloud calls the survey made (references included).
        stopped: why it stopped before the last image (None: it did not).
        skipped: the images the service failed on.
        strict: top-1 accuracy per image and action (a full table only).
        reference_kept: what each reference keeps of its own answer, its accuracy
            and strict accuracy alike: 0 where the reference got no label (a full
            table only).
    """

    samples: list[Sample]
    kept: np.ndarray
    asked: np.ndarray
    sizes: np.ndarray
    reference: np.ndarray
    calls: int = 0
    stopped: str | None = None
    skipped: list[Skipped] = field(default_factory=list)
    strict: np.ndarray | None = None
    reference_kept: np.ndarray | None = None

    @classmethod
    def full(
        cls,
        env: CompressionEnv,
        samples: list[Sample],
        found: Sequence[dict[Action, Outcome]] | None = None,
        *,
        skipped: list[Skipped] | None = None,
    ) -> Survey:
        """The dense table: every action's answer on every image, scored against the
        reference. ``found``: each image's answers already fetched (default: looked
        up now, one lookup an image). With ``skipped``, an image the service fails
        on is left out and listed there; without, the error is raised.

        Raises:
            ServiceError, ImageError: an image failed and ``skipped`` is None.
        """
        rows: list[Sample] = []
        table: list[list[StepResult]] = []
        reference_kept: list[float] = []
        for at, sample in enumerate(samples):
            try:
                answers = answer_all(env, sample) if found is None else found[at]
            except (ServiceError, ImageError) as err:
                if skipped is None:
                    raise
                skipped.append(Skipped(str(sample.path), str(err)))
                continue
            reference = answers[REFERENCE_ACTION]
            rows.append(sample)
            table.append([env.score(reference, answers[a]) for a in env.actions])
            reference_kept.append(env.score(reference, reference).accuracy)
        shape = (len(rows), len(env.actions))

        def column(read: Callable[[StepResult], float]) -> np.ndarray:
            return np.array([[read(r) for r in row] for row in table]).reshape(shape)

        return cls(
            rows,
            column(lambda r: r.accuracy),
            np.ones(shape, bool),
            column(lambda r: r.nbytes).astype(float),
            np.array([row[0].reference_bytes for row in table], float),
            strict=column(lambda r: r.strict_accuracy),
            reference_kept=np.array(reference_kept),
        )

    def pick(self, columns: Sequence[int]) -> tuple[np.ndarray, ...]:
        """Accuracy, strict accuracy and bytes of one column per image, ``-1`` the
        reference upload itself (a full table only)."""
        assert self.strict is not None and self.reference_kept is not None
        rows, at = np.arange(len(self.samples)), np.asarray(columns, int)
        own = at < 0

        def of(table: np.ndarray, itself: np.ndarray) -> np.ndarray:
            if not len(rows):
                return np.zeros(0)
            return np.where(own, itself, table[rows, np.maximum(at, 0)])

        return (
            of(self.kept, self.reference_kept),
            of(self.strict, self.reference_kept),
            of(self.sizes, self.reference),
        )

    @property
    def features(self) -> np.ndarray:
        return np.stack([s.features for s in self.samples])

    @property
    def ratios(self) -> np.ndarray:
        """Each upload's size over its reference's. Shape: (n, actions)."""
        return self.sizes / self.reference[:, None]

    def subset(self, rows: np.ndarray) -> Survey:
        return Survey(
            [self.samples[i] for i in rows],
            self.kept[rows],
            self.asked[rows],
            self.sizes[rows],
            self.reference[rows],
        )

    def summary(self) -> dict[str, object]:
        """Calls, answers and what propagation filled in, for logs."""
        n = len(self.samples)
        known = ~np.isnan(self.kept)
        return {
            "images": n,
            "calls": self.calls,
            "calls_per_image": self.calls / n if n else None,
            "answered": int(self.asked.sum()),
            "known_share": float(known.mean()) if n else None,
            "stopped": self.stopped,
            "skipped": len(self.skipped),
        }


def answer_all(env: CompressionEnv, sample: Sample) -> dict[Action, Outcome]:
    """Every action's answer on ``sample`` and the reference's (one lookup).

    Raises:
        ServiceError: the service failed or refused an upload.
        ImageError: the image no longer decodes.
    """
    return env.outcomes(sample, [REFERENCE_ACTION, *env.actions])


def prior_belief(survey: Survey) -> Predictor:
    """Without a model: each action's share of kept answers so far (smoothed), the
    same for every image (0.5 before any: plain bisection)."""
    known = ~np.isnan(survey.kept)
    rate = (np.nansum(survey.kept, axis=0) + 0.5) / (known.sum(axis=0) + 1.0)
    return lambda features: np.repeat(rate[None, :], len(features), axis=0)


def survey(
    env: CompressionEnv,
    samples: list[Sample],
    *,
    queries: int | None,
    call_budget: int | None = None,
    belief: Belief = prior_belief,
    refit_every: int = 100,
    seed: int = 0,
    count_cached: bool = False,
    trust: float | None = None,
    progress: bool = False,
) -> Survey:
    """Ask the cloud about ``samples``: the reference and at most ``queries`` actions
    per image (None: every action, no propagation -- full information), stopping
    before ``call_budget`` new calls would be exceeded.

    ``belief`` is refitted on the survey so far every ``refit_every`` images; with
    ``trust``, each image's first questions check the action the policy would send
    at that belief (:func:`~adacompress.exchange.monotone.next_query`). With
    ``count_cached`` every answer asked counts as a call, cached or not: what a
    first survey against a new cloud pays (budget experiments on a warm cache).
    """
    up = dominance(env.actions)
    order = np.random.default_rng(seed).permutation(len(samples))
    table = _Rows(samples, len(env.actions))
    budget = _CallBudget(env, call_budget, count_cached)
    stopped: str | None = None
    skipped: list[Skipped] = []
    bar = Progress(len(samples), "survey", enabled=progress)
    predict = prior_belief(table.survey(budget.calls, stopped, skipped))
    for position, index in enumerate(order):
        sample = samples[index]
        if position and position % refit_every == 0:
            predict = belief(table.survey(budget.calls, stopped, skipped))
        if not budget.affords(sample, None):
            stopped = budget.spent(len(table.rows), len(samples))
            break
        try:
            sizes = env.sizes(sample)
            row, asked, new = _ask(
                env,
                sample,
                queries,
                up,
                predict(sample.features[None])[0],
                budget.affords,
                trust,
                sizes,
            )
        except (ServiceError, ImageError) as err:
            skipped.append(Skipped(str(sample.path), str(err)))
            continue
        budget.pay(sample, asked, new)
        table.add(int(index), row, asked, sizes)
        bar.update(calls=budget.calls)
    bar.close()
    return table.survey(budget.calls, stopped, skipped)


@dataclass
class _CallBudget:
    """The survey's calls so far, and whether the next image's fit in ``limit``
    (None: no limit). With ``count_cached``, every answer asked counts once, cached
    or not."""

    env: CompressionEnv
    limit: int | None
    count_cached: bool
    calls: int = 0
    paid: set[tuple[str, str]] = field(default_factory=set)
    """(image, action) answers counted so far (``count_cached`` only)."""

    def cost(self, sample: Sample, wanted: list[Action]) -> int:
        """The calls asking ``wanted`` about ``sample`` counts."""
        if not self.count_cached:
            return len(self.env.missing(sample, wanted))
        return len({self.env.upload_id(sample, a) for a in wanted} - self.paid)

    def affords(self, sample: Sample, action_index: int | None) -> bool:
        """Whether the reference of ``sample`` and the action at ``action_index``
        (None: the reference alone) fit in what is left."""
        wanted = [REFERENCE_ACTION]
        if action_index is not None:
            wanted.append(self.env.actions[action_index])
        return (
            self.limit is None or self.calls + self.cost(sample, wanted) <= self.limit
        )

    def spent(self, surveyed: int, images: int) -> str:
        """Why the survey stopped after ``surveyed`` of ``images`` images."""
        return (
            f"the budget of {self.limit} calls was spent after {surveyed} of "
            f"{images} images"
        )

    def pay(self, sample: Sample, asked: np.ndarray, new: int) -> None:
        """Count one image's questions: the ``new`` calls they made, or with
        ``count_cached`` the reference and every action ``asked``."""
        if self.count_cached:
            asked_keys = [REFERENCE_ACTION] + [
                a for a, was in zip(self.env.actions, asked, strict=True) if was
            ]
            new = self.cost(sample, asked_keys)
            self.paid.update(self.env.upload_id(sample, a) for a in asked_keys)
        self.calls += new


@dataclass
class _Rows:
    """The survey's table as it grows: one row per surveyed image of ``samples``."""

    samples: list[Sample]
    n_actions: int
    rows: list[int] = field(default_factory=list)
    kept: list[np.ndarray] = field(default_factory=list)
    asked: list[np.ndarray] = field(default_factory=list)
    sizes: list[np.ndarray] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)

    def add(
        self, index: int, row: np.ndarray, asked: np.ndarray, sizes: np.ndarray
    ) -> None:
        """Image ``index``'s row: ``[reference bytes, outcome per action...]``, the
        actions asked and every action's size."""
        self.rows.append(index)
        self.reference.append(row[0])
        self.kept.append(row[1:])
        self.asked.append(asked)
        self.sizes.append(sizes)

    def survey(self, calls: int, stopped: str | None, skipped: list[Skipped]) -> Survey:
        """The rows so far as a :class:`Survey`."""
        empty = np.zeros((0, self.n_actions))
        return Survey(
            [self.samples[i] for i in self.rows],
            np.array(self.kept) if self.kept else empty,
            np.array(self.asked, bool) if self.asked else empty.astype(bool),
            np.array(self.sizes) if self.sizes else empty,
            np.array(self.reference),
            calls,
            stopped,
            skipped,
        )


def _ask(
    env: CompressionEnv,
    sample: Sample,
    queries: int | None,
    up: np.ndarray,
    survival: np.ndarray,
    affordable: Callable[[Sample, int | None], bool],
    trust: float | None,
    cost: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, int]:
    """One image: ``[reference bytes, outcome per action...]``, which actions were
    asked, and the new calls made (``cost``: each action's size)."""
    before = env.calls().new
    n_actions = len(env.actions)
    reference = env.outcomes(sample, [REFERENCE_ACTION])[REFERENCE_ACTION]
    known = np.full(n_actions, np.nan)
    asked = np.zeros(n_actions, dtype=bool)
    if queries is None:  # full information: every action, nothing implied
        known[:] = Survey.full(env, [sample]).kept[0]
        asked[:] = True
    else:
        for _ in range(queries):
            j = next_query(known, survival, up, cost=cost, trust=trust)
            if j is None or not affordable(sample, j):
                break
            action = env.actions[j]
            outcome = env.outcomes(sample, [REFERENCE_ACTION, action])[action]
            known[j] = env.score(reference, outcome).accuracy
            asked[j] = True
            known = propagate(known, up)
    return (
        np.concatenate([[reference.nbytes], known]),
        asked,
        env.calls().new - before,
    )
