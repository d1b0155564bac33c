"""Adapting downwards: probes of the next cheaper candidate lower what is sent when
they keep the answers, and a lost answer raises it again."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adacompress.device.actions import Action, paper_actions
from adacompress.device.codec import encode
from adacompress.device.compressor import Compressor
from adacompress.exchange.cache import AnswerCache
from adacompress.exchange.environment import CompressionEnv
from adacompress.runtime.downshift import Downshift, ladder, lowered
from adacompress.runtime.loop import Runtime
from adacompress.runtime.settings import RuntimeSettings
from adacompress.runtime.store import RunStore
from basekit.images import load_image
from tests.adacompress.fakes import MeanFeatures, SizeCloud, write_photos
from tests.adacompress.runtime.test_loop import METADATA, Q75, ScriptedAgent

# Every image an estimate (with its probe), never a retrain, no drift detector; a
# quick test: 8 kept probes in a row (log 0.99/0.69 = 0.36 each, bound
# log 0.8/0.05 = 2.77) step down.
PROBING = RuntimeSettings.of(
    p_est_initial=1.0,
    p_est_min=1.0,
    p_est_max=1.0,
    retrain_below=0.0,
    drift_window=0,
    downshift=True,
    downshift_shift=0.3,
)
SHIFT = PROBING.downshifting.downshift_shift


def make(tmp_path: Path, cloud: SizeCloud, settings: RuntimeSettings) -> Runtime:
    env = CompressionEnv(
        cloud,
        AnswerCache(tmp_path / "cache.sqlite"),
        actions=paper_actions(),
        extractor=MeanFeatures(),
    )
    compressor = Compressor(ScriptedAgent([Q75]), MeanFeatures(), paper_actions())
    return Runtime(
        env, compressor, settings, RunStore(tmp_path / "state"), metadata=METADATA
    )


def test_the_sequential_test_steps_down_on_kept_answers_and_resets_on_a_loss() -> None:
    shift = Downshift()
    for _ in range(7):
        shift.add(1.0, PROBING.drift, SHIFT)
    assert shift.level == 0 and shift.llr > 0
    shift.add(1.0, PROBING.drift, SHIFT)
    assert (shift.level, shift.llr, shift.steps_down) == (1, 0.0, 1)
    for _ in range(5):
        shift.add(1.0, PROBING.drift, SHIFT)
    shift.add(
        0.0, PROBING.drift, SHIFT
    )  # one lost answer outweighs five kept ones: test afresh
    assert (shift.level, shift.llr) == (1, 0.0)
    shift.lost()
    assert shift.level == 0
    shift.lost()
    assert shift.level == 0  # never below the policy's own choice


def test_ladder_orders_by_this_images_sizes() -> None:
    sizes = np.array([50.0, 10.0, 30.0, 20.0])
    rungs = ladder(sizes, [0, 1, 2, 3])
    assert rungs == [1, 3, 2, 0]
    assert lowered(rungs, 0, 1) == 2 and lowered(rungs, 0, 9) == 1
    assert lowered(rungs, 1, 1) == 1


def test_an_over_cautious_agent_is_lowered_and_the_probes_are_paid(
    tmp_path: Path,
) -> None:
    paths = write_photos(tmp_path / "img", 4)
    runtime = make(tmp_path, SizeCloud(threshold=0), PROBING)  # every upload is right
    records = [runtime.process(p) for p in paths * 6]
    assert runtime.state.downshift.steps_down >= 2
    assert records[0].action == "75"
    assert records[-1].action not in ("75", "65")
    # The estimate paid for its probe too: more than the q75 upload alone (the
    # choice is the reference itself here), and two calls.
    assert records[0].bytes_uploaded > records[0].reference_bytes  # type: ignore[operator]
    assert [r.calls for r in records[:4]] == [2, 2, 2, 2]


def test_a_tight_agent_stays_and_a_lost_answer_raises_the_level(
    tmp_path: Path,
) -> None:
    paths = write_photos(tmp_path / "img", 4)
    images = [load_image(p) for p in paths]
    q75 = min(len(encode(im, Action(75))) for im in images)
    q65 = max(len(encode(im, Action(65))) for im in images)
    assert q65 < q75  # the cloud below keeps q75's answer and loses q65's
    runtime = make(tmp_path / "tight", SizeCloud(threshold=q75), PROBING)
    records = [runtime.process(p) for p in paths * 6]
    assert runtime.state.downshift.steps_down == 0
    assert {r.action for r in records} == {"75"}
    # A lowered agent whose estimate loses an answer goes back up one step.
    runtime = make(tmp_path / "lowered", SizeCloud(threshold=q75), PROBING)
    runtime.state.downshift.level = 1
    record = runtime.process(paths[0])
    assert record.action == "65" and record.accuracy == 0.0
    assert runtime.state.downshift.level == 0
    assert runtime.process(paths[1]).action == "75"


def test_the_paper_preset_never_probes(tmp_path: Path) -> None:
    paths = write_photos(tmp_path / "img", 4)
    paper = PROBING.changed(downshift=False)
    runtime = make(tmp_path, SizeCloud(threshold=0), paper)
    records = [runtime.process(p) for p in paths * 3]
    assert {r.action for r in records} == {"75"}
    assert [r.calls for r in records[:4]] == [1, 1, 1, 1]
    assert runtime.state.downshift.llr == 0.0


def test_the_level_survives_a_restart(tmp_path: Path) -> None:
    paths = write_photos(tmp_path / "img", 4)
    runtime = make(tmp_path, SizeCloud(threshold=0), PROBING)
    for p in paths * 3:
        runtime.process(p)
    level, llr = runtime.state.downshift.level, runtime.state.downshift.llr
    assert level >= 1
    runtime.store.close()
    again = make(tmp_path, SizeCloud(threshold=0), PROBING)
    assert (again.state.downshift.level, again.state.downshift.llr) == (level, llr)


def test_other_images_probe_only_while_searching(tmp_path: Path) -> None:
    paths = write_photos(tmp_path / "img", 4)
    images = [load_image(p) for p in paths]
    q75 = min(len(encode(im, Action(75))) for im in images)
    inference = PROBING.changed(
        p_est_initial=0.0, p_est_min=0.0, p_est_max=0.0, downshift_probe=1.0
    )
    # A run starts searching: every image probes (against the sent upload's
    # answer) and on easy pictures the level goes down.
    easy = make(tmp_path / "easy", SizeCloud(threshold=0), inference)
    records = [easy.process(p) for p in paths * 4]
    assert {r.kind for r in records} == {"inference"}
    assert easy.state.downshift.steps_down >= 1 and easy.state.downshift.searching
    # Tight: the first lost probe ends the search; from then on one upload an image.
    tight = make(tmp_path / "tight", SizeCloud(threshold=q75), inference)
    records = [tight.process(p) for p in paths * 2]
    assert records[0].calls == 2 and not tight.state.downshift.searching
    assert records[0].bytes_uploaded > records[0].reference_bytes  # type: ignore[operator]
    assert all(r.bytes_uploaded == r.reference_bytes for r in records[1:])
    # The end of a retrain starts a search again.
    tight.state.start_retrain()
    tight.state.end_retrain()
    assert tight.state.downshift.searching and tight.state.downshift.level == 0
