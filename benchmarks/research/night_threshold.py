"""Could the scenery's night be served cheaper by the weights the agent already has?
How well the shipped weights and weights retrained as ``run`` retrains rank the night
photos, and what setting the shipped weights' threshold on a few night photos keeps
and pays.

    python benchmarks/research/night_threshold.py [--backends lite0 lite1 lite2]
        [--day train|DIR] [--photos 120] [--draws 10]

The night versions of the day photos (as ``night_oracle.py``; default day: the
held-out test images, ``--day train`` the first 300 training photos) are asked with
every action once (cached answers). Each draw shuffles them: the first ``--photos``
are the scene change's photos, the rest are scored.

- *hindsight*: the fewest bytes at which the weights keep the target on the scored
  photos, over thresholds from -4 to 20 logits in steps of 1/4: a threshold chosen
  knowing the answers, so it compares two rankings, not what a run could reach.
- *retrained*: the shipped weights retrained on the scene change's photos the way
  ``run`` retrains (epsilon-greedy from the shipped weights, one explored action per
  photo and what its answer implies, the retrain's schedule; the buffer starts empty,
  where ``run``'s also holds the day's estimates), at the agent's own learning rate
  (``run``'s without the threshold control) and at the control's.
- *recalibrated*: the shipped weights, unchanged, at the lowest of ``--grid``'s
  logits whose candidate kept the target on the scene change's photos (``all``: every
  answer), learned by uploading each photo's candidate at every grid logit: ``paid``
  is those uploads in references' bytes, beside the reference itself.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np

from adacompress.device.compressor import Compressor
from adacompress.device.policies.survival import SurvivalPolicy, cheapest_trusted
from adacompress.device.zoo import AgentChoice
from adacompress.exchange.environment import CompressionEnv, Sample
from adacompress.exchange.learner import Learner
from adacompress.exchange.settings import CloudSettings
from adacompress.learning.survey import Survey
from adacompress.runtime.retrain import retrain_lesson
from adacompress.runtime.run import open_agent_env
from adacompress.runtime.settings import ControlSettings, RetrainSettings
from basekit.threads import configure_threads

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from night_photos import add_day, night_photos  # noqa: E402

from _common import add_smoke, limit_splits  # noqa: E402  (benchmarks/_common.py)

RETRAIN_RATES = {
    "at the agent's rate": None,
    "at the control's rate": ControlSettings().retrain_learning_rate,
}
"""The learning rates of the retrained rows: ``run``'s without and with the control."""
HINDSIGHT = np.arange(-4.0, 20.25, 0.25)
"""Threshold logits searched for the hindsight rows."""


def sent(scores: np.ndarray, logit: float, cost: np.ndarray) -> np.ndarray:
    """The candidate column sent for each photo at threshold ``logit``: the cheapest
    trusted, the dearest when none is (as ``run``)."""
    trusted = (scores >= logit).any(axis=1)
    return np.where(
        trusted, cheapest_trusted(scores, logit, cost), int(np.argmax(cost))
    )


class NightTable:
    """Every candidate's answer on every night photo, and the shipped scores."""

    def __init__(
        self, env: CompressionEnv, compressor: Compressor, samples: list[Sample]
    ) -> None:
        survey = Survey.full(env, samples)
        policy = compressor.learned
        if not isinstance(policy, SurvivalPolicy):
            raise SystemExit(f"{compressor.source} is not a survival agent")
        self.shipped = policy
        self.objective = compressor.card.objective
        self.candidates = np.asarray(compressor.candidates)
        self.kept = survey.kept[:, self.candidates]
        self.sizes = survey.sizes[:, self.candidates]
        self.reference = survey.reference
        self.cost = np.asarray(policy.cost(), dtype=np.float64)[self.candidates]
        self.features = np.stack([s.features for s in samples])

    def scores(self, policy: SurvivalPolicy) -> np.ndarray:
        return policy.scores(self.features)[:, self.candidates].astype(np.float64)

    def at(
        self, scores: np.ndarray, rows: np.ndarray, logit: float
    ) -> tuple[float, float]:
        """Kept share and bytes (of the references) of ``rows`` at ``logit``."""
        col = sent(scores[rows], logit, self.cost)
        r = np.arange(len(rows))
        total = self.reference[rows].sum()
        kept, sizes = self.kept[rows][r, col], self.sizes[rows][r, col]
        return float(kept.mean()), float(sizes.sum() / total)

    def hindsight(
        self, scores: np.ndarray, rows: np.ndarray, target: float
    ) -> tuple[float, float]:
        """The fewest bytes keeping ``target`` of ``rows`` (an oracle threshold; the
        ceiling's, where nothing is trusted, if no threshold keeps it)."""
        found = [self.at(scores, rows, t) for t in HINDSIGHT]
        kept = [(k, b) for k, b in found if k >= target] or found[-1:]
        return min(kept, key=lambda x: x[1])

    def recalibrated(
        self, scores: np.ndarray, seen: np.ndarray, grid: list[float], target: float
    ) -> tuple[float, float]:
        """The lowest grid logit keeping ``target`` of the ``seen`` photos, and what
        asking each photo's candidate at every grid logit paid (references' bytes)."""
        columns = np.stack([sent(scores[seen], t, self.cost) for t in grid], axis=1)
        chosen = next(
            (
                t
                for i, t in enumerate(grid)
                if self.kept[seen, columns[:, i]].mean() >= target
            ),
            grid[-1],
        )
        pairs = zip(seen, columns, strict=True)
        paid = sum(self.sizes[row, np.unique(cols)].sum() for row, cols in pairs)
        return chosen, float(paid / self.reference[seen].sum())


