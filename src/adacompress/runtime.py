"""The running system: inference, estimate, retrain (SPEC.md, the three states).

Images arrive one by one. In *Inference* the agent's choice is uploaded alone. With
probability ``p_est`` an image is an *Estimate*: the reference is uploaded too, the
answer is scored and stored in the memory buffer ``D``, and ``p_est`` moves against the
slope of the recent accuracy. When the recent accuracy falls below a threshold the
runtime *Retrains*: ``D`` is flushed, the agent explores and learns again while the
caller gets the reference's labels, until the recent reward and accuracy pass their
thresholds.

Every decision is taken from the current image's own draw and state; every image,
including bad files and failed uploads, gets a record; all state is committed per image
(see :mod:`adacompress.run_store`), so a killed run resumes exactly.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from adacompress.agent import DQNAgent
from adacompress.backends import ServiceError
from adacompress.codec import (
    REFERENCE_ACTION,
    Action,
    ImageError,
    encode,
    load_image,
)
from adacompress.drift import SceneDrift, scene_statistics
from adacompress.environment import CompressionEnv, Sample
from adacompress.labels import Answer
from adacompress.run_store import Record, RunStore, Transition

TOP_LABELS_RECORDED = 5
SCENE_STATISTICS = "scene-statistics"
"""Cache name of the drift detector's per-image statistics."""


@dataclass
class RuntimeSettings:
    """Every constant of the loop; the defaults are ours, chosen on the scenery run."""

    p_est_initial: float = 0.05
    """estimation probability at the start and after every retrain"""
    p_est_min: float = 0.02
    """lower bound of p_est"""
    p_est_max: float = 0.9
    """upper bound of p_est"""
    omega: float = 3.0
    """step of p_est against the accuracy slope: p_est -= omega * slope"""
    window: int = 10
    """n: the recent accuracy is the mean over the last n estimates"""
    retrain_below: float = 0.9
    """retrain when the recent accuracy (n estimates) falls below this"""
    exit_accuracy: float = 0.9
    """leave retraining only when the recent accuracy reaches this"""
    exit_reward: float | None = None
    """...and the recent mean reward passes this (None: not used)"""
    exit_epsilon: float = 0.2
    """...and exploration has decayed below this"""
    exit_window: int = 50
    """retrain steps averaged for the exit conditions"""
    retrain_min_steps: int = 100
    """never leave retraining before this many steps"""
    retrain_max_steps: int = 2000
    """leave retraining after this many steps whatever the conditions say"""
    retrain_warmup: int = 10
    """pure-exploration steps at the start of a retrain"""
    retrain_learn_every: int = 1
    """one learning call every this many retrain steps"""
    retrain_epsilon_decay: float = 0.97
    """epsilon multiplier per learning call while retraining"""
    drift_window: int = 30
    """images forming the scene-statistics reference (0: no drift detection)"""
    drift_threshold: float = 8.0
    """a drift score above this (standard errors) raises p_est once"""
    drift_p_est: float = 0.5
    """p_est after a detected scene drift, held while the drift test runs"""
    drift_test_error: float = 0.01
    """the drift test (a sequential probability ratio test on the estimates after a
    drift): the agent's failure rate on its own scene (the shipped agents are
    calibrated to 0.99 accuracy)"""
    drift_test_shift: float = 0.04
    """...the failure-rate increase it is built to notice: retrain when the new
    scene's rate looks like ``drift_test_error + drift_test_shift``, keep the agent
    when it looks like ``drift_test_error``"""
    drift_test_alpha: float = 0.05
    """...its chance of a retrain when the agent is still as good as before"""
    drift_test_beta: float = 0.2
    """...its chance of keeping the agent when the rate did rise by the shift"""
    p_est_decay: float = 0.8
    """while the last n estimates are all correct, each estimate keeps this share of
    p_est's excess over p_est_initial (1: it stays, as in the paper, where p_est only
    falls when the accuracy rises)"""
    count_reference_estimates: bool = False
    """count an estimate whose choice is the reference itself (it cannot fail) in the
    recent accuracy, as the paper does; ours stores it in D but leaves it out, so it
    does not dilute an accuracy drop"""
    scene_memory: bool = True
    """remember the agent of the scene before a retrain; when a later scene drift
    leads back to a scene that matches it (same drift test), swap that agent back in
    instead of keeping the other scene's (day -> night -> day: the day agent returns
    without a retrain)"""
    skip_dominated: bool = True
    """never choose nor explore an action that uploads more than the reference with
    no accuracy to gain (quality above 75 at full size: the reference itself is always
    right and smaller); the paper explores all ten"""
    flush_memory: bool = False
    """flush the buffer D when a retrain starts and ends (the paper). Kept (ours), the
    previous scene's transitions stay in D beside the new ones, so an agent retrained
    at night still knows what worked by day when the day comes back"""
    seed: int = 0
    """seed of the estimate draws"""

    def __post_init__(self) -> None:
        e1 = self.drift_test_error + self.drift_test_shift
        if not (0 < self.drift_test_error < e1 < 1):
            raise ValueError(
                "drift test: need 0 < drift_test_error < drift_test_error + "
                f"drift_test_shift < 1, got {self.drift_test_error} and "
                f"{self.drift_test_shift}"
            )
        if not (0 < self.drift_test_alpha < 1 and 0 < self.drift_test_beta < 1):
            raise ValueError("drift test: alpha and beta must be in (0, 1)")


