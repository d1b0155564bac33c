"""Settings of the learning commands, and the groups they share with the others.

Light to import (no torch), so ``--help`` is fast. Each group is declared once; a
command's settings hold it as one field, and the command line shows it as one option
group (:mod:`basekit.settings_cli`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adacompress.core.datasets import check_split, resolve_images
from adacompress.core.objective import Objective, check_target
from adacompress.device.card import MAX_PHOTO_CAP, MIN_PHOTO_CAP
from adacompress.device.policies.settings import PolicySettings
from adacompress.device.resolution import DEFAULT_PHOTO_CAP
from adacompress.device.zoo import AgentChoice
from adacompress.exchange.settings import CloudSettings
from basekit.images import DEFAULT_MAX_PIXELS


@dataclass
class ImageSettings:
    """Which images, and which are too large to use."""

    images: str | None = None
    """folder of images (searched recursively), a .txt list of paths, or 'builtin';
    default: the imagenet-samples --split"""
    split: str = "train"
    """split of imagenet-samples when --images is not given: train (700), test (300,
    held out), fit, val or all"""
    data: str | None = None
    """folder holding imagenet-samples (default: $ADACOMPRESS_DATA, else the
    shared/data folder beside a source checkout)"""

    def __post_init__(self) -> None:
        check_split(self.split)

    def paths(self) -> list[Path]:
        """The image files these settings name."""
        return resolve_images(self.images, self.split, self.data)

    max_pixels: int = DEFAULT_MAX_PIXELS
    """skip images with more pixels than this"""


@dataclass
class AnswerSettings:
    """How the agent learns from the cloud's answers: the chosen action's alone, every
    action's (full information), or a survey of few per image within a budget."""

    full_information: bool = False
    """learn from every action's answer on each image (each training image is uploaded
    at every action once, then cached) instead of the chosen action's only; a
    survival agent trained so for a target also gets the answer feedback that run's
    threshold control reads"""
    queries_per_image: int | None = None
    """learn from few answers: ask about at most this many actions per training image
    besides its reference, each chosen to settle the most outcomes (survival is
    nearly monotone in scale and quality), the rest implied (survival policy)"""
    call_budget: int | None = None
    """ask the cloud at most this many new calls in all, references counted; the
    survey stops when it is spent and learning uses what it has (survival policy)"""
    check_choice: bool = True
    """survey: ask first about the action the policy would send (the cheapest one it
    trusts at the target); off: bisection weighted by uncertainty alone"""
    budget_counts_cached: bool = False
    """count answers already in the cache as calls too, as a first training against
    a new cloud would pay (for budget experiments on a warm cache)"""

    @property
    def budgeted(self) -> bool:
        """Learns from a survey of few answers per image (:mod:`~.survey`)."""
        return self.queries_per_image is not None or self.call_budget is not None

    def check(self, agent: PolicySettings) -> None:
        """Whether these modes fit together and suit ``agent``'s policy (the one
        place they are validated; the training settings call it).

        Raises:
            ValueError: a survey for a policy that does not predict survival, a
                survey of no query or a budget below one image's, or a survival
                policy told to learn from the chosen action's answer alone.
        """
        if self.budgeted and not agent.predicts_survival:
            raise ValueError(
                "learning from few answers per image (--queries-per-image, "
                "--call-budget) needs --policy survival"
            )
        if self.queries_per_image is not None and self.queries_per_image < 1:
            raise ValueError("--queries-per-image must be at least 1")
        if self.call_budget is not None and self.call_budget < 2:
            raise ValueError(
                "--call-budget must be at least 2 (a reference and a query)"
            )
        if agent.predicts_survival and not (self.full_information or self.budgeted):
            raise ValueError(
                "the survival policy learns from many actions' answers on each image: "
                "add --full-information, or --queries-per-image / --call-budget"
            )


@dataclass
class TrainSettings:
    """Settings of ``adacompress train`` (the policy's own are in PolicySettings)."""

    cloud: CloudSettings = field(default_factory=CloudSettings)
    """the cloud"""
    data: ImageSettings = field(default_factory=ImageSettings)
    """training images (never the test split)"""
    out: str = "out/agent.pt"
    """where to write the trained agent; the JSON log goes beside it"""
    actions: str = "paper"
    """action set: paper (ten JPEG qualities) or scale-quality (downscale, then
    quality: 25 actions)"""
    features: str = "lite0"
    """state feature extractor: lite0, confidence, confidence@160, confidence@128,
    confidence-scales, confidence-probes (the same, probes blurred from the
    network's view), stats, random, pirl:PATH (an encoder written by `pirl export`)
    or random:PATH (its untrained twin)"""
    steps: int = 7000
    """training steps (one image each)"""
    alpha: float = 1.0
    """reward weight of accuracy: R = alpha*A - size_ratio + beta"""
    beta: float = 0.0
    """reward offset"""
    top_k: int = 5
    """accuracy: reference top-1 within the compressed top-k"""
    photo_cap: int | None = DEFAULT_PHOTO_CAP
    """photos with a longer shorter side (px) are first reduced to it, for training and
    for every later decision, so the agent knows photos of any size (a 12 MP photo
    is decided as its reduced copy); 0: photos as they are"""
    target_accuracy: float | None = None
    """calibrate on the training images (k-fold cross-validation) so the agent keeps
    this fraction of answers at the smallest size; replaces --alpha (q policy) or
    --threshold (survival policy)"""
    calibration_folds: int = 5
    """folds of the cross-validation behind --target-accuracy"""
    answers: AnswerSettings = field(default_factory=AnswerSettings)
    """how the agent learns from the cloud's answers"""
    progress: bool = True
    """show progress bars"""
    agent: PolicySettings = field(default_factory=PolicySettings)
    """the policy's hyper-parameters"""

    def __post_init__(self) -> None:
        if self.steps < 1 or self.top_k < 1:
            raise ValueError(
                f"--steps and --top-k must be at least 1, got {self.steps} and "
                f"{self.top_k}"
            )
        if self.target_accuracy is not None:
            check_target(self.target_accuracy)
        if self.photo_cap is not None and self.photo_cap != 0:
            if not MIN_PHOTO_CAP <= self.photo_cap <= MAX_PHOTO_CAP:
                raise ValueError(
                    f"--photo-cap must be 0 or in {MIN_PHOTO_CAP}..{MAX_PHOTO_CAP}, "
                    f"got {self.photo_cap}"
                )
        self.answers.check(self.agent)

    @property
    def objective(self) -> Objective:
        """The trade-off the agent is trained for (``--alpha`` is what a
        calibration for ``--target-accuracy`` starts from)."""
        return Objective(self.alpha, self.beta, self.top_k, self.target_accuracy)

    @property
    def cap(self) -> int | None:
        """The photo cap in force (None: photos as they are)."""
        return self.photo_cap or None


@dataclass
class EvaluateSettings:
    """Settings of ``adacompress evaluate``."""

    cloud: CloudSettings = field(default_factory=CloudSettings)
    """the cloud"""
    choice: AgentChoice = field(default_factory=AgentChoice)
    """the agent"""
    data: ImageSettings = field(default_factory=lambda: ImageSettings(split="test"))
    """the images"""
    json: str | None = None
    """write the report here"""
    plot: str | None = None
    """write the PNG plot here (default: beside --json)"""
    top_k: int = 5
    """accuracy: reference top-1 within the compressed top-k"""
    progress: bool = True
    """show progress bars"""

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"--top-k must be at least 1, got {self.top_k}")
