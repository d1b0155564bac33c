"""``adacompress experiment scenery``: day -> night -> day, the paper's Fig. 4.

The stream: the held-out test images by day (2 passes, each reshuffled, seeded), the
same images at night (:mod:`adacompress.night`, 4 passes), then by day again
(2 passes); or real photos with ``--day DIR --night DIR``. It starts from the shipped
day-trained agent and runs the real runtime (:mod:`adacompress.runtime`). Afterwards
every step is scored against the reference upload; those evaluation-only calls are
not counted as traffic.
"""

from __future__ import annotations

import random
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from adacompress.cloud.service import CircuitOpen
from adacompress.core.datasets import imagenet_split, list_images
from adacompress.device.actions import REFERENCE_ACTION, Action
from adacompress.exchange.cache import default_cache_path
from adacompress.exchange.environment import open_agent_env
from adacompress.experiments.night import make_night_folder
from adacompress.experiments.settings import ScenerySettings
from adacompress.runtime.run import run_stream, summarize
from adacompress.runtime.run_plot import rolling
from adacompress.runtime.settings import RUNTIME_PRESETS
from adacompress.runtime.store import Record
from basekit.atomic import atomic_write_json

RECOVERY_WINDOW = 50
RECOVERY_ACCURACY = 0.95
AGENT_KINDS = ("inference", "estimate")


def build_stream(
    day: list[Path], night: list[Path], settings: ScenerySettings
) -> tuple[list[Path], list[str]]:
    """The image stream and each step's phase (day_before, night, day_after)."""
    rng = random.Random(settings.seed)
    stream: list[Path] = []
    phases: list[str] = []
    for phase, images, passes in (
        ("day_before", day, settings.day_passes),
        ("night", night, settings.night_passes),
        ("day_after", day, settings.after_passes),
    ):
        for _ in range(passes):
            order = list(images)
            rng.shuffle(order)
            stream += order
            phases += [phase] * len(order)
    return stream, phases


def scenery(settings: ScenerySettings) -> tuple[dict[str, Any], list[Record]]:
    """Run the experiment; write the report if asked; return it and the records
    (per step: ``report["caller_accuracy"]``)."""
    cache_path = Path(settings.cloud.cache or default_cache_path())
    day = list_images(settings.day) if settings.day else imagenet_split("test")
    unreadable: list[tuple[Path, str]] = []
    if settings.night:
        night = list_images(settings.night)
    else:
        night, unreadable = make_night_folder(day, cache_path.parent / "night")
    stream, phases = build_stream(day, night, settings)
    constants = settings.runtime or RUNTIME_PRESETS.get(settings.preset)
    warnings = stream_warnings(
        len(day), len(night), settings, constants.drift.drift_window
    )
    with tempfile.TemporaryDirectory() as tmp:
        records, stopped = run_stream(
            stream,
            cloud=settings.cloud,
            choice=settings.choice,
            state_dir=Path(settings.state or tmp),
            settings=constants,
            progress=settings.progress,
            total=len(stream),
            by_position=True,
        )
    if stopped:
        raise CircuitOpen(stopped)
    agent_correct, caller_correct = score_steps(records, settings)
    report = analyse(
        records, phases, agent_correct, caller_correct, settings.cloud.backend
    )
    report["preset"] = settings.preset
    report["caller_accuracy"] = caller_correct
    report["warnings"] = warnings
    report["problems"] += [
        {"position": None, "path": str(p), "state": "no night version", "error": e}
        for p, e in unreadable
    ]
    if settings.json:
        atomic_write_json(Path(settings.json), report)
    return report, records


def stream_warnings(
    day: int, night: int, settings: ScenerySettings, drift_window: int
) -> list[str]:
    """What makes this stream a weak test of the running system."""
    warnings = []
    shortest = min(day * settings.day_passes, night * settings.night_passes)
    if drift_window and shortest < 2 * drift_window:
        warnings.append(
            f"a phase of {shortest} images is short for the drift detector, which "
            f"needs {drift_window} to learn a scene and as many to notice a change"
        )
    return warnings


def score_steps(
    records: list[Record], settings: ScenerySettings
) -> tuple[list[float | None], list[float]]:
    """Per step: the agent's upload scored against the reference (None where it made
    no choice), and whether the caller's labels contain the reference's top-1."""
    with open_agent_env(settings.cloud, settings.choice) as (_, env):
        unique = sorted({Path(r.path) for r in records if r.kind not in ("skipped",)})
        samples = {s.path: s for s in env.prepare(unique, progress=False)[0]}
        agent_correct: list[float | None] = []
        caller_correct: list[float] = []
        for r in records:
            sample = samples.get(Path(r.path))
            if sample is None or r.kind == "failed" or r.action is None:
                agent_correct.append(None)
                caller_correct.append(0.0)
                continue
            action = Action.from_key(r.action)
            found = env.outcomes(sample, [REFERENCE_ACTION, action])
            truth = found[REFERENCE_ACTION].answer[0].class_id
            agent_correct.append(
                env.score(found[REFERENCE_ACTION], found[action]).accuracy
            )
            top = [label[0] for label in r.labels[: env.top_k]]
            caller_correct.append(float(truth in top))
    return agent_correct, caller_correct