PRESETS: dict[str, RuntimeSettings] = {
    "default": RuntimeSettings(),
    # The authors' code (SPEC.md): p_est in [0.2, 0.95], omega 3, n 10, retrain below
    # 0.8, leave at reward > 0.45 with accuracy > 0.8 and epsilon < 0.2; the paper's
    # exploration schedule (128 warm-up steps, learn every 5, epsilon x0.99), which
    # makes a retrain last about 930 steps.
    "paper": RuntimeSettings(
        p_est_initial=0.2, p_est_min=0.2, p_est_max=0.95, omega=3.0, window=10,
        retrain_below=0.8, exit_accuracy=0.8, exit_reward=0.45, exit_epsilon=0.2,
        exit_window=10, retrain_min_steps=0, retrain_warmup=128,
        retrain_learn_every=5, retrain_epsilon_decay=0.99, flush_memory=True,
        drift_window=0, p_est_decay=1.0, skip_dominated=False, scene_memory=False,
        count_reference_estimates=True,
    ),
}  # fmt: skip


@dataclass
class RuntimeState:
    """The runtime's own state (the agent's is kept beside it)."""

    mode: str = "inference"
    p_est: float = 0.1
    estimates: list[float] = field(default_factory=list)
    """accuracies of the estimates since the last retrain (last ``window`` kept)"""
    retrain_steps: int = 0
    retrain_rewards: list[float] = field(default_factory=list)
    retrain_accuracies: list[float] = field(default_factory=list)
    generation: int = 0
    """generation of the memory buffer D; a flush starts a new one"""
    retrains: int = 0
    drift: SceneDrift = field(default_factory=SceneDrift)
    drift_llr: float | None = None
    """log-likelihood ratio of the running drift test (None: no test running)"""
    match_pending: bool = False
    """a drift happened: compare the new scene with the remembered one once its
    reference is formed"""
    left_scene: dict[str, Any] | None = None
    """drift reference of the scene left at the last detected drift"""
    remembered_scene: dict[str, Any] | None = None
    """drift reference of the scene whose agent is remembered (weights in the agent
    blob under ``remembered_q``)"""
    swaps: int = 0
    """times a remembered agent was swapped back in"""
    rng: str = ""


