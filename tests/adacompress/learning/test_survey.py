"""Learning from a few answers per image: the survey, the budget, the dry run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from adacompress.cli import main
from adacompress.cloud.backends import BACKENDS
from adacompress.cloud.emulated import EfficientNetLiteCloud
from adacompress.core.datasets import builtin_photos
from adacompress.core.labels import Answer
from adacompress.core.limits import NO_LIMITS
from adacompress.device.actions import get_action_set
from adacompress.device.features import get_extractor
from adacompress.exchange.environment import open_env
from adacompress.exchange.settings import CloudSettings
from adacompress.learning.survey import survey

ARGS = [
    "--quiet",
    "train",
    "--preset",
    "survival",
    "--actions",
    "scale-quality",
    "--images",
    "builtin",
    "--steps",
    "100",
]


def test_a_survey_asks_few_questions_and_implies_the_rest(tmp_path: Path) -> None:
    cloud = CloudSettings("lite0", cache=str(tmp_path / "c.sqlite"))
    actions = get_action_set("scale-quality")
    with open_env(cloud, actions=actions, extractor=get_extractor("confidence")) as env:
        samples, _ = env.prepare(builtin_photos()[:6], progress=False)
        few = survey(env, samples, queries=3)
        assert few.asked.sum(axis=1).max() <= 3
        assert few.calls <= 6 * 4  # a reference and three questions an image
        assert few.calls == env.calls().new
        full = survey(env, samples, queries=None)
    assert full.asked.all() and not np.isnan(full.kept).any()
    order = [full.samples.index(s) for s in few.samples]
    known = ~np.isnan(few.kept)
    assert known.mean() > few.asked.mean()  # more is known than was asked
    agree = few.kept[known] == full.kept[order][known]
    assert agree.mean() > 0.9  # implied outcomes are (nearly) right
    np.testing.assert_array_equal(few.sizes, full.sizes[order])


class CountingCloud:
    """The emulated lite0 behind a counter of the images it is asked about."""

    name = cache_name = "counting-lite0"
    limits = NO_LIMITS

    def __init__(self) -> None:
        self.inner = EfficientNetLiteCloud("lite0")
        self.calls = 0

    def classify(self, images: Sequence[bytes]) -> list[Answer]:
        self.calls += len(images)
        return self.inner.classify(images)


def test_train_with_a_call_budget_makes_at_most_that_many_calls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = CountingCloud()
    monkeypatch.setitem(BACKENDS._factories, cloud.name, lambda: cloud)
    out = tmp_path / "agent.pt"
    args = [
        *ARGS,
        "--backend",
        cloud.name,
        "--call-budget",
        "20",
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "c.sqlite"),
    ]
    assert main(args) == 0
    assert 0 < cloud.calls <= 20
    log = json.loads(out.with_suffix(".json").read_text())
    assert log["service_calls"]["new"] == log["survey"]["calls"] == cloud.calls
    assert "spent after" in log["survey"]["stopped"]
    assert "survey: the budget of 20 calls was spent" in capsys.readouterr().out


def test_dry_run_counts_the_calls_and_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "c.sqlite"
    args = [
        "--quiet",
        "evaluate",
        "--images",
        "builtin",
        "--actions",
        "paper",
        "--cache",
        str(cache),
    ]
    assert main([*args, "--dry-run"]) == 0
    # 14 images x 10 qualities (q=75 is the reference), and the reference apart
    # for the ten photos above the agent's 448 px cap (all but chelsea, coffee,
    # coins and rocket).
    assert "would make 150 new calls for 14 images (0 answers" in (
        capsys.readouterr().out
    )
    # --photo-cap 0 measures the agent without its cap: the reference is action 75
    assert main([*args, "--photo-cap", "0", "--dry-run"]) == 0
    assert "would make 140 new calls" in capsys.readouterr().out
    assert main(args[1:]) == 0  # said before it starts, on stderr
    assert "adacompress: evaluate makes 150 new calls" in capsys.readouterr().err
    assert main([*args, "--dry-run"]) == 0
    assert "would make 0 new calls" in capsys.readouterr().out
    budget = [*ARGS, "--queries-per-image", "2", "--dry-run", "--cache", str(cache)]
    assert main([*budget, "--out", str(tmp_path / "a.pt")]) == 0
    assert "would make 14 to 42 new calls" in capsys.readouterr().out
    assert not (tmp_path / "a.pt").exists()


def test_few_answers_need_the_survival_policy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [
        "--quiet",
        "train",
        "--preset",
        "paper",
        "--images",
        "builtin",
        "--queries-per-image",
        "2",
    ]
    assert main(args) == 2
    assert "needs --policy survival" in capsys.readouterr().err
