"""Every constant of the running system, its two presets -- ours (the default,
chosen on the scenery run) and the authors' code -- and ``adacompress run``'s
settings. Light to import (no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from adacompress.core.objective import Objective
from adacompress.device.zoo import AgentChoice
from adacompress.exchange.settings import CloudSettings
from basekit.images import DEFAULT_MAX_PIXELS
from basekit.registry import Registry
from basekit.settings_cli import grouped, merged

DEFAULT_FAILURE_RATE = 0.01
"""The drift test's failure rate for an agent without an accuracy target."""
MIN_FAILURE_RATE = 0.001
"""The drift test's failure rate for an agent whose target is every answer."""


@dataclass
class EstimateSettings:
    """When to estimate, and when the estimates call for a retrain."""

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
    p_est_decay: float = 0.8
    """while the last n estimates are all correct, each estimate keeps this share of
    p_est's excess over p_est_initial (1: it stays, as in the paper, where p_est only
    falls when the accuracy rises)"""
    count_reference_estimates: bool = False
    """count an estimate whose choice is the reference itself (it cannot fail) in the
    recent accuracy, as the paper does; ours stores it in D but leaves it out, so it
    does not dilute an accuracy drop"""

    def __post_init__(self) -> None:
        rates = (self.p_est_initial, self.p_est_min, self.p_est_max)
        if not (all(0 <= p <= 1 for p in rates) and self.p_est_min <= self.p_est_max):
            raise ValueError(
                "p_est settings must be in [0, 1] with p_est_min <= p_est_max, got "
                f"initial {self.p_est_initial}, min {self.p_est_min}, max "
                f"{self.p_est_max}"
            )
        if self.window < 1:
            raise ValueError("--window must be at least 1")


@dataclass
class RetrainSettings:
    """How a retrain explores, what it learns from each image, and when it ends."""

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
    retrain_queries: int = 1
    """actions asked about per retrain image: the explored one, then each the one
    whose answer settles the most (paid calls: one each, besides the reference)"""
    retrain_implied: bool = True
    """learn, at each retrain image, what its answers imply about the other actions
    (survival is nearly monotone in scale and quality; the paper learns the asked
    action only)"""
    flush_memory: bool = False
    """flush the buffer D when a retrain starts and ends (the paper). Kept (ours), the
    previous scene's transitions stay in D beside the new ones, so an agent retrained
    at night still knows what worked by day when the day comes back"""

    def __post_init__(self) -> None:
        if self.retrain_queries < 1:
            raise ValueError("--retrain-queries must be at least 1")
        if self.exit_window < 1:
            raise ValueError("--exit-window must be at least 1")


@dataclass
class DriftSettings:
    """Scene drift: its detection, the sequential test that confirms it, and the
    memory of past scenes' agents."""

    drift_window: int = 30
    """images forming the scene-statistics reference (0: no drift detection)"""
    drift_threshold: float = 8.0
    """a drift score above this (standard errors) raises p_est once"""
    drift_p_est: float = 0.5
    """p_est after a detected scene drift, held while the drift test runs"""
    drift_test_error: float | None = None
    """the drift test (a sequential probability ratio test on the estimates after a
    drift): the agent's failure rate on its own scene (default: what its target
    accuracy allows, 1 - target; 0.01 for an agent without a target)"""
    drift_test_shift: float = 0.04
    """...the failure-rate increase it is built to notice: retrain when the new
    scene's rate looks like ``drift_test_error + drift_test_shift``, keep the agent
    when it looks like ``drift_test_error``"""
    drift_test_alpha: float = 0.05
    """...its chance of a retrain when the agent is still as good as before"""
    drift_test_beta: float = 0.2
    """...its chance of keeping the agent when the rate did rise by the shift"""
    scene_memory: bool = True
    """remember the agent of the scene before a retrain; when a later scene drift
    leads back to a scene that matches it (same drift test), swap that agent back in
    instead of keeping the other scene's (day -> night -> day: the day agent returns
    without a retrain)"""

    def __post_init__(self) -> None:
        if not 0 <= self.drift_p_est <= 1:
            raise ValueError(f"--drift-p-est must be in [0, 1], got {self.drift_p_est}")
        if self.drift_window < 0:
            raise ValueError("--drift-window must be at least 0")
        error = self.failure_rate
        if not (0 < error < error + self.drift_test_shift < 1):
            raise ValueError(
                "drift test: need 0 < drift_test_error < drift_test_error + "
                f"drift_test_shift < 1, got {error} and {self.drift_test_shift}"
            )
        if not (0 < self.drift_test_alpha < 1 and 0 < self.drift_test_beta < 1):
            raise ValueError("drift test: alpha and beta must be in (0, 1)")

    @property
    def failure_rate(self) -> float:
        """The drift test's failure rate on the agent's own scene."""
        if self.drift_test_error is None:
            return DEFAULT_FAILURE_RATE
        return self.drift_test_error


