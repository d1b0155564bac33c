"""``adacompress ship --recalibrate`` (issue 34, item 3): the survival threshold and
its offline guarantee are rewritten in the agent file and its log, the weights are
not, and the agent's card carries the guarantee. Calibrated here on the out-of-fold
training photos alone (no cloud is asked)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from adacompress.device.compressor import Compressor
from adacompress.device.zoo import ZOO, shipped
from adacompress.learning.guarantee import misses_of
from adacompress.learning.recalibrate import OUT_OF_FOLD, recalibrate_file


def _copy(name: str, folder: Path) -> Path:
    source = shipped(name).file
    shutil.copy(source, folder / source.name)
    shutil.copy(source.with_suffix(".json"), folder / f"{name}.json")
    return folder / source.name


def test_a_survival_agent_gets_the_guaranteed_threshold(tmp_path: Path) -> None:
    file = _copy("lite2-scale-quality", tmp_path)
    before = torch.load(file, weights_only=True)
    log = json.loads(file.with_suffix(".json").read_text())
    cv = log["calibration"].get("cv_threshold", log["calibration"]["threshold"])
    record = recalibrate_file(file, (), 0.05, None, ["guarantee"])
    after = torch.load(file, weights_only=True)
    for key, value in before["network"].items():
        assert torch.equal(value, after["network"][key])
    # 700 photos, alpha = 0.01: at most 2 misses reject at 95%
    table = log["calibration"]["table"]
    allowed = [
        row["threshold"] for row in table if misses_of(row["cv_accuracy"], 700) <= 2
    ]
    assert record["threshold"] in allowed and record["cv_threshold"] == cv
    assert after["settings"]["threshold"] == record["threshold"]
    card = Compressor.load(file).card
    assert card.threshold == record["threshold"]
    assert card.guarantee is not None and card.guarantee.holds
    assert card.guarantee.method == "learn-then-test"
    assert card.guarantee.target == 0.99 and card.guarantee.confidence == 0.95
    assert [(c.name, c.photos) for c in card.guarantee.calibration] == [
        (OUT_OF_FOLD, 700)
    ]
    saved = json.loads(file.with_suffix(".json").read_text())
    assert saved["calibration"]["guarantee"]["replaces_cv_threshold"] == cv
    assert saved["recalibrated"]["command"].startswith("adacompress ship")
    # a rerun starts from the cross-validated threshold again: the same result
    again = recalibrate_file(file, (), 0.05, None, ["guarantee"])
    assert again["threshold"] == record["threshold"] and again["cv_threshold"] == cv


def test_without_a_guarantee_the_cross_validated_threshold_stays(
    tmp_path: Path,
) -> None:
    """lite0-scale-quality's safest threshold misses 5 of its 700 photos."""
    file = _copy("lite0-scale-quality", tmp_path)
    log = json.loads(file.with_suffix(".json").read_text())
    cv = log["calibration"].get("cv_threshold", log["calibration"]["threshold"])
    record = recalibrate_file(file, (), 0.05, None, ["guarantee"])
    assert record["threshold"] == cv
    card = Compressor.load(file).card
    assert card.threshold == cv
    assert card.guarantee is not None and not card.guarantee.holds
    assert "no threshold is guaranteed" in (card.guarantee.note or "")


def test_an_alpha_dqn_agent_says_why_it_has_no_guarantee(tmp_path: Path) -> None:
    file = _copy("lite0-paper", tmp_path)
    recalibrate_file(file, (), 0.05, None, ["guarantee"])
    card = Compressor.load(file).card
    assert card.guarantee is not None and card.guarantee.method == "none"
    assert "training parameter" in (card.guarantee.note or "")


def test_every_shipped_agent_carries_its_guarantee() -> None:
    """The shipped cards carry the offline guarantee (issue 34's acceptance): the
    survival agents' over 1,000 calibration photos, the threshold the guaranteed one
    where one holds, else the cross-validated one."""
    for name in ZOO:
        card = Compressor.load(name).card
        promise = card.guarantee
        assert promise is not None, name
        if card.policy == "q":
            assert promise.method == "none" and not promise.holds
            continue
        assert promise.method == "learn-then-test" and promise.photos == 1000
        assert promise.target == 0.99 and promise.confidence == 0.95
        log = json.loads(shipped(name).file.with_suffix(".json").read_text())
        calibration = log["calibration"]
        chosen = calibration["guarantee"]["threshold"]
        expected = chosen if promise.holds else calibration["cv_threshold"]
        assert card.threshold == expected == calibration["threshold"], name