def retrained(
    env: CompressionEnv,
    table: NightTable,
    samples: list[Sample],
    seen: np.ndarray,
    seed: int,
    learning_rate: float | None,
) -> SurvivalPolicy:
    """The shipped weights retrained on ``samples[seen]`` as ``run`` retrains, at
    ``learning_rate`` (None: the agent's own)."""
    policy = copy.deepcopy(table.shipped)
    learner = Learner(policy)
    learner.rng = np.random.default_rng(seed)
    s = RetrainSettings()
    learner.restart_exploration(
        warmup_steps=s.retrain_warmup,
        learn_every=s.retrain_learn_every,
        epsilon_decay=s.retrain_epsilon_decay,
        learning_rate=learning_rate,
    )
    for row in seen:
        sample = samples[row]
        index = learner.act(
            sample.features, explore=True, candidates=table.candidates.tolist()
        )
        first, _, _ = env.step_with_reference(sample, index)
        lesson, _ = retrain_lesson(
            env, policy, sample, index, first, table.objective, s
        )
        learner.observe_all(
            sample.features, lesson.signals, sample.features, lesson.observed
        )
    return policy


def backend_rows(
    backend: str, night: list[Path], args: argparse.Namespace
) -> list[str]:
    rows: dict[str, list[tuple[float, float, float]]] = {}
    with open_agent_env(CloudSettings(backend), AgentChoice(None, "scale-quality")) as (
        compressor,
        env,
    ):
        samples, _ = env.prepare(night, progress=False)
        table = NightTable(env, compressor, samples)
        target = table.objective.target or 0.99
        shipped = table.scores(table.shipped)
        for draw in range(args.draws):
            order = np.random.default_rng(draw).permutation(len(samples))
            seen, scored = order[: args.photos], order[args.photos :]
            rows.setdefault("shipped, hindsight", []).append(
                (*table.hindsight(shipped, scored, target), 0.0)
            )
            for name, rate in RETRAIN_RATES.items():
                policy = retrained(env, table, samples, seen, draw, rate)
                rows.setdefault(f"retrained {name}, hindsight", []).append(
                    (*table.hindsight(table.scores(policy), scored, target), 0.0)
                )
            for name, wanted in (("target", target), ("all", 1.0)):
                logit, paid = table.recalibrated(shipped, seen, args.grid, wanted)
                rows.setdefault(f"shipped, recalibrated ({name})", []).append(
                    (*table.at(shipped, scored, logit), paid)
                )
    return [
        f"| {backend} | {name} | {np.mean([r[0] for r in found]):.3f} "
        f"({min(r[0] for r in found):.3f}) | {np.mean([r[1] for r in found]):.3f} | "
        f"{np.mean([r[2] for r in found]):.2f} |"
        for name, found in rows.items()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["lite0", "lite1", "lite2"])
    add_day(parser)
    parser.add_argument("--photos", type=int, default=120, help="scene change photos")
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument(
        "--grid", type=float, nargs="+", default=[4, 6, 8, 10, 12, 14, 16]
    )
    add_smoke(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        limit_splits()
        args.backends, args.photos, args.draws = args.backends[:1], 3, 1
    configure_threads()
    night, _ = night_photos(args.day)
    print(f"{len(night)} night photos, {args.photos} at the scene change")
    worst = f"kept (worst of {args.draws} draws)"
    print(f"| backend | weights, threshold | {worst} | bytes of references | paid |")
    print("|---|---|---|---|---|")
    for backend in args.backends:
        print("\n".join(backend_rows(backend, night, args)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
