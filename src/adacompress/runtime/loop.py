"""The running system: inference, estimate, retrain (docs/formulas.md).

Images arrive one by one. In *Inference* the agent's choice is uploaded alone. With
probability ``p_est`` an image is an *Estimate*: the reference is uploaded too, the
answer is scored and stored in the memory buffer ``D``, and ``p_est`` moves against
the slope of the recent accuracy (:mod:`~adacompress.runtime.p_est`). When the recent
accuracy falls, or the drift test (:mod:`~adacompress.runtime.wald`) after a
scene drift (:mod:`~adacompress.runtime.drift`) says so, the runtime *Retrains*: the
policy explores and learns again while the caller gets the reference's labels, until
the recent results pass their thresholds (:mod:`~adacompress.runtime.retrain`).
Probes of the next cheaper candidate (in every estimate, and in some other images
while the agent's calibration on the pictures is in doubt) let the runtime send
cheaper when they keep the answers (:mod:`~adacompress.runtime.downshift`): it adapts
downwards as well as upwards.

Every decision is taken from the current image's own draw and state; every image,
including bad files and failed uploads, gets a record; all state is committed per
image (:mod:`~adacompress.runtime.saved_state`), so a killed run resumes exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from adacompress.cloud.service import ServiceError
from adacompress.core.datasets import PhotoFile, read_photo
from adacompress.device.actions import REFERENCE_ACTION
from adacompress.device.compressor import Compressor
from adacompress.exchange.environment import CompressionEnv, Sample
from adacompress.exchange.learner import Learner
from adacompress.runtime.choice import ActionChoice
from adacompress.runtime.downshift import CheaperProbe
from adacompress.runtime.drift.monitor import cached_statistics
from adacompress.runtime.retrain import retrain_lesson
from adacompress.runtime.run_state import RunState
from adacompress.runtime.saved_state import commit_image, start_or_resume
from adacompress.runtime.settings import RuntimeSettings
from adacompress.runtime.store import Record, RunStore, Step, Transition
from basekit.images import ImageError


class Runtime:
    """Processes images one by one and keeps the store up to date.

    Args:
        env: service, cache, actions and feature extractor.
        compressor: the deployed agent (its policy's replay memory is the buffer D).
        settings: the loop's constants.
        store: where the state is committed after every image.
        metadata: what identifies the run (a resumed run must match it).
    """

    def __init__(
        self,
        env: CompressionEnv,
        compressor: Compressor,
        settings: RuntimeSettings,
        store: RunStore,
        *,
        metadata: dict[str, Any],
    ) -> None:
        self.objective = compressor.card.objective
        settings = settings.for_agent(self.objective)
        self.env, self.settings, self.store = env, settings, store
        self.learner = Learner(compressor.learned)
        self.policy = self.learner.policy
        self.candidates = (
            compressor.candidates if settings.skip_dominated else compressor.accepted
        )
        self.rng = np.random.default_rng(settings.seed)
        self.state = RunState(self.learner, settings)
        self.probe = CheaperProbe(env, self.candidates, settings)
        self.choice = ActionChoice(
            self.policy, self.candidates, self.objective, settings, compressor.metadata
        )
        self._identity: tuple[str, str | None] = ("", None)
        self._calls_before = 0
        start_or_resume(store, self.state, self.rng, metadata)
        self.choice.begin(self.state.control)
        self.position = store.next_position()

    # -- one image -------------------------------------------------------------

    def process(self, path: Path, photo: PhotoFile | None = None) -> Record:
        """Handle the next image and commit everything; returns its record.

        ``photo`` (the file read and hashed once) is read here when not given.
        """
        draw = float(self.rng.random())  # drawn for every image: resumable sequence
        # The rate is fixed before the photo is seen (a drift it shows raises the
        # next photo's): the estimates stay a random sample, not chosen by the photo.
        p_est = self.state.next_p_est()
        probe_draw = (
            float(self.rng.random()) if self.settings.downshifting.downshift else 1.0
        )
        photo = photo or read_photo(path)
        self._identity = photo.identity
        if photo.data is not None and photo.digest is not None:
            self.env.remember_file(path, photo.data, photo.digest)
        self._calls_before = self.env.calls().new
        try:
            return self._process(path, draw, p_est, probe_draw)
        finally:
            self.env.release_photos()  # the next photo needs none of this one

    def _process(
        self, path: Path, draw: float, p_est: float, probe_draw: float
    ) -> Record:
        try:
            sample = self._sample(path)
            if self.state.watching:
                self.state.watch_drift(cached_statistics(self.env, sample))
        except ImageError as err:
            return self._commit(path, "skipped", Step(error=str(err)))
        try:
            if self.state.mode == "retrain":
                return self._retrain_step(path, sample)
            if draw <= p_est:
                return self._estimate(path, sample, p_est)
            return self._inference(path, sample, p_est, probe_draw)
        except (ServiceError, ImageError) as err:
            return self._commit(path, "failed", Step(error=str(err)))

    def _sample(self, path: Path) -> Sample:
        samples, skipped = self.env.prepare([path], progress=False)
        if skipped:
            raise ImageError(skipped[0].error)
        return samples[0]

    def _inference(
        self, path: Path, sample: Sample, p_est: float, probe_draw: float
    ) -> Record:
        shift = self.state.downshift
        choice = self.choice.choose(sample, self.state.control)
        index = self.probe.lowered(shift, sample, choice)
        action = self.env.actions[index]
        outcome = self.env.outcomes(sample, [action])[action]
        self.state.certificate.answer(p_est)
        self.choice.answered(self.state.control, outcome.answer)
        uploaded = outcome.nbytes
        probing = probe_draw < self.settings.downshifting.downshift_probe
        if probing and shift.searching:
            uploaded += self.probe.probe(shift, sample, index, against=action)
        step = Step(
            action.key,
            uploaded,
            self.env.reference_bytes(sample),
            labels=outcome.answer,
        )
        return self._commit(path, "inference", step)

    def _estimate(self, path: Path, sample: Sample, p_est: float) -> Record:
        state = self.state
        choice = self.choice.choose(sample, state.control)
        index = self.probe.lowered(state.downshift, sample, choice)
        result, labels, uploaded = self.env.step_with_reference(sample, index)
        drift, extra = self.choice.drift_check(self.env, sample, index, state.monitor)
        state.certificate.answer(p_est)
        state.certificate.estimate(result.accuracy, p_est)
        self.choice.estimated(state.control, result.accuracy, p_est)
        if result.accuracy < 1.0:
            state.downshift.lost()
        uploaded += extra + self.probe.probe(
            state.downshift, sample, index, against=REFERENCE_ACTION
        )
        transition = Transition.one_action(
            sample.features,
            index,
            self.policy.signal(result.accuracy, result.size_ratio, self.objective),
            len(self.env.actions),
        )
        # Stored in D, not learned from: the policy learns only while retraining.
        self.learner.remember(
            transition.features, transition.signals, transition.observed
        )
        action = self.env.actions[index]
        state.estimated(result.accuracy, drift, self.env.is_reference(sample, action))
        step = Step(
            action.key, uploaded, result.reference_bytes, result.accuracy, labels
        )
        if state.calls_for_retrain():
            state.start_retrain(self.choice.retrain_learning_rate)
            kept = None if self.settings.retrain.flush_memory else transition
            return self._commit(path, "estimate", step, agent=True, transition=kept)
        return self._commit(path, "estimate", step, transition=transition)

    def _retrain_step(self, path: Path, sample: Sample) -> Record:
        index = self.learner.act(
            sample.features, explore=True, candidates=self.candidates
        )
        result, labels, uploaded = self.env.step_with_reference(sample, index)
        transition, extra = retrain_lesson(
            self.env,
            self.policy,
            sample,
            index,
            result,
            self.objective,
            self.settings.retrain,
        )
        self.learner.observe_all(
            sample.features, transition.signals, sample.features, transition.observed
        )
        reward = self.objective.reward(result.accuracy, result.size_ratio)
        self.state.retrain.add(reward, result.accuracy, self.settings.retrain)
        step = Step(
            self.env.actions[index].key,
            uploaded + extra,
            result.reference_bytes,
            result.accuracy,
            labels,
        )
        if self.state.retrain.done(self.learner.epsilon, self.settings.retrain):
            self.state.end_retrain()
        return self._commit(path, "retrain", step, agent=True, transition=transition)

    def _commit(
        self,
        path: Path,
        kind: str,
        step: Step,
        *,
        agent: bool = False,
        transition: Transition | None = None,
    ) -> Record:
        """Record the image and the state after it, in one transaction."""
        record = step.record(
            self.position,
            path,
            kind,
            p_est=self.state.rate.p_est,
            epsilon=self.learner.epsilon,
            identity=self._identity,
            calls=self.env.calls().new - self._calls_before,
        )
        commit_image(
            self.store, self.state, self.rng, record, agent=agent, transition=transition
        )
        self.position += 1
        return record
