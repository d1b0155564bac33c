"""A damaged run state: one line naming the state folder, exit 2, the folder left
as it was; never a traceback, never a run that continues from nonsense (issue 31,
MEDIUM 6)."""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adacompress.device.actions import paper_actions
from adacompress.device.compressor import Compressor
from adacompress.device.policies.q import DQNPolicy
from adacompress.device.policies.settings import PolicySettings
from adacompress.exchange.cache import AnswerCache
from adacompress.exchange.environment import CompressionEnv
from adacompress.exchange.learner import Learner
from adacompress.runtime.loop import Runtime
from adacompress.runtime.run_state import RunState
from adacompress.runtime.saved_state import check_state
from adacompress.runtime.settings import RuntimeSettings
from adacompress.runtime.store import RunStore, StateError
from tests.adacompress.fakes import MeanFeatures, SizeCloud, write_photos

METADATA = {"backend": "size-cloud", "features": "mean", "actions": ["5"]}
ALWAYS = RuntimeSettings.of(p_est_initial=1.0, p_est_min=1.0, p_est_max=1.0)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def policy() -> DQNPolicy:
    return DQNPolicy(PolicySettings(state_dim=3, n_actions=10, seed=0))


def runtime(tmp_path: Path) -> Runtime:
    env = CompressionEnv(
        SizeCloud(),
        AnswerCache(tmp_path / "cache.sqlite"),
        actions=paper_actions(),
        extractor=MeanFeatures(),
    )
    compressor = Compressor(policy(), MeanFeatures(), paper_actions())
    store = RunStore(tmp_path / "state")
    return Runtime(env, compressor, ALWAYS, store, metadata=METADATA)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real runtime state after two estimates (D holds their transitions)."""
    folder = tmp_path_factory.mktemp("saved")
    run = runtime(folder)
    for path in write_photos(folder / "img", 2):
        run.process(path)
    run.store.close()
    run.env.cache.close()
    with closing(sqlite3.connect(folder / "state" / "run.sqlite")) as db:
        state: dict[str, Any] = json.loads(
            db.execute("SELECT state FROM runtime").fetchone()[0]
        )
    return state


def damage(folder: Path, sql: str, *values: object) -> bytes:
    """Run ``sql`` on the folder's state file; returns the file's bytes after."""
    path = folder / "run.sqlite"
    with closing(sqlite3.connect(path)) as db:
        db.execute(sql, values)
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.read_bytes()


def with_state(change: Callable[[dict[str, Any]], object]) -> Callable[..., object]:
    """A runtime state JSON with ``change`` applied to the saved one."""

    def make(state: dict[str, Any]) -> object:
        state = copy.deepcopy(state)
        result = change(state)
        return state if result is None else result

    return make


CASES: dict[str, Callable[..., object]] = {
    "rng is not a generator state": with_state(lambda s: s.update(rng="x")),
    "rng is JSON of no generator": with_state(lambda s: s.update(rng='{"a": 1}')),
    "no generation": with_state(lambda s: s.pop("generation")),
    "a list as state": with_state(lambda s: [s]),
    "generation as text": with_state(lambda s: s.update(generation="1")),
    "a negative generation": with_state(lambda s: s.update(generation=-1)),
    "an unknown mode": with_state(lambda s: s.update(mode="sleeping")),
    "p_est above 1": with_state(lambda s: s.update(p_est=5.0)),
    "estimates of text": with_state(lambda s: s.update(estimates=["a"])),
    "drift as a number": with_state(lambda s: s.update(drift=3)),
    "drift with 3 means": with_state(lambda s: s["drift"].update(mean=[0.1] * 3)),
    "drift with an unknown field": with_state(lambda s: s["drift"].update(x=1)),
    "a remembered scene as a list": with_state(
        lambda s: s.update(remembered_scene=[1])
    ),
    "a negative downshift level": with_state(lambda s: s["downshift"].update(level=-2)),
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_damaged_runtime_state_is_one_line_naming_the_folder(
    tmp_path: Path, saved: dict[str, Any], case: str
) -> None:
    runtime(tmp_path).store.close()  # a new run: its state file exists
    folder = tmp_path / "state"
    state = CASES[case](saved)
    before = damage(folder, "UPDATE runtime SET state = ?", json.dumps(state))
    with pytest.raises(StateError) as raised:
        runtime(tmp_path)
    message = str(raised.value)
    assert str(folder) in message and "damaged runtime state" in message
    assert "\n" not in message and len(message) < 500
    assert (folder / "run.sqlite").read_bytes() == before  # never overwritten


def test_the_saved_state_itself_resumes(tmp_path: Path, saved: dict[str, Any]) -> None:
    assert check_state(copy.deepcopy(saved)) == saved
    run = runtime(tmp_path)
    run.store.close()
    damage(tmp_path / "state", "UPDATE runtime SET state = ?", json.dumps(saved))
    assert runtime(tmp_path).state.generation == saved["generation"]


@pytest.mark.parametrize(
    ("sql", "value"),
    [
        ("UPDATE runtime SET state = ?", "[" * 100_000),
        ("UPDATE runtime SET state = ?", '{"p_est": 1e400}'),
        ("UPDATE runtime SET metadata = ?", "[1]"),
        ("UPDATE runtime SET agent = ?", b"junk"),
        ("UPDATE runtime SET agent = ?", "text"),
    ],
)
def test_a_damaged_state_row_is_one_line(
    tmp_path: Path, sql: str, value: object
) -> None:
    runtime(tmp_path).store.close()
    folder = tmp_path / "state"
    damage(folder, sql, value)
    with pytest.raises(StateError, match="damaged runtime state") as raised:
        runtime(tmp_path)
    assert str(folder) in str(raised.value) and "\n" not in str(raised.value)


def test_a_transition_that_does_not_fit_the_agent_is_refused(tmp_path: Path) -> None:
    """A 4-byte state in D would be broadcast into the agent's memory."""
    run = runtime(tmp_path)
    run.process(write_photos(tmp_path / "img", 1)[0])
    run.store.close()
    folder = tmp_path / "state"
    damage(folder, "UPDATE transitions SET state = ?", np.ones(1, np.float32).tobytes())
    with pytest.raises(StateError, match="transition"):
        runtime(tmp_path)
    damage(folder, "UPDATE transitions SET state = ?", b"abcde")
    with pytest.raises(StateError, match="transition"):
        runtime(tmp_path)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("labels", "[" * 100_000 + "]" * 100_000),
        ("labels", '[[1e400, "x", 0.5]]'),
        ("labels", '[[1, "x", 0.5], 7]'),
        ("bytes_uploaded", "x"),
        ("p_est", float("inf")),
        ("path", b"\x00\x01"),  # TEXT affinity keeps a blob a blob
    ],
)
def test_a_damaged_record_is_one_line(
    tmp_path: Path, column: str, value: object
) -> None:
    run = runtime(tmp_path)
    run.process(write_photos(tmp_path / "img", 1)[0])
    damage(tmp_path / "state", f"UPDATE records SET {column} = ?", value)
    with pytest.raises(StateError, match="damaged record") as raised:
        run.store.records()
    assert "\n" not in str(raised.value)
    run.store.close()


