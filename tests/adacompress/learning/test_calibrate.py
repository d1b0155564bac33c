"""Accuracy targets: the alpha search, and ``train --target-accuracy`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adacompress.cli import main
from adacompress.core.datasets import builtin_photos
from adacompress.device.actions import get_action_set
from adacompress.device.answer_feedback import AnswerFeedback
from adacompress.device.features import get_extractor
from adacompress.device.policies.files import load_policy
from adacompress.device.zoo import shipped
from adacompress.learning.calibrate import (
    ALPHA_GRID,
    THRESHOLD_GRID,
    CalibrationSearch,
)


class TableSearch(CalibrationSearch):
    """The alpha search over a known accuracy-per-alpha curve (no agents trained)."""

    def __init__(self, curve: dict[float, float]) -> None:
        self.curve = curve
        self.tunes = "alpha"
        self.results = {}
        self.folds = 5
        self.asked: list[float] = []

    def cross_validate(self, alpha: float) -> dict[str, float]:
        if alpha not in self.results:
            self.asked.append(alpha)
            self.results[alpha] = {
                "alpha": alpha,
                "cv_accuracy": self.curve[alpha],
                "cv_size_ratio": 0.01 * alpha,
            }
        return self.results[alpha]


def curve(threshold_index: int) -> dict[float, float]:
    """Accuracy 0.9 below grid index ``threshold_index``, then rising past 0.99."""
    return {
        a: 0.9 if i < threshold_index else 0.99 + 0.0005 * (i - threshold_index)
        for i, a in enumerate(ALPHA_GRID)
    }


@pytest.mark.parametrize("threshold_index", [0, 1, 6, 13, 14])
def test_search_finds_the_smallest_alpha_that_meets_the_target(
    threshold_index: int,
) -> None:
    search = TableSearch(curve(threshold_index))
    chosen = search.for_target(0.99)
    assert chosen.reached
    assert chosen.alpha == ALPHA_GRID[threshold_index]
    assert len(search.asked) <= 6  # a binary search, not the whole grid
    assert chosen.table == sorted(chosen.table, key=lambda row: row["alpha"])
    # The same search answers a laxer target from what it already measured.
    asked = len(search.asked)
    assert search.for_target(0.9).alpha == ALPHA_GRID[0]
    assert len(search.asked) <= asked + 1


def test_unreachable_target_says_so() -> None:
    search = TableSearch(curve(15))  # 0.9 everywhere
    chosen = search.for_target(0.99)
    assert not chosen.reached and chosen.alpha == ALPHA_GRID[-1]
    with pytest.raises(ValueError, match="target accuracy"):
        search.for_target(1.5)


@pytest.mark.slow
def test_train_with_a_target_then_evaluate_reports_it(tmp_path: Path) -> None:
    agent_path = tmp_path / "agent.pt"
    train_args = [
        "--quiet",
        "train",
        "--preset",
        "shipped",
        "--images",
        "builtin",
        "--out",
        str(agent_path),
        "--actions",
        "scale-quality",
        "--features",
        "confidence",
        "--gamma",
        "0",
        "--standardize",
        "--full-information",
        "--steps",
        "150",
        "--target-accuracy",
        "0.6",
        "--calibration-folds",
        "2",
    ]
    assert main(train_args) == 0
    log = json.loads(agent_path.with_suffix(".json").read_text())
    calibration = log["calibration"]
    assert calibration["target_accuracy"] == 0.6 and calibration["folds"] == 2
    tried = {row["alpha"]: row["cv_accuracy"] for row in calibration["table"]}
    chosen = calibration["alpha"]
    assert chosen in tried
    if calibration["reached"]:
        assert tried[chosen] >= 0.6
        assert all(acc < 0.6 for a, acc in tried.items() if a < chosen)
    else:
        assert chosen == ALPHA_GRID[-1] and tried[chosen] < 0.6
    _, meta = load_policy(agent_path)
    assert meta["alpha"] == chosen and meta["target_accuracy"] == 0.6
    assert meta["action_set"] == "scale-quality"
    assert len(meta["actions"]) == len(get_action_set("scale-quality"))  # type: ignore[arg-type]

    report_path = tmp_path / "report.json"
    eval_args = [
        "--quiet",
        "evaluate",
        "--images",
        "builtin",
        "--agent",
        str(agent_path),
        "--json",
        str(report_path),
        "--actions",
        "scale-quality",
    ]
    assert main(eval_args) == 0
    report = json.loads(report_path.read_text())
    assert report["actions_set"] == "scale-quality"
    assert report["target_accuracy"] == 0.6
    assert report["target_held"] == (report["agent"]["accuracy"] >= 0.6)
    assert set(report["fixed"]) == {a.key for a in get_action_set("scale-quality")}
    # The oracle of the larger action set is at least as small as the paper's.
    assert report["oracle"]["size_ratio"] <= report["fixed"]["5"]["size_ratio"]

    # An agent and --actions that disagree are refused with one line.
    wrong = [*eval_args[:-1], "paper"]
    assert main(wrong) == 2


@pytest.mark.slow
def test_survival_policy_calibrates_its_threshold(tmp_path: Path) -> None:
    agent_path = tmp_path / "survival.pt"
    args = [
        "--quiet",
        "train",
        "--preset",
        "shipped",
        "--images",
        "builtin",
        "--out",
        str(agent_path),
        "--actions",
        "scale-quality",
        "--features",
        "confidence",
        "--policy",
        "survival",
        "--hidden",
        "16",
        "--learn-every",
        "1",
        "--warmup-steps",
        "0",
        "--steps",
        "100",
        "--target-accuracy",
        "0.6",
        "--calibration-folds",
        "2",
    ]
    assert main(args) == 2  # the survival policy needs every action's answer
    assert main([*args, "--full-information"]) == 0
    calibration = json.loads(agent_path.with_suffix(".json").read_text())["calibration"]
    table = calibration["table"]
    assert [row["threshold"] for row in table] == list(THRESHOLD_GRID)
    chosen = next(r for r in table if r["threshold"] == calibration["threshold"])
    if calibration["reached"]:
        feasible = [r for r in table if r["cv_accuracy"] >= 0.6]
        assert chosen["cv_size_ratio"] == min(r["cv_size_ratio"] for r in feasible)
    else:
        assert chosen is table[-1] and chosen["cv_accuracy"] < 0.6
    agent, meta = load_policy(agent_path)
    assert agent.settings.policy == "survival"
    assert agent.settings.threshold == calibration["threshold"]
    assert len(agent.settings.action_cost) == len(get_action_set("scale-quality"))
    assert meta["target_accuracy"] == 0.6
    # It carries the answer feedback run's threshold control reads, as the shipped
    # agents do, resting at the calibrated threshold.
    feedback = AnswerFeedback.from_metadata(meta)
    assert feedback is not None and feedback.threshold == calibration["threshold"]
    assert calibration["answer_feedback"] == meta["answer_feedback"]


@pytest.mark.parametrize("backend", ["lite0", "lite1", "lite2"])
def test_shipped_scale_quality_agents_carry_their_target(backend: str) -> None:
    agent, meta = load_policy(shipped(backend, "scale-quality").file)
    assert meta["action_set"] == "scale-quality" and meta["backend"] == backend
    assert meta["target_accuracy"] == 0.99
    assert meta["actions"] == [a.key for a in get_action_set("scale-quality")]
    assert agent.settings.n_actions == 25
    assert agent.settings.state_dim == get_extractor(str(meta["features"])).dim


def test_evaluate_and_run_pick_the_shipped_scale_quality_agent(tmp_path: Path) -> None:
    images = tmp_path / "three.txt"
    images.write_text("\n".join(str(p) for p in builtin_photos()[:3]))
    report_path = tmp_path / "report.json"
    args = [
        "--quiet",
        "evaluate",
        "--images",
        str(images),
        "--actions",
        "scale-quality",
        "--json",
        str(report_path),
    ]
    assert main(args) == 0
    report = json.loads(report_path.read_text())
    assert report["actions_set"] == "scale-quality"
    assert report["agent_file"].endswith("lite0-scale-quality.pt")
    assert report["n_images"] == 3
    run_args = [
        "--quiet",
        "run",
        "--images",
        str(images),
        "--actions",
        "scale-quality",
        "--state",
        str(tmp_path / "state"),
    ]
    assert main(run_args) == 0
    run_report = json.loads((tmp_path / "state" / "report.json").read_text())
    sent = {r["action"] for r in run_report["records"] if r["action"]}
    assert sent <= {a.key for a in get_action_set("scale-quality")}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--features", "pirl:/nope.pt"], "pirl encoder not found"),
        (["train", "--target-accuracy", "1.5"], "target accuracy must be in"),
        (
            ["train", "--target-accuracy", "0.9", "--calibration-folds", "20"],
            "need 2..7 folds for 14 images",
        ),
        (["evaluate", "--min-side", "0"], "min_side must be >= 1"),
        (
            [
                "evaluate",
                "--actions",
                "scale-quality",
                "--agent",
                str(shipped("lite0", "paper").file),
            ],
            "trained with actions 'paper'",
        ),
    ],
)
def test_bad_target_settings_are_one_line_errors(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = (
        ["--out", str(tmp_path / "a.pt"), "--steps", "10"] if args[0] == "train" else []
    )
    assert main(["--quiet", *args, "--images", "builtin", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