def analyse(
    records: list[Record],
    phases: list[str],
    agent_correct: list[float | None],
    caller_correct: list[float],
    backend: str,
) -> dict[str, Any]:
    """The report keys of the scenery issue, from the per-step scores."""
    night_start = phases.index("night")
    night_end = night_start + phases.count("night")
    kinds = [r.kind for r in records]
    night_retrain = [i for i in range(night_start, night_end) if kinds[i] == "retrain"]
    first_retrain = night_retrain[0] if night_retrain else night_end
    first_return = next(
        (i for i in range(first_retrain, night_end) if kinds[i] != "retrain"), None
    )
    summary = summarize(records, backend)
    return {
        "backend": backend,
        "steps": len(records),
        "change_points": [night_start, night_end],
        "accuracy": _caller_accuracy(caller_correct, phases),
        "agent_accuracy": _agent_accuracy(
            agent_correct, kinds, night_start, night_end, night_retrain
        ),
        "recovery_steps": recovery_steps(
            caller_correct, kinds, night_start, night_end, first_return
        ),
        "traffic_ratio": summary["traffic_ratio"],
        "traffic_by_state": traffic_by_kind(records),
        "traffic_by_phase": traffic_by_phase(records, phases),
        "retrains": summary["retrains"],
        "estimates": summary["estimates"],
        "actions": _actions_by_phase(records, phases),
        "retrain_steps": len(night_retrain),
        "problems": summary["problems"],
    }


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _caller_accuracy(
    caller_correct: list[float], phases: list[str]
) -> dict[str, float | None]:
    """The caller's accuracy overall and in each phase."""

    def caller(phase: str) -> float | None:
        return _mean(
            [c for c, p in zip(caller_correct, phases, strict=True) if p == phase]
        )

    return {
        "overall": _mean(caller_correct),
        "day_before": caller("day_before"),
        "night": caller("night"),
        "day_after": caller("day_after"),
    }


def _agent_accuracy(
    agent_correct: list[float | None],
    kinds: list[str],
    night_start: int,
    night_end: int,
    night_retrain: list[int],
) -> dict[str, float | None]:
    """The agent's accuracy on the steps it chose, before the night, in the night
    before it retrained and in the night after its last retraining."""

    def agent(indices: range) -> float | None:
        return _mean(
            [
                agent_correct[i]  # type: ignore[misc]
                for i in indices
                if kinds[i] in AGENT_KINDS and agent_correct[i] is not None
            ]
        )

    first_retrain = night_retrain[0] if night_retrain else night_end
    last_retrain = night_retrain[-1] + 1 if night_retrain else None
    return {
        "day_before": agent(range(0, night_start)),
        "night_before_retrain": agent(range(night_start, first_retrain)),
        "night_after_retrain": (
            agent(range(last_retrain, night_end)) if last_retrain else None
        ),
    }


def _actions_by_phase(
    records: list[Record], phases: list[str]
) -> dict[str, dict[str, int]]:
    """How often the agent chose each action by day and by night, actions from
    the lowest quality up."""
    actions: dict[str, Counter[str]] = {"day": Counter(), "night": Counter()}
    for r, phase in zip(records, phases, strict=True):
        if r.kind in AGENT_KINDS and r.action is not None:
            actions["night" if phase == "night" else "day"][r.action] += 1
    keys = [a for a in sorted({r.action for r in records if r.action}, key=_quality)]
    return {
        phase: {key: counts.get(key, 0) for key in keys}
        for phase, counts in actions.items()
    }


def traffic_by_kind(records: list[Record]) -> dict[str, float]:
    """Each kind of step's share of the traffic ratio (they add up to it)."""
    reference = sum(r.reference_bytes or 0 for r in records)
    if not reference:
        return {}
    shares: Counter[str] = Counter()
    for r in records:
        shares[r.kind] += r.bytes_uploaded
    return {kind: shares[kind] / reference for kind in sorted(shares)}


def traffic_by_phase(records: list[Record], phases: list[str]) -> dict[str, float]:
    """Each phase's own traffic ratio (its bytes over its references' bytes)."""
    sent: Counter[str] = Counter()
    reference: Counter[str] = Counter()
    for r, phase in zip(records, phases, strict=True):
        sent[phase] += r.bytes_uploaded
        reference[phase] += r.reference_bytes or 0
    return {
        phase: sent[phase] / reference[phase] for phase in reference if reference[phase]
    }


def recovery_steps(
    caller_correct: list[float],
    kinds: list[str],
    night_start: int,
    night_end: int,
    back_in_inference: int | None,
) -> int | None:
    """Steps after the change until the rolling-50 caller accuracy over night steps is
    >= 0.95 with the runtime back in Inference after its first night retrain (or, with
    no retrain, in Inference at all). None: never within the night phase."""
    night = caller_correct[night_start:night_end]
    rolled = rolling(night, RECOVERY_WINDOW)
    start = max(RECOVERY_WINDOW - 1, (back_in_inference or night_start) - night_start)
    for k in range(start, len(night)):
        if rolled[k] >= RECOVERY_ACCURACY and kinds[night_start + k] == "inference":
            return k + 1
    return None


def _quality(key: str) -> tuple[int, float]:
    action = Action.from_key(key)
    return action.quality, action.scale