class Runtime:
    """Processes images one by one and keeps the store up to date.

    Args:
        env: service, cache, actions and feature extractor.
        agent: the deployed agent (its replay memory is the buffer D).
        settings: the loop's constants.
        store: where the state is committed after every image.
    """

    def __init__(
        self,
        env: CompressionEnv,
        agent: DQNAgent,
        settings: RuntimeSettings,
        store: RunStore,
        *,
        metadata: dict[str, Any],
    ) -> None:
        self.env = env
        self.agent = agent
        self.settings = settings
        self.store = store
        self.rng = np.random.default_rng(settings.seed)
        self.remembered_q: dict[str, Any] | None = None
        """weights of the agent of ``state.remembered_scene``"""
        self._agent_changed = False
        self.candidates = (
            [i for i, a in enumerate(env.actions) if not dominated(a)]
            if settings.skip_dominated
            else None
        )
        loaded = store.load()
        if loaded is None:
            self.state = RuntimeState(
                p_est=settings.p_est_initial,
                drift=SceneDrift(window=settings.drift_window),
            )
            store.start(self._state_dict(), self._agent_blob(), metadata)
        else:
            state, agent_state, stored_meta = loaded
            for key in ("backend", "features", "actions"):
                if stored_meta.get(key) != metadata.get(key):
                    raise ValueError(
                        f"state folder {store.folder} belongs to a run with {key}="
                        f"{stored_meta.get(key)!r}, not {metadata.get(key)!r}"
                    )
            self.rng.bit_generator.state = json.loads(state.pop("rng"))
            state["drift"] = SceneDrift(**state["drift"])
            if state.pop("drift_hold", 0):  # a state folder from before the drift test
                state["drift_llr"] = 0.0
            self.state = RuntimeState(**state)
            self.remembered_q = agent_state.pop("remembered_q", None)
            agent.load_training_state(agent_state)
            agent.memory.clear()
            for t in store.transitions(self.state.generation):
                agent.memory.push(t.state, t.rewards, t.observed, t.state)
        self.position = store.next_position()

    def _agent_blob(self) -> dict[str, Any]:
        blob = dict(self.agent.training_state())
        if self.remembered_q is not None:
            blob["remembered_q"] = self.remembered_q
        return blob

    def _state_dict(self) -> dict[str, Any]:
        self.state.rng = json.dumps(self.rng.bit_generator.state)
        return asdict(self.state)

    # -- one image -----------------------------------------------------------

    def process(self, path: Path) -> Record:
        """Handle the next image and commit everything; returns its record."""
        draw = float(self.rng.random())  # drawn for every image: resumable sequence
        try:
            sample = self._sample(path)
            self._watch_drift(sample)
        except ImageError as err:
            return self._commit(self._record(path, "skipped", error=str(err)))
        try:
            if self.state.mode == "retrain":
                return self._retrain_step(path, sample)
            if draw <= self.state.p_est:
                return self._estimate(path, sample)
            return self._inference(path, sample)
        except (ServiceError, ImageError) as err:
            return self._commit(self._record(path, "failed", error=str(err)))

    def _sample(self, path: Path) -> Sample:
        samples, skipped = self.env.prepare([path], progress=False)
        if skipped:
            raise ImageError(skipped[0].error)
        return samples[0]

    def _inference(self, path: Path, sample: Sample) -> Record:
        action = self.env.actions[self._choose(sample, explore=False)]
        outcome = self.env.outcomes(sample, [action])[action]
        return self._commit(
            self._record(
                path, "inference", action=action.key, uploaded=outcome.nbytes,
                reference_bytes=self._reference_bytes(sample), labels=outcome.answer,
            )
        )  # fmt: skip

    def _estimate(self, path: Path, sample: Sample) -> Record:
        s = self.settings
        index = self._choose(sample, explore=False)
        result, reference, uploaded = self._upload_with_reference(sample, index)
        transition = self._transition(sample, index, self.agent.signal(result))
        # Stored in D, not learned from: the agent learns only while retraining.
        self.agent.memory.push(
            transition.state, transition.rewards, transition.observed, transition.state
        )
        informative = s.count_reference_estimates or (
            self.env.actions[index] != REFERENCE_ACTION
        )
        if informative:
            self.state.p_est, self.state.estimates = next_p_est(
                self.state.p_est, self.state.estimates, result.accuracy, s
            )
            self._drift_test(result.accuracy)
        recent = float(np.mean(self.state.estimates)) if self.state.estimates else 1.0
        record = self._record(
            path, "estimate", action=self.env.actions[index].key, uploaded=uploaded,
            reference_bytes=reference.nbytes, accuracy=result.accuracy,
            labels=reference.answer,
        )  # fmt: skip
        drop = len(self.state.estimates) >= s.window and recent < s.retrain_below
        if drop or self._drift_test_rejects():
            self._start_retrain()
            kept = None if s.flush_memory else transition
            return self._commit(record, agent=True, transition=kept)
        return self._commit(record, transition=transition)

    def _retrain_step(self, path: Path, sample: Sample) -> Record:
        s = self.settings
        index = self._choose(sample, explore=True)
        result, reference, uploaded = self._upload_with_reference(sample, index)
        self.agent.observe(
            sample.features, index, self.agent.signal(result), sample.features
        )
        st = self.state
        st.retrain_steps += 1
        st.retrain_rewards = [*st.retrain_rewards, result.reward][-s.exit_window :]
        st.retrain_accuracies = [*st.retrain_accuracies, result.accuracy][
            -s.exit_window :
        ]
        record = self._record(
            path, "retrain", action=self.env.actions[index].key, uploaded=uploaded,
            reference_bytes=reference.nbytes, accuracy=result.accuracy,
            labels=reference.answer,
        )  # fmt: skip
        transition = self._transition(sample, index, self.agent.signal(result))
        if self._retrain_done():
            self._end_retrain()
        return self._commit(record, agent=True, transition=transition)

    # -- state changes -------------------------------------------------------

    def _watch_drift(self, sample: Sample) -> None:
        """Raise p_est once when the scene statistics leave their reference."""
        s, st = self.settings, self.state
        if not s.drift_window or st.mode == "retrain":
            return
        stats = self.env.cache.get_features(sample.digest, SCENE_STATISTICS)
        if stats is None:
            image = load_image(sample.path, max_pixels=self.env.max_pixels)
            stats = scene_statistics(image)
            self.env.cache.put_features(sample.digest, SCENE_STATISTICS, stats)
        if st.drift.update(stats) > s.drift_threshold:
            st.drift_llr = 0.0
            st.left_scene = st.drift.reference()
            st.drift.reset()
            st.match_pending = bool(s.scene_memory and st.remembered_scene)
        elif st.match_pending and st.drift.count >= s.drift_window:
            # The new scene's reference is formed: is it the remembered scene?
            st.match_pending = False
            if st.remembered_scene and st.left_scene and self.remembered_q:
                back = SceneDrift(window=s.drift_window, **st.remembered_scene)
                if st.drift.same_scene(back, s.drift_threshold):
                    self._swap_remembered(st.left_scene, self.remembered_q)
        if st.drift_llr is not None:
            st.p_est = max(st.p_est, s.drift_p_est)

    def _drift_test(self, accuracy: float) -> None:
        """Add one estimate to the running drift test (Wald's SPRT): failure rate
        ``e0 = drift_test_error`` against ``e1 = e0 + drift_test_shift``. The test
        ends by accepting ``e0`` (keep the agent, p_est falls back) or, through
        :meth:`_drift_test_rejects`, with a retrain."""
        s, st = self.settings, self.state
        if st.drift_llr is None:
            return
        e0 = s.drift_test_error
        e1 = e0 + s.drift_test_shift
        failure = 1.0 - accuracy
        st.drift_llr += failure * math.log(e1 / e0) + (1 - failure) * math.log(
            (1 - e1) / (1 - e0)
        )
        if st.drift_llr <= math.log(s.drift_test_beta / (1 - s.drift_test_alpha)):
            st.drift_llr = None

    def _drift_test_rejects(self) -> bool:
        s, llr = self.settings, self.state.drift_llr
        bound = math.log((1 - s.drift_test_beta) / s.drift_test_alpha)
        return llr is not None and llr >= bound

    def _start_retrain(self) -> None:
        """Reset every retrain counter, explore again from the current net (and flush D
        if the settings say so)."""
        s = self.settings
        st = self.state
        st.mode = "retrain"
        st.retrain_steps = 0
        st.match_pending = False  # this retrain decides what the new scene needs
        if s.scene_memory and st.left_scene is not None:
            # The agent that served the scene before the drift, kept for its return.
            self.remembered_q = copy.deepcopy(self.agent.q.state_dict())
            st.remembered_scene, st.left_scene = st.left_scene, None
        st.retrain_rewards, st.retrain_accuracies = [], []
        self._flush_memory()
        self.agent.settings = replace(
            self.agent.settings,
            warmup_steps=s.retrain_warmup,
            learn_every=s.retrain_learn_every,
            epsilon_decay=s.retrain_epsilon_decay,
        )
        self.agent.steps = 0
        self.agent.epsilon = self.agent.settings.epsilon_start

    def _swap_remembered(self, left: dict[str, Any], back: dict[str, Any]) -> None:
        """Back in the remembered scene: its agent serves again, and the one of the
        scene just left is remembered in its place."""
        st = self.state
        current = copy.deepcopy(self.agent.q.state_dict())
        self.agent.q.load_state_dict(back)
        self.agent.target.load_state_dict(back)
        self.remembered_q, st.remembered_scene = current, left
        st.left_scene = None
        st.drift_llr = None  # the remembered agent knows this scene
        st.swaps += 1
        self._agent_changed = True

    def _retrain_done(self) -> bool:
        s, st = self.settings, self.state
        if st.retrain_steps >= s.retrain_max_steps:
            return True
        if st.retrain_steps < max(s.retrain_min_steps, 1):
            return False
        if len(st.retrain_accuracies) < min(s.exit_window, st.retrain_steps):
            return False
        accuracy = float(np.mean(st.retrain_accuracies))
        reward_ok = s.exit_reward is None or float(np.mean(st.retrain_rewards)) > (
            s.exit_reward
        )
        return (
            reward_ok
            and accuracy >= s.exit_accuracy
            and self.agent.epsilon < s.exit_epsilon
        )

    def _end_retrain(self) -> None:
        st = self.state
        st.mode = "inference"
        st.retrains += 1
        st.p_est = self.settings.p_est_initial
        st.estimates = []
        st.drift.reset()
        st.drift_llr = None
        self._flush_memory()
        self.agent.epsilon = 0.0

    def _flush_memory(self) -> None:
        if self.settings.flush_memory:
            self.state.generation += 1
            self.agent.memory.clear()

    # -- helpers -------------------------------------------------------------

    def _choose(self, sample: Sample, *, explore: bool) -> int:
        return self.agent.act(
            sample.features, explore=explore, candidates=self.candidates
        )

    def _upload_with_reference(
        self, sample: Sample, index: int
    ) -> tuple[Any, Any, int]:
        action = self.env.actions[index]
        found = self.env.outcomes(sample, [REFERENCE_ACTION, action])
        reference, compressed = found[REFERENCE_ACTION], found[action]
        uploaded = reference.nbytes + (
            compressed.nbytes if action != REFERENCE_ACTION else 0
        )
        return self.env.score(reference, compressed), reference, uploaded

    def _reference_bytes(self, sample: Sample) -> int:
        """Size of the q=75 reference, from the cache or encoded on the device."""
        cached = self.env.cache.get_answers(
            sample.digest, self.env.cache_name, [REFERENCE_ACTION.key]
        )
        if cached:
            return cached[REFERENCE_ACTION.key].nbytes
        image = load_image(sample.path, max_pixels=self.env.max_pixels)
        return len(encode(image, REFERENCE_ACTION, self.env.limits))

    def _transition(self, sample: Sample, index: int, reward: float) -> Transition:
        rewards = np.zeros(len(self.env.actions), dtype=np.float32)
        observed = np.zeros(len(self.env.actions), dtype=np.float32)
        rewards[index], observed[index] = reward, 1.0
        return Transition(sample.features, rewards, observed)

    def _record(
        self,
        path: Path,
        state: str,
        *,
        action: str | None = None,
        uploaded: int = 0,
        reference_bytes: int | None = None,
        accuracy: float | None = None,
        labels: Answer | None = None,
        error: str | None = None,
    ) -> Record:
        return Record(
            position=self.position,
            path=str(path),
            state=state,
            action=action,
            bytes_uploaded=uploaded,
            reference_bytes=reference_bytes,
            accuracy=accuracy,
            p_est=self.state.p_est,
            epsilon=self.agent.epsilon,
            labels=[
                (label.class_id, label.name, round(label.score, 6))
                for label in (labels or [])[:TOP_LABELS_RECORDED]
            ],
            error=error,
        )

    def _commit(
        self,
        record: Record,
        *,
        agent: bool = False,
        transition: Transition | None = None,
    ) -> Record:
        record = replace(record, p_est=self.state.p_est, epsilon=self.agent.epsilon)
        agent = agent or self._agent_changed
        self._agent_changed = False
        self.store.commit(
            record,
            self._state_dict(),
            agent=self._agent_blob() if agent else None,
            transition=(self.state.generation, transition) if transition else None,
        )
        self.position += 1
        return record


