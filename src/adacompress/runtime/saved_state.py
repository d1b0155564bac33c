"""The runtime state written to a ``--state`` folder, and read back from it, checked
before it is used.

The folder may sit on a shared disk and be damaged or crafted: each field of the flat
JSON that :func:`saved_state` writes must have its type and range, so a damaged state
is one line naming the folder rather than a traceback, or a run that continues from
nonsense.
"""

from __future__ import annotations

import json
from typing import Any, get_type_hints

import numpy as np

from adacompress.runtime.certificate import KeptCertificate
from adacompress.runtime.control import ThresholdControl
from adacompress.runtime.downshift import Downshift
from adacompress.runtime.drift.scene_memory import SceneMemory
from adacompress.runtime.drift.statistics import STATISTICS_SIZE, SceneDrift
from adacompress.runtime.p_est import EstimateRate
from adacompress.runtime.retrain import RetrainProgress
from adacompress.runtime.run_state import RunState
from adacompress.runtime.store import Record, RunStore, StateError, Transition
from adacompress.runtime.wald import DriftTest
from basekit.json_text import check_fields, fits, read_json

MODES = ("inference", "retrain")
MAX_RNG_CHARS = 10_000
"""A generator's state is a few hundred characters of JSON."""


def saved_state(state: RunState, rng: np.random.Generator) -> dict[str, Any]:
    """The run's state and its generator's as flat JSON (the learner's is kept
    beside it: :meth:`RunState.agent_blob
    <adacompress.runtime.run_state.RunState.agent_blob>`)."""
    return {**state.state_dict(), "rng": json.dumps(rng.bit_generator.state)}


def start_or_resume(
    store: RunStore,
    state: RunState,
    rng: np.random.Generator,
    metadata: dict[str, Any],
) -> None:
    """Start a new run in ``store``, or carry on the one it holds: ``state`` and
    ``rng`` as they were after its last image.

    Raises:
        ValueError: the store belongs to another run than ``metadata`` says.
        StateError: the stored state is damaged (never continued, nor started over).
    """
    loaded = store.load(metadata)
    if loaded is None:
        store.start(saved_state(state, rng), state.agent_blob(), metadata)
        return
    saved, blob = loaded
    try:
        saved = check_state(saved)
        memory = list(store.transitions(saved["generation"]))
        state.resume(saved, blob, memory)
    except StateError:
        raise
    except ValueError as err:  # never continue, nor start over, from it
        raise store.damaged(str(err)) from None
    rng.bit_generator.state = json.loads(saved["rng"])


def commit_image(
    store: RunStore,
    state: RunState,
    rng: np.random.Generator,
    record: Record,
    *,
    agent: bool,
    transition: Transition | None,
) -> None:
    """Commit an image's ``record`` and the state after it, in one transaction: the
    agent's too when it changed (``agent``, or a scene's agent came back), and the
    image's ``transition`` into D's current generation."""
    agent = agent or state.agent_changed
    state.agent_changed = False
    generation = state.generation
    store.commit(
        record,
        saved_state(state, rng),
        agent=state.agent_blob() if agent else None,
        transition=(generation, transition) if transition else None,
    )


def check_state(state: object) -> dict[str, Any]:
    """``state`` if it is a runtime state :meth:`RunState.resume
    <adacompress.runtime.run_state.RunState.resume>` and the runtime's generator
    can take.

    Raises:
        ValueError: the first field that is missing or wrong (one line).
    """
    if not isinstance(state, dict):
        raise ValueError(f"not an object ({type(state).__name__})")
    if state.get("drift_hold", 0):  # a state folder from before the drift test
        state = {k: v for k, v in state.items() if k != "drift_hold"}
        state["drift_llr"] = 0.0
    own: dict[str, Any] = {
        "mode": str,
        "generation": int,
        "retrains": int,
        "rng": str,
        "drift_llr": get_type_hints(DriftTest)["llr"],
        "drift": dict[str, Any],
    }
    for name, hint in own.items():
        if name not in state:
            raise ValueError(f"{name} is missing")
        if not fits(state[name], hint):
            raise ValueError(f"{name} is not {hint}")
    if state["mode"] not in MODES:
        raise ValueError(f"mode {state['mode'][:20]!r} is not one of {MODES}")
    if state["generation"] < 0 or state["retrains"] < 0:
        raise ValueError("generation or retrains is negative")
    _check_rng(state["rng"])
    for cls in (EstimateRate, RetrainProgress, SceneMemory):
        check_fields(_part(state, cls), cls)
    if not 0.0 <= state["p_est"] <= 1.0:
        raise ValueError(f"p_est {state['p_est']} is not a probability")
    _check_drift(state["drift"], "drift", window=True)
    for name in ("left_scene", "remembered_scene"):
        if state[name] is not None:
            _check_drift(state[name], name, window=False)
    if "downshift" in state:
        shift = check_fields(
            state["downshift"], Downshift, optional=True, what="downshift"
        )
        if shift.get("level", 0) < 0 or shift.get("steps_down", 0) < 0:
            raise ValueError("downshift: level or steps_down is negative")
    _check_control(state)
    return state


def _check_control(state: dict[str, Any]) -> None:
    """The threshold control's and the certificate's state (absent in a state
    folder from before them)."""
    if "control" in state:
        control = check_fields(
            state["control"], ThresholdControl, optional=True, what="control"
        )
        numbers = [v for v in control.values() if v is not None]
        if not all(np.isfinite(v) for v in numbers):
            raise ValueError("control: a value is not finite")
        if control.get("updates", 0) < 0 or control.get("weight", 0.0) < 0:
            raise ValueError("control: updates or weight is negative")
    if "certificate" in state:
        kept = check_fields(
            state["certificate"], KeptCertificate, optional=True, what="certificate"
        )
        if not all(np.isfinite(v) and v >= 0 for v in kept.values()):
            raise ValueError("certificate: a value is negative or not finite")
        if kept.get("lowest_p", 1.0) > 1.0:
            raise ValueError("certificate: lowest_p is not a probability")


def _part(state: dict[str, Any], cls: type) -> dict[str, Any]:
    """The fields of the dataclass ``cls`` that are flattened into ``state``."""
    names = cls.__dataclass_fields__  # type: ignore[attr-defined]
    missing = [name for name in names if name not in state]
    if missing:
        raise ValueError(f"{missing[0]} is missing")
    return {name: state[name] for name in names}


def _check_drift(data: object, what: str, *, window: bool) -> None:
    """A scene's reference statistics (``window``: the full :class:`SceneDrift`,
    else its :meth:`~SceneDrift.reference`)."""
    drift = check_fields(data, SceneDrift, optional=not window, what=what)
    if window and drift["window"] < 0:
        raise ValueError(f"{what}: window is negative")
    if drift.get("count", 0) < 0:
        raise ValueError(f"{what}: count is negative")
    for name in ("mean", "m2", "recent"):
        if len(drift.get(name, [])) not in (0, STATISTICS_SIZE):
            raise ValueError(f"{what}: {name} has not {STATISTICS_SIZE} values")


def _check_rng(text: str) -> None:
    """A state the runtime's generator (PCG64) accepts."""
    try:
        value = read_json(text, max_chars=MAX_RNG_CHARS)
        np.random.default_rng(0).bit_generator.state = value
    except (KeyError, TypeError, ValueError, OverflowError):
        raise ValueError("rng is not a generator state") from None
