"""End-to-end through the real entry point (``main(argv)``), on small real data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adacompress.cli import main
from adacompress.device.policies.files import load_policy
from tests.helpers import count_rows, photo, write_bad_inputs, write_odd_but_valid


def test_train_smoke_then_evaluate_twice(tmp_path: Path) -> None:
    agent_path = tmp_path / "agent.pt"
    assert (
        main(
            [
                "--quiet",
                "train",
                "--preset",
                "paper",
                "--backend",
                "lite0",
                "--images",
                "builtin",
                "--steps",
                "200",
                "--out",
                str(agent_path),
                "--gamma",
                "0",
            ]
        )
        == 0
    )
    log = json.loads(agent_path.with_suffix(".json").read_text())
    assert log["history"][-1]["step"] == 200
    assert log["settings"]["agent"]["gamma"] == 0.0
    # the log names its agent as it lies beside it, never by the builder's path
    assert log["agent_file"] == log["settings"]["out"] == "agent.pt"
    assert 0.0 <= log["history"][-1]["charts/accuracy"] <= 1.0
    assert log["history"][-1]["charts/epsilon"] < 1.0  # learning calls happened
    agent, meta = load_policy(agent_path)
    assert meta["backend"] == "lite0" and len(meta["actions"]) == 10  # type: ignore[arg-type]

    report_path = tmp_path / "report.json"
    args = [
        "--quiet",
        "evaluate",
        "--backend",
        "lite0",
        "--images",
        "builtin",
        "--agent",
        str(agent_path),
        "--json",
        str(report_path),
    ]
    assert main(args) == 0
    first = json.loads(report_path.read_text())
    assert first["n_images"] == 14 and first["top_k"] == 5
    assert set(first) >= {
        "backend",
        "split",
        "n_images",
        "top_k",
        "agent",
        "fixed",
        "oracle",
        "service_calls",
        "skipped",
    }
    assert sum(first["agent"]["actions"].values()) == 14
    assert list(first["fixed"]) == [str(q) for q in range(5, 100, 10)]
    assert first["fixed"]["75"]["size_ratio"] == pytest.approx(1.0)
    assert first["fixed"]["75"]["accuracy"] == 1.0
    assert first["oracle"]["accuracy"] == 1.0
    assert first["oracle"]["size_ratio"] <= min(
        row["size_ratio"] for row in first["fixed"].values() if row["accuracy"] == 1.0
    )
    assert report_path.with_suffix(".png").stat().st_size > 10_000

    assert main(args) == 0
    second = json.loads(report_path.read_text())
    assert second["service_calls"]["new"] == 0
    assert second["service_calls"]["cached"] == 14 * 10
    assert second["agent"] == first["agent"] and second["fixed"] == first["fixed"]


def test_evaluate_skips_bad_files_and_converts_odd_ones(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    expected = write_bad_inputs(folder)
    converted = write_odd_but_valid(folder)
    report_path = tmp_path / "report.json"
    args = ["--quiet", "evaluate", "--images", str(folder), "--json", str(report_path)]
    assert main(args) == 1  # done, but some inputs were skipped
    report = json.loads(report_path.read_text())
    assert report["n_images"] == len(converted)
    reasons = {Path(s["path"]).name: s["error"] for s in report["skipped"]}
    assert set(reasons) == set(expected)
    for name, word in expected.items():
        assert word in reasons[name] and "\n" not in reasons[name]


@pytest.mark.slow
def test_user_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        ["evaluate", "--images", str(empty)],
        ["evaluate", "--images", "builtin", "--agent", str(tmp_path / "none.pt")],
        ["train", "--split", "test", "--out", str(tmp_path / "a.pt")],
    ]
    for args in cases:
        run = subprocess.run(
            [sys.executable, "-m", "adacompress", "--quiet", *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 2, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("adacompress: error:"), lines
        assert "Traceback" not in run.stderr


@pytest.mark.slow
def test_killed_evaluate_keeps_every_answer_it_paid_for(tmp_path: Path) -> None:
    """kill -9 mid-run: the rerun pays only for the answers not yet cached."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(12):
        photo(i, (320, 240)).save(folder / f"p{i:02d}.png")
    cache = tmp_path / "killed.sqlite"
    env = {**os.environ, "ADACOMPRESS_CACHE": str(cache)}
    args = [
        sys.executable,
        "-m",
        "adacompress",
        "--quiet",
        "--threads",
        "1",
        "evaluate",
        "--actions",
        "paper",  # ten answers an image
        "--images",
        str(folder),
        "--json",
        str(tmp_path / "r.json"),
    ]
    process = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    stored = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
        stored = count_rows(cache, "answers")
        if stored >= 20:
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert 20 <= stored < 120, "killed mid-run"
    stored = count_rows(cache, "answers")  # what survived the kill

    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["n_images"] == 12
    assert report["service_calls"] == {"new": 120 - stored, "cached": stored}
