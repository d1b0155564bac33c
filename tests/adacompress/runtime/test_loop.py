"""The inference-estimate-retrain runtime: rules, transitions, crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from adacompress.device.actions import paper_actions
from adacompress.device.compressor import Compressor
from adacompress.device.policies.base import LearnedPolicy
from adacompress.device.policies.q import DQNPolicy
from adacompress.device.policies.settings import PolicySettings, TrainingProgress
from adacompress.device.policies.survival import SurvivalPolicy
from adacompress.device.zoo import AgentChoice
from adacompress.exchange.cache import AnswerCache
from adacompress.exchange.environment import CompressionEnv
from adacompress.exchange.settings import CloudSettings
from adacompress.runtime.loop import Runtime
from adacompress.runtime.run import run_stream
from adacompress.runtime.settings import RUNTIME_PRESETS, RuntimeSettings
from adacompress.runtime.store import RunStore
from tests.adacompress.fakes import MeanFeatures, SizeCloud, write_photos
from tests.helpers import count_rows, photo, write_bad_inputs

METADATA = {"backend": "size-cloud", "features": "mean", "actions": ["5"]}
Q5, Q75 = 0, 7  # action indices; SizeCloud flips its answer for uploads under 3 kB


class ScriptedAgent(DQNPolicy):
    """Greedy choices come from a script; exploration and learning are the real ones."""

    def __init__(self, script: Sequence[int], **settings: object) -> None:
        super().__init__(PolicySettings(state_dim=3, n_actions=10, seed=0, **settings))  # type: ignore[arg-type]
        self.script = list(script)
        self.greedy_calls = 0
        self.progress = TrainingProgress(epsilon=0.0)

    def scores(self, states: np.ndarray) -> np.ndarray:
        """The scripted action scores highest, its neighbours next."""
        choice = self.script[self.greedy_calls % len(self.script)]
        self.greedy_calls += 1
        actions = np.arange(self.settings.n_actions, dtype=np.float32)
        return -np.abs(actions - choice)[None, :]


class ScriptedSurvival(SurvivalPolicy):
    """A survival policy that trusts only its scripted action."""

    def __init__(self, script: Sequence[int]) -> None:
        super().__init__(
            PolicySettings(state_dim=3, n_actions=10, seed=0, policy="survival")
        )
        self.script = list(script)
        self.progress = TrainingProgress(epsilon=0.0)

    def scores(self, states: np.ndarray) -> np.ndarray:
        logits = np.full((1, self.settings.n_actions), -10.0, dtype=np.float32)
        logits[0, self.script[0]] = 10.0
        return logits


def make_runtime(
    tmp_path: Path,
    settings: RuntimeSettings,
    script: Sequence[int],
    policy: LearnedPolicy | None = None,
    agent_metadata: dict[str, object] | None = None,
) -> Runtime:
    env = CompressionEnv(
        SizeCloud(),
        AnswerCache(tmp_path / "cache.sqlite"),
        actions=paper_actions(),
        extractor=MeanFeatures(),
    )
    compressor = Compressor(
        policy or ScriptedAgent(script),
        MeanFeatures(),
        paper_actions(),
        metadata=agent_metadata,
    )
    store = RunStore(tmp_path / "state")
    return Runtime(env, compressor, settings, store, metadata=METADATA)


def test_inference_estimate_retrain_transitions(tmp_path: Path) -> None:
    paths = write_photos(tmp_path / "img", 4)
    always = RuntimeSettings.of(
        p_est_initial=1.0,
        p_est_min=1.0,
        p_est_max=1.0,
        window=2,
        retrain_below=0.9,
        retrain_min_steps=3,
        exit_window=3,
        exit_accuracy=0.0,
        exit_epsilon=1.01,
        retrain_warmup=0,
        count_reference_estimates=True,
    )
    runtime = make_runtime(tmp_path, always, [Q75, Q5])
    records = [runtime.process(p) for p in paths * 2]
    states = [r.kind for r in records]
    # estimate (ok), estimate (q5 fails -> mean 0.5 < 0.9 -> retrain), 3 retrain steps,
    # then back to estimating with p_est reset.
    assert states[:5] == ["estimate", "estimate", "retrain", "retrain", "retrain"]
    assert states[5] == "estimate"
    assert [r.accuracy for r in records[:2]] == [1.0, 0.0]
    assert runtime.state.retrains == 1
    # In Estimate and Retrain the caller gets the reference's labels and both uploads
    # are paid; the records say how many bytes went out.
    first = records[0]
    assert first.bytes_uploaded == first.reference_bytes  # q75 is the reference
    assert records[1].bytes_uploaded > records[1].reference_bytes
    # Every retrain starts afresh: epsilon back to 1 (one decay at most after its
    # first step) and its step counter reset.
    starts = [
        i
        for i in range(1, len(states))
        if states[i] == "retrain" and states[i - 1] != "retrain"
    ]
    assert len(starts) >= 2
    assert all(records[i].epsilon >= 0.97 for i in starts)
    assert runtime.learner.steps == len(states) - starts[-1]


def test_estimates_of_the_reference_itself_do_not_dilute_a_drop(
    tmp_path: Path,
) -> None:
    always = RuntimeSettings.of(
        p_est_initial=1.0,
        p_est_min=1.0,
        p_est_max=1.0,
        window=2,
        retrain_below=0.9,
        drift_window=0,
    )
    paths = write_photos(tmp_path / "img", 4)
    ours = make_runtime(tmp_path / "ours", always, [Q75, Q75, Q5, Q5])
    states = [ours.process(p).kind for p in paths]
    # The two q75 estimates cannot fail and are left out of the window: the retrain
    # comes after two real failures, with nothing to average them away.
    assert states == ["estimate", "estimate", "estimate", "estimate"]
    assert ours.state.mode == "retrain" and ours.state.rate.estimates == [0.0, 0.0]
    assert ours.learner.memory.size == 4  # all four are in D
    paper = make_runtime(
        tmp_path / "paper",
        always.changed(count_reference_estimates=True),
        [Q75, Q75, Q5, Q5],
    )
    states = [paper.process(p).kind for p in paths[:3]]
    assert paper.state.mode == "retrain"  # window [1, 0] after the third
    assert paper.state.rate.estimates[-2:] == [1.0, 0.0]


def test_inference_uploads_only_the_choice(tmp_path: Path) -> None:
    never = RuntimeSettings.of(p_est_initial=0.0, p_est_min=0.0, p_est_max=0.0)
    runtime = make_runtime(tmp_path, never, [Q5])
    record = runtime.process(write_photos(tmp_path / "img", 1)[0])
    assert record.kind == "inference" and record.action == "5"
    assert record.accuracy is None
    assert record.bytes_uploaded < record.reference_bytes  # type: ignore[operator]
    assert record.labels and record.labels[0][0] == 1  # the flipped answer, as served
    # One paid call, kept in the store (the run's report reads it back from there).
    assert record.calls == 1 and runtime.store.records()[-1].calls == 1


def test_actions_larger_than_the_reference_are_never_sent(tmp_path: Path) -> None:
    """q85/q95 at full size cost more than the reference and cannot be more right
    than it: the runtime neither picks nor explores them (the paper preset does)."""
    never = RuntimeSettings.of(p_est_initial=0.0, p_est_min=0.0, p_est_max=0.0)
    paths = write_photos(tmp_path / "img", 2)
    runtime = make_runtime(tmp_path / "ours", never, [9])
    assert [runtime.process(p).action for p in paths] == ["75", "75"]
    paper = never.changed(skip_dominated=False)
    runtime = make_runtime(tmp_path / "paper", paper, [9])
    assert [runtime.process(p).action for p in paths] == ["95", "95"]
    ours = make_runtime(tmp_path / "explore", never, [9])
    assert ours.candidates == list(range(8))
    ours.learner.epsilon = 1.0
    features = ours._sample(paths[0]).features
    explored = {
        ours.learner.act(features, explore=True, candidates=ours.candidates)
        for _ in range(100)
    }
    assert explored == set(range(8))


def write_scene(
    folder: Path,
    n: int,
    brightness: float,
    seed: int,
    shape: tuple[int, int] = (48, 64),
) -> list[Path]:
    """``n`` noisy pictures around one brightness (a scene for the drift detector)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        pixels = np.clip(rng.normal(brightness, 30, (*shape, 3)), 0, 255)
        path = folder / f"{i:03d}.png"
        Image.fromarray(pixels.astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def test_scene_memory_swaps_the_day_agent_back_after_the_night(
    tmp_path: Path,
) -> None:
    quiet = RuntimeSettings.of(
        p_est_initial=0.0,
        p_est_min=0.0,
        p_est_max=0.0,
        drift_p_est=0.0,
        drift_window=6,
        drift_threshold=8.0,
    )
    day = write_scene(tmp_path / "day", 40, 200.0, seed=1)
    night = write_scene(tmp_path / "night", 40, 40.0, seed=2)
    runtime = make_runtime(tmp_path, quiet, [0])
    day_weights = {k: v.clone() for k, v in runtime.policy.network.state_dict().items()}
    for path in day[:10] + night[:6]:
        runtime.process(path)
    assert runtime.state.monitor.scenes.left_scene is not None  # the night was noticed
    # A retrain at night (its learning stood in for by a weight change).
    runtime.state.start_retrain()
    with torch.no_grad():
        for param in runtime.policy.network.parameters():
            param.add_(1.0)
    runtime.state.end_retrain()
    night_weights = {
        k: v.clone() for k, v in runtime.policy.network.state_dict().items()
    }
    for path in night[6:20]:
        runtime.process(path)
    assert runtime.state.monitor.scenes.swaps == 0  # night stays night
    for path in day[10:30]:
        runtime.process(path)
    # The day came back: so did its agent.
    assert runtime.state.monitor.scenes.swaps == 1
    for key, value in runtime.policy.network.state_dict().items():
        assert torch.equal(value, day_weights[key])
    # A retrain that starts before the new scene's reference is formed decides for
    # that scene: no comparison (and no crash) afterwards.
    for path in night[20:24]:
        runtime.process(path)
    assert runtime.state.monitor.scenes.match_pending
    runtime.state.start_retrain()
    runtime.state.end_retrain()
    assert not runtime.state.monitor.scenes.match_pending
    for path in night[24:40]:
        runtime.process(path)
    assert runtime.state.monitor.scenes.swaps == 1
    runtime.store.close()
    # The night agent is remembered in the store, ready for the next night.
    resumed = make_runtime(tmp_path, quiet, [0])
    assert resumed.state.monitor.remembered is not None
    for key, value in resumed.state.monitor.remembered.items():
        assert torch.equal(value, night_weights[key])
    # Without scene memory (the paper) the night agent stays.
    plain = make_runtime(tmp_path / "plain", quiet.changed(scene_memory=False), [0])
    plain.state.start_retrain()
    plain.state.end_retrain()
    for path in day[:10] + night[:20] + day[10:30]:
        plain.process(path)
    monitor = plain.state.monitor
    assert monitor.scenes.swaps == 0 and monitor.remembered is None


def test_after_a_drift_a_sequential_test_decides_whether_to_retrain(
    tmp_path: Path,
) -> None:
    """SPRT of failure rate 0.01 against 0.05 (alpha 0.05, beta 0.2): a failure adds
    log 5 = 1.61, a success log(0.95/0.99) = -0.041; retrain at log 16 = 2.77, keep
    the agent at log(0.2/0.95) = -1.56 (38 successes)."""
    settings = RuntimeSettings.of(
        p_est_initial=0.0,
        p_est_min=0.0,
        p_est_max=0.0,
        drift_p_est=1.0,
        drift_window=6,
        window=100,
        skip_dominated=False,
        scene_memory=False,
    )
    # 96x128 noise: q75 (the reference) and q95 are above SizeCloud's 3 kB, q5 below.
    day = write_scene(tmp_path / "day", 10, 200.0, seed=1, shape=(96, 128))
    night = write_scene(tmp_path / "night", 60, 40.0, seed=2, shape=(96, 128))
    # Night answers that survive (q95): the test runs to "keep", then p_est falls.
    kept = make_runtime(tmp_path / "kept", settings, [9])
    records = [kept.process(p) for p in day + night]
    states = [r.kind for r in records]
    assert states[:10] == ["inference"] * 10
    first = states.index("estimate")
    assert 10 <= first <= 16  # the drift is noticed within the night's first images
    assert states[first : first + 38] == ["estimate"] * 38
    assert all(r.accuracy == 1.0 for r in records[first : first + 38])
    assert set(states[first + 38 :]) == {"inference"}
    assert kept.state.monitor.test.llr is None and kept.state.retrains == 0
    # Adapting downwards, an agent the test keeps is then searched for wasted bytes.
    on = settings.changed(downshift=True, downshift_probe=0.0)
    searched = make_runtime(tmp_path / "searched", on, [9])
    # As if the search of the run's start ended:
    searched.state.downshift.searching = False
    for p in day + night:
        searched.process(p)
    assert searched.state.downshift.searching
    # Night answers that fail (q5): two failures in a row mean a retrain.
    failing = make_runtime(tmp_path / "failing", settings, [Q5])
    records = [failing.process(p) for p in day + night[:20]]
    states = [r.kind for r in records]
    first = states.index("estimate")
    assert states[first : first + 3] == ["estimate", "estimate", "retrain"]
    assert [r.accuracy for r in records[first : first + 2]] == [0.0, 0.0]
    with pytest.raises(ValueError, match="drift test"):
        RuntimeSettings.of(drift_test_shift=0.995)
    with pytest.raises(ValueError, match="drift test"):
        RuntimeSettings.of(drift_test_beta=0.0)


def test_bad_images_and_failed_uploads_are_recorded(tmp_path: Path) -> None:
    expected = write_bad_inputs(tmp_path / "bad")
    good = write_photos(tmp_path / "good", 1)
    runtime = make_runtime(tmp_path, RuntimeSettings(), [Q75])
    bad = sorted((tmp_path / "bad").iterdir())
    records = [runtime.process(p) for p in [*bad, *good]]
    assert [r.kind for r in records[:-1]] == ["skipped"] * len(expected)
    assert all(r.error and "\n" not in r.error for r in records[:-1])
    assert records[-1].kind in ("inference", "estimate")

    class Down(SizeCloud):
        def classify(self, images: Sequence[bytes]) -> list:  # type: ignore[type-arg]
            from adacompress.cloud.service import ServiceError

            raise ServiceError("size-cloud: 503 after 5 attempts")

    runtime.env.service = Down()
    fresh = tmp_path / "fresh.png"  # not in the cache: the service must be asked
    photo(99, (200, 150)).save(fresh)
    failed = runtime.process(fresh)
    assert failed.kind == "failed" and "503" in (failed.error or "")
    assert [r.position for r in runtime.store.records()] == list(range(len(bad) + 2))


def test_paper_preset_retrain_lasts_about_930_steps() -> None:
    """ε = 1 for 128 steps, then ×0.99 per learning call every 5 steps until < 0.2."""
    paper = RUNTIME_PRESETS.get("paper")
    epsilon, steps = 1.0, 0
    while epsilon >= paper.retrain.exit_epsilon:
        steps += 1
        if (
            steps > paper.retrain.retrain_warmup
            and steps % paper.retrain.retrain_learn_every == 0
        ):
            epsilon *= paper.retrain.retrain_epsilon_decay
    assert 900 <= steps <= 960


@pytest.mark.slow
def test_kill_9_then_resume_loses_and_repeats_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(16):
        photo(i, (320, 240)).save(folder / f"p{i:02d}.png")
    env = {**os.environ, "ADACOMPRESS_CACHE": str(tmp_path / "cache.sqlite")}

    def command(state: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "adacompress",
            "--quiet",
            "--threads",
            "1",
            "run",
            "--images",
            str(folder),
            "--state",
            str(state),
        ]

    straight = subprocess.run(
        command(tmp_path / "straight"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert straight.returncode == 0, straight.stderr
    process = subprocess.Popen(
        command(tmp_path / "killed"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = tmp_path / "killed" / "run.sqlite"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
        if count_rows(db, "records") >= 5:
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    done = count_rows(db, "records")
    assert 5 <= done < 16, "killed mid-run"
    resumed = subprocess.run(
        command(tmp_path / "killed"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "straight" / "report.json").read_text())["records"]
    b = json.loads((tmp_path / "killed" / "report.json").read_text())["records"]
    assert [r["position"] for r in b] == list(range(16))
    assert [r["path"] for r in b] == [r["path"] for r in a]
    # reports keep the column names: a record's kind is "state" there
    for key in ("state", "action", "bytes_uploaded", "accuracy", "p_est"):
        assert [r[key] for r in b] == [r[key] for r in a], key


def test_runtime_over_http_matches_in_process(tmp_path: Path) -> None:
    """The runtime works unchanged against the emulated cloud served over HTTP."""
    from adacompress.cloud.emulated import EfficientNetLiteCloud
    from adacompress.cloud.server import create_app, running
    from adacompress.cloud.settings import ServeSettings

    folder = tmp_path / "photos"
    folder.mkdir()
    paths = []
    for i in range(6):
        paths.append(folder / f"p{i}.png")
        photo(i, (320, 240)).save(paths[-1])
    common = dict(
        choice=AgentChoice("lite0"),
        settings=RUNTIME_PRESETS.get("default"),
        progress=False,
    )
    local, _ = run_stream(
        paths,
        cloud=CloudSettings("lite0", cache=str(tmp_path / "a.sqlite")),
        state_dir=tmp_path / "a",
        **common,
    )  # type: ignore[arg-type]
    app = create_app(ServeSettings(backend="lite0"), EfficientNetLiteCloud("lite0"))
    with running(app) as url:
        remote, stopped = run_stream(
            paths,
            cloud=CloudSettings(url, cache=str(tmp_path / "b.sqlite")),
            state_dir=tmp_path / "b",
            **common,
        )  # type: ignore[arg-type]
    assert stopped is None
    for key in ("kind", "action", "bytes_uploaded", "accuracy"):
        assert [getattr(r, key) for r in remote] == [getattr(r, key) for r in local]


def test_a_survival_agent_learns_the_accuracy_not_the_reward(tmp_path: Path) -> None:
    always = RuntimeSettings.of(p_est_initial=1.0, p_est_min=1.0, p_est_max=1.0)
    path = write_photos(tmp_path / "img", 1)[0]
    stored = {}
    for name, policy in (
        ("q", ScriptedAgent([Q5])),
        ("survival", ScriptedSurvival([Q5])),
    ):
        runtime = make_runtime(tmp_path / name, always, [Q5], policy)
        record = runtime.process(path)
        assert record.kind == "estimate" and record.accuracy == 0.0
        stored[name] = float(runtime.learner.memory.signals[0, Q5])
    assert stored["survival"] == 0.0  # what survived, for the cross-entropy
    assert stored["q"] != 0.0  # the reward: alpha * 0 - size ratio
