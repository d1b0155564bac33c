"""What the running system carries from one image to the next, and how it changes.

Its mode (inference or retrain), the generation of the buffer D, the retrains so
far, the estimation rate, the retrain in progress, the drift monitor, the downshift
and the learner; and the changes the images cause: an estimate's accuracy, a scene
drift watched, a retrain started and ended. :class:`~adacompress.runtime.loop.Runtime`
handles each image; this is what it keeps between them (committed after each).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from adacompress.exchange.learner import Learner
from adacompress.runtime.certificate import KeptCertificate
from adacompress.runtime.control import ThresholdControl
from adacompress.runtime.downshift import Downshift
from adacompress.runtime.drift.monitor import DriftMonitor
from adacompress.runtime.p_est import EstimateRate
from adacompress.runtime.retrain import RetrainProgress
from adacompress.runtime.settings import RuntimeSettings
from adacompress.runtime.store import Transition


class RunState:
    """The run's state between images (see the module docstring).

    Args:
        learner: the deployed policy as it learns (its replay memory is D).
        settings: the loop's constants.
    """

    def __init__(self, learner: Learner, settings: RuntimeSettings) -> None:
        self.learner, self.settings = learner, settings
        self.mode = "inference"
        self.generation = 0
        """generation of the memory buffer D; a flush starts a new one"""
        self.retrains = 0
        self.rate = EstimateRate(settings.estimate.p_est_initial)
        self.retrain = RetrainProgress()
        self.monitor = DriftMonitor(settings.drift)
        self.downshift = Downshift()
        self.control = ThresholdControl()
        self.certificate = KeptCertificate()
        self.agent_changed = False
        """the agent's weights changed outside a retrain (a scene's agent back)"""

    # -- persistence ---------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Flat JSON (the learner's is kept apart: :meth:`agent_blob`)."""
        return {
            "mode": self.mode,
            "generation": self.generation,
            "retrains": self.retrains,
            **asdict(self.rate),
            **asdict(self.retrain),
            **self.monitor.state_dict(),
            "downshift": asdict(self.downshift),
            "control": asdict(self.control),
            "certificate": asdict(self.certificate),
        }

    def agent_blob(self) -> dict[str, Any]:
        """The learner's state, and the weights the drift monitor remembers."""
        blob = dict(self.learner.training_state())
        if self.monitor.remembered is not None:
            blob["remembered_q"] = self.monitor.remembered
        return blob

    def resume(
        self,
        state: dict[str, Any],
        blob: dict[str, Any],
        memory: list[Transition],
    ) -> None:
        """Inverse of :meth:`state_dict` and :meth:`agent_blob`, with D's
        transitions of the current generation (``state`` checked by
        :func:`~adacompress.runtime.saved_state.check_state`).

        Raises:
            ValueError: the agent's state or a transition does not fit the agent.
        """
        settings = self.learner.policy.settings
        for t in memory:
            if t.features.shape != (settings.state_dim,) or not (
                t.signals.shape == t.observed.shape == (settings.n_actions,)
            ):
                raise ValueError("a transition of D does not fit the agent")
        self.mode, self.generation = state["mode"], state["generation"]
        self.retrains = state["retrains"]
        self.rate = EstimateRate(state["p_est"], state["estimates"])
        self.retrain = RetrainProgress(
            state["retrain_steps"],
            state["retrain_rewards"],
            state["retrain_accuracies"],
        )
        remembered = blob.pop("remembered_q", None)
        if remembered is not None and not isinstance(remembered, dict):
            raise ValueError("the remembered weights are not a state dict")
        self.monitor.load_state_dict(state, remembered)
        self.downshift = Downshift(**state.get("downshift", {}))
        self.control = ThresholdControl(**state.get("control", {}))
        self.certificate = KeptCertificate(**state.get("certificate", {}))
        try:
            self.learner.load_training_state(blob)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as err:
            raise ValueError(f"the agent's state ({type(err).__name__})") from None
        self.learner.forget()
        for t in memory:
            self.learner.remember(t.features, t.signals, t.observed)

    # -- changes ---------------------------------------------------------------

    def estimated(
        self, accuracy: float, drift: float | None, reference: bool = False
    ) -> None:
        """An estimate's accuracy counts towards the rate (not when the choice was the
        ``reference``, which cannot fail, unless the settings count those) and the
        drift test, which takes ``drift``, the calibrated choice's accuracy, when
        there is one."""
        counted = not reference or self.settings.estimate.count_reference_estimates
        if counted:
            self.rate.add(accuracy, self.settings.estimate)
        tested = accuracy if drift is None and counted else drift
        if tested is None:
            return
        was_testing = self.monitor.testing
        self.monitor.add_estimate(tested)
        if was_testing and not self.monitor.testing:
            self.downshift.search()  # the agent passed the drift test

    def next_p_est(self) -> float:
        """The estimate rate of the next photo, fixed before it is seen: held up
        while a drift test runs (a drift that photo shows raises the one after)."""
        if self.watching and self.monitor.holding:
            self.rate.hold(self.settings.drift.drift_p_est)
        return self.rate.p_est

    def calls_for_retrain(self) -> bool:
        """The recent accuracy fell, or the drift test says the agent now fails."""
        return (
            self.rate.dropped(self.settings.estimate)
            or self.monitor.calls_for_retrain()
        )

    @property
    def watching(self) -> bool:
        """Whether images feed the drift monitor (it is on, and no retrain runs)."""
        return self.monitor.enabled and self.mode != "retrain"

    def watch_drift(self, stats: np.ndarray) -> None:
        """Feed the drift monitor an image's scene statistics (while
        :attr:`watching`)."""
        was_testing = self.monitor.testing
        if self.monitor.watch(stats, self.learner):
            self.agent_changed = True
            self.rate.reset(self.settings.estimate)  # it knows this scene
            self.downshift.reset(search=True)
            self.control.swapped()
        if self.monitor.testing and not was_testing:
            self.downshift.reset(search=False)  # the drift test first
        if self.monitor.holding:
            self.rate.hold(self.settings.drift.drift_p_est)

    def start_retrain(self, learning_rate: float | None = None) -> None:
        """Explore again from the current policy, learning at ``learning_rate``
        (None: the agent's own), and flush D if the settings say so; remember the
        serving weights for the scene they belong to."""
        s = self.settings.retrain
        self.mode = "retrain"
        self.retrain.restart()
        self.downshift.reset(search=False)
        before = self.monitor.remembered
        self.monitor.retrain_starts(self.learner)
        self.control.retrain_starts(self.monitor.remembered is not before)
        self.flush_memory()
        self.learner.restart_exploration(
            warmup_steps=s.retrain_warmup,
            learn_every=s.retrain_learn_every,
            epsilon_decay=s.retrain_epsilon_decay,
            learning_rate=learning_rate,
        )

    def end_retrain(self) -> None:
        self.mode = "inference"
        self.retrains += 1
        self.rate.reset(self.settings.estimate)
        self.monitor.retrain_ends()
        self.downshift.reset(search=True)
        self.flush_memory()
        self.learner.stop_exploring()

    def flush_memory(self) -> None:
        if self.settings.retrain.flush_memory:
            self.generation += 1
            self.learner.forget()