@dataclass
class DownshiftSettings:
    """Adapting downwards: probes of the next cheaper candidate and their test."""

    downshift: bool = False
    """adapt downwards as well: probes of the next cheaper candidate below what is
    sent, and when they keep the answers (a sequential test) the runtime sends one
    step cheaper; a lost answer raises it again. Off (the default, and the paper):
    only lost answers change the agent; on the scenery stream it did not pay for
    its probes (docs/results.md). It replaces the threshold control, which subsumes
    it: with --downshift the threshold stays the agent's"""
    downshift_probe: float = 0.5
    """while the agent's calibration is in doubt (a run's start, after a retrain or
    a drift), the share of images outside estimates that probe too (estimates
    always do)"""
    downshift_shift: float = 0.04
    """the downshift test: the next step down is safe when it loses answers at the
    drift test's ``drift_test_error``, not when it loses them this much more often
    (with the drift test's alpha and beta: 67 kept probes in a row)"""

    def __post_init__(self) -> None:
        if not 0 <= self.downshift_probe <= 1:
            raise ValueError(
                f"--downshift-probe must be in [0, 1], got {self.downshift_probe}"
            )
        if self.downshift_shift <= 0:
            raise ValueError("--downshift-shift must be positive")


@dataclass
class ControlSettings:
    """Online threshold control (docs/formulas.md, "Threshold control") and the live
    certificate on the kept rate."""

    threshold_control: bool = True
    """move a survival agent's threshold while it runs, so that the share of lost
    answers converges to 1 - target (the agent's target; 0.99 without one): after
    every estimate by its outcome (adaptive conformal inference), after every other
    upload by what the cloud's answer says of it (--feedback-step); when no
    candidate is trusted the dearest is sent. Off: the agent's calibrated threshold,
    frozen (the paper has none; a Q-network agent has no threshold and is never
    controlled)"""
    control_step: float = 2.0
    """gamma: the step of the threshold's logit per estimate at the resting rate
    p_est_initial (a lost answer raises it by gamma * (1 - alpha), a kept one lowers it
    by gamma * alpha; an estimate at a higher p_est counts p_est_initial / p_est);
    chosen on the training photos (benchmarks/threshold_control.py --stream train:
    0.5 barely moves in 1,000 photos, 5 falls under the target)"""
    feedback_step: float = 0.2
    """the step of the threshold's logit after each upload answered alone, times
    how much less sure the cloud is of the answer than of the agent's uploads on its
    training photos (the agent file's answer feedback; an agent without one moves on
    estimates alone); chosen on replayed streams of the training photos and their
    shifts (benchmarks/research/control_sim.py: the smallest step keeping every one >=
    target - 0.005; run itself keeps 0.981 on lite1's dark training stream, and each
    agent would take a step of its own: docs/results.md); 0: estimates alone"""
    rise_margin: float = 2.0
    """how far above the answered photo's best candidate (in logits) a feedback rise
    may take the threshold (above it nothing more is trusted; a lower margin sends
    fewer bytes where the cloud is unsure of everything, and keeps fewer answers);
    chosen on the training photos' scenery and streams (docs/results.md)"""
    retrain_learning_rate: float | None = 1e-4
    """the learning rate of a retrain while the control steers (None: the agent's
    own, as without the control). The control finds the new scene's threshold; a
    retrain at the agent's own rate (0.01) on one scene's hundred photos ranked them
    worse than the weights it started from (benchmarks/research/night_threshold.py);
    chosen on the training photos' scenery (docs/results.md)"""
    control_lowest: float = 0.5
    """the threshold never goes below this survival (it may only go lower when no
    answer is lost, so the floor costs no accuracy)"""
    certificate_confidence: float = 0.95
    """confidence of the live lower bound on the kept rate (a confidence sequence,
    valid at every image at once)"""

    def __post_init__(self) -> None:
        if not self.control_step > 0:
            raise ValueError(
                f"--control-step must be positive, got {self.control_step}"
            )
        if not 0 <= self.feedback_step <= 10:
            raise ValueError(
                f"--feedback-step must be in [0, 10], got {self.feedback_step}"
            )
        if not 0 <= self.rise_margin <= 20:
            raise ValueError(
                f"--rise-margin must be in [0, 20], got {self.rise_margin}"
            )
        rate = self.retrain_learning_rate
        if rate is not None and not 0 < rate <= 1:
            raise ValueError(f"--retrain-learning-rate must be in (0, 1], got {rate}")
        if not 0 < self.control_lowest < 1:
            raise ValueError(
                f"--control-lowest must be in (0, 1), got {self.control_lowest}"
            )
        if not 0 < self.certificate_confidence < 1:
            raise ValueError(
                "--certificate-confidence must be in (0, 1), got "
                f"{self.certificate_confidence}"
            )