def dominated(action: Action) -> bool:
    """Larger than the reference at full size: never more accurate (the reference's
    answer is the truth), always more bytes."""
    return action.scale == 1.0 and action.quality > REFERENCE_ACTION.quality


def next_p_est(
    p_est: float, estimates: list[float], accuracy: float, settings: RuntimeSettings
) -> tuple[float, list[float]]:
    """SPEC.md: ``p_est <- p_est - omega * grad(A)``, clipped to the bounds.

    ``grad(A)`` is the change of the recent accuracy (mean of the last ``window``
    estimates) that this estimate's ``accuracy`` causes: falling accuracy raises
    ``p_est``. Returns the new ``p_est`` and the kept window of accuracies.
    """
    window = [*estimates, accuracy][-settings.window :]
    if not estimates:
        return p_est, window
    slope = float(np.mean(window)) - float(np.mean(estimates[-settings.window :]))
    steady = len(window) == settings.window and min(window) == 1.0
    if steady and p_est > settings.p_est_initial:
        # The last n estimates were all right: back towards the resting rate (ours).
        initial = settings.p_est_initial
        p_est = initial + (p_est - initial) * settings.p_est_decay
    bounded = np.clip(p_est - settings.omega * slope, settings.p_est_min,
                      settings.p_est_max)  # fmt: skip
    return float(bounded), window