# -- fuzzing the readers --------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(["inference", "retrain", "x"]),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=16,
)


@pytest.fixture(scope="module")
def run_state() -> Iterator[RunState]:
    yield RunState(Learner(policy()), ALWAYS)


@FUZZ
@given(data=st.data())
def test_fuzz_a_checked_state_resumes_and_any_other_is_refused(
    saved: dict[str, Any], run_state: RunState, data: st.DataObject
) -> None:
    """A saved state with any field replaced by any JSON (or dropped): refused
    with a ValueError by :func:`check_state`, or resumed without error."""
    state = copy.deepcopy(saved)
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(sorted(state)))
        if data.draw(st.booleans()):
            state.pop(key)
        else:
            state[key] = data.draw(json_values)
    try:
        checked = check_state(json.loads(json.dumps(state)))
    except ValueError as err:
        assert "\n" not in str(err)
        return
    blob = run_state.agent_blob()
    run_state.resume(checked, blob, [])
    np.random.default_rng(0).bit_generator.state = json.loads(checked["rng"])


@FUZZ
@given(state=json_values)
def test_fuzz_any_json_is_a_state_or_a_value_error(state: object) -> None:
    try:
        check_state(state)
    except ValueError as err:
        assert "\n" not in str(err)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunStore]:
    folder = tmp_path_factory.mktemp("fuzz")
    runtime(folder).store.close()
    with RunStore(folder / "state") as opened:
        yield opened


@FUZZ
@given(
    column=st.sampled_from(["state", "metadata", "agent"]),
    value=st.one_of(
        st.binary(max_size=64),
        st.text(max_size=64),
        json_values.map(json.dumps),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False),  # SQLite stores NaN as NULL,
    ),
)
def test_fuzz_the_stored_row_reads_or_fails_in_one_line(
    store: RunStore, column: str, value: object
) -> None:
    """Any value in any column of the runtime row: read back, or one line."""
    with closing(sqlite3.connect(store.folder / "run.sqlite")) as db:
        good = db.execute(f"SELECT {column} FROM runtime").fetchone()[0]
        db.execute(f"UPDATE runtime SET {column} = ?", (value,))
        db.commit()
        try:
            store.load(METADATA)
        except StateError as err:
            assert str(store.folder) in str(err) and "\n" not in str(err)
        except ValueError as err:  # another run's metadata
            assert "belongs to a run" in str(err)
        finally:
            db.execute(f"UPDATE runtime SET {column} = ?", (good,))
            db.commit()