@dataclass
class RuntimeSettings:
    """Every constant of the loop, by the part it tunes; the defaults are ours,
    chosen on the scenery run. Each part of the runtime gets its own group."""

    estimate: EstimateSettings = field(default_factory=EstimateSettings)
    """estimates"""
    retrain: RetrainSettings = field(default_factory=RetrainSettings)
    """retraining"""
    drift: DriftSettings = field(default_factory=DriftSettings)
    """scene drift"""
    downshifting: DownshiftSettings = field(default_factory=DownshiftSettings)
    """adapting downwards"""
    control: ControlSettings = field(default_factory=ControlSettings)
    """threshold control and the live certificate"""
    skip_dominated: bool = True
    """never choose nor explore an action that uploads more than the reference with
    no accuracy to gain (quality above 75 at full size: the reference itself is always
    right and smaller); the paper explores all ten"""
    seed: int = 0
    """seed of the estimate draws"""

    def __post_init__(self) -> None:
        error, shift = self.drift.failure_rate, self.downshifting.downshift_shift
        if error + shift >= 1:
            raise ValueError(
                "downshift test: need drift_test_error + downshift_shift < 1, got "
                f"{error} and {shift}"
            )
        if self.downshifting.downshift and self.control.threshold_control:
            # Both lower what is sent; the downshift, asked for, replaces the
            # control (which subsumes it and is on by default).
            self.control = replace(self.control, threshold_control=False)

    @classmethod
    def of(cls, **values: Any) -> RuntimeSettings:
        """The defaults with ``values`` given by option name, whatever their group
        (``RuntimeSettings.of(omega=2.0, downshift=True)``)."""
        return cls().changed(**values)

    def changed(self, **values: Any) -> RuntimeSettings:
        """These settings with ``values`` given by option name, whatever their
        group."""
        return merged(self, grouped(type(self), values))

    def for_agent(self, objective: Objective) -> RuntimeSettings:
        """These settings for an agent of ``objective``: unless set, the drift
        test's failure rate is what the agent's target accuracy allows."""
        if self.drift.drift_test_error is not None or objective.target is None:
            return self
        # Rounded: targets are decimals (0.99), their complement should be too; an
        # agent meant never to fail is tested against a small rate (the test needs
        # a rate above zero).
        error = max(round(1.0 - objective.target, 9), MIN_FAILURE_RATE)
        return replace(self, drift=replace(self.drift, drift_test_error=error))


RUNTIME_PRESETS: Registry[RuntimeSettings] = Registry(
    "runtime preset",
    {
        "default": RuntimeSettings(),
        # The authors' code: p_est in [0.2, 0.95], omega 3, n 10, retrain below 0.8,
        # leave at reward > 0.45 with accuracy > 0.8 and epsilon < 0.2; the paper's
        # exploration schedule (128 warm-up steps, learn every 5, epsilon x0.99),
        # which makes a retrain last about 930 steps.
        "paper": RuntimeSettings(
            estimate=EstimateSettings(
                p_est_initial=0.2,
                p_est_min=0.2,
                p_est_max=0.95,
                omega=3.0,
                window=10,
                retrain_below=0.8,
                p_est_decay=1.0,
                count_reference_estimates=True,
            ),
            retrain=RetrainSettings(
                exit_accuracy=0.8,
                exit_reward=0.45,
                exit_epsilon=0.2,
                exit_window=10,
                retrain_min_steps=0,
                retrain_warmup=128,
                retrain_learn_every=5,
                retrain_epsilon_decay=0.99,
                flush_memory=True,
                retrain_implied=False,
            ),
            drift=DriftSettings(drift_window=0, scene_memory=False),
            control=ControlSettings(threshold_control=False),
            skip_dominated=False,
        ),
    },
)


@dataclass
class RunSettings:
    """Settings of ``adacompress run`` (the loop's constants are RuntimeSettings)."""

    cloud: CloudSettings = field(default_factory=CloudSettings)
    """the cloud"""
    choice: AgentChoice = field(default_factory=AgentChoice)
    """the agent"""
    images: str | None = None
    """folder, .txt list of paths, '-' (paths on stdin); default: the bundled photos"""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """images with more pixels than this are recorded as skipped"""
    state: str | None = None
    """state folder (resume point); default: out/run-<backend>"""
    preset: str = "default"
    """runtime constants: default (ours) or paper (the authors')"""
    json: str | None = None
    """write the run report here (default: <state>/report.json)"""
    plot: str | None = None
    """write the PNG plot here (default: beside the report)"""
    progress: bool = True
    """show a progress bar"""
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    """the loop's constants (the preset's, with what the user overrode)"""
