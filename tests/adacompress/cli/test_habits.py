"""What a user of any well-made command line expects: --version, a fast --help that
lists the choices, options in any order, clear one-line errors, progress in logs,
paths that do not depend on the working directory."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from adacompress import __version__
from adacompress.cli import main
from adacompress.cli.main import build_parser
from adacompress.cloud.settings import ServeSettings
from adacompress.core.datasets import builtin_photos, data_root
from adacompress.exchange.cache import default_cache_path
from basekit import progress
from basekit.settings_cli import STATES_DEFAULT
from tests.helpers import write_bad_inputs


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"adacompress {__version__}"


def test_help_needs_no_torch_and_lists_every_choice() -> None:
    code = (
        "import sys; from adacompress.cli.main import build_parser;"
        "p = build_parser(); p.format_help();"
        "print('torch' in sys.modules, 'fastapi' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (
            "train",
            [
                "{shipped-scale-quality,shipped,shipped-probes,alpha-dqn-scale-quality,",
                "{q,survival}",
                "{paper,scale-quality,webp-scale-quality}",
                "{train,test,fit,val,all}",
                "--preset default: confidence@160",
            ],
        ),
        ("run", ["{default,paper}", "{paper,scale-quality,webp-scale-quality}"]),
        ("evaluate", ["{train,test,fit,val,all}", "--timeout", "--max-failures"]),
    ],
)
def test_choice_valued_options_list_their_choices(
    command: str, shown: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for part in shown:
        assert part in text, part


def test_global_options_work_after_the_command(tmp_path: Path) -> None:
    before = torch.get_num_threads()
    try:
        args = [
            "evaluate",
            "--images",
            "builtin",
            "--actions",
            "paper",
            "--threads",
            "1",
            "--quiet",
            "--json",
            str(tmp_path / "r.json"),
        ]
        assert main(args) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["evaluate", "--backend", "lite3"],
            "unknown backend 'lite3' (known: lite0, lite1, lite2, rekognition",
        ),
        (["evaluate", "--top-k", "0"], "--top-k must be at least 1"),
        (["train", "--preset", "paper", "--top-k", "0"], "--top-k must be at least 1"),
        (["run", "--p-est-max", "2"], "p_est settings must be in [0, 1]"),
        (["run", "--downshift-probe", "2"], "--downshift-probe must be in [0, 1]"),
        (["evaluate", "--timeout", "0"], "--timeout must be positive"),
        (["explain", "nope.jpg", "--out", "x.png"], "cannot read file"),
    ],
)
def test_clear_one_line_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = [] if args[0] == "explain" else ["--images", "builtin"]
    assert main(["--quiet", *args, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_an_unknown_split_is_named_before_looking_for_data(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADACOMPRESS_DATA", "/nonexistent")
    with pytest.raises(SystemExit) as done:
        main(["evaluate", "--split", "tset"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'tset'" in err and "imagenet-samples" not in err


def test_train_defaults_to_the_shipped_recipe() -> None:
    from adacompress.learning.presets import TRAIN_PRESETS

    assert TRAIN_PRESETS.default == "shipped-scale-quality"  # the default agents'
    shipped = TRAIN_PRESETS.get()
    assert shipped.features == "confidence@160" and shipped.target_accuracy == 0.99
    assert shipped.agent.policy == "survival" and shipped.actions == "scale-quality"
    paper_actions = TRAIN_PRESETS.get("shipped")
    assert paper_actions.agent.gamma == 0.0 and paper_actions.agent.standardize
    assert TRAIN_PRESETS.get("paper").agent.gamma == 0.95


def test_serve_defaults_to_the_backend_of_every_other_command() -> None:
    assert ServeSettings().backend == "lite0"


def test_progress_on_a_pipe_is_a_line_every_few_seconds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    assert (
        main(["evaluate", "--images", "builtin", "--json", str(tmp_path / "r.json")])
        == 0
    )
    lines = capsys.readouterr().err.splitlines()
    assert any(line.startswith("cloud lite0: 14/14 img") for line in lines), lines
    assert not any("\r" in line for line in lines)
    rows = json.loads((tmp_path / "r.json").read_text())["images"]
    assert len(rows) == 14
    assert set(rows[0]) == {
        "path",
        "action",
        "bytes",
        "reference_bytes",
        "accuracy",
        "strict_accuracy",
    }


def test_default_paths_do_not_depend_on_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ADACOMPRESS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("ADACOMPRESS_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_cache_path() == tmp_path / "xdg" / "adacompress" / "answers.sqlite"
    assert data_root().is_absolute()
    assert data_root("given") == Path("given")


def test_scenery_skips_bad_files_and_warns_about_a_short_stream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = tmp_path / "day"
    write_bad_inputs(day)
    for photo in builtin_photos()[:3]:
        shutil.copyfile(photo, day / photo.name)
    args = [
        "--quiet",
        "experiment",
        "scenery",
        "--day",
        str(day),
        "--day-passes",
        "1",
        "--night-passes",
        "1",
        "--after-passes",
        "1",
        "--json",
        str(tmp_path / "s.json"),
    ]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "warning: a phase of 3 images is short for the drift detector" in (
        captured.err
    )
    report = json.loads((tmp_path / "s.json").read_text())
    skipped = {Path(p["path"]).name for p in report["problems"]}
    assert {"zero.jpg", "truncated.jpg"} <= skipped


def test_every_option_states_at_most_one_default() -> None:
    """``(default: X) (default: none)`` on one option was two answers to one
    question (issue 32): a help text that says its default gets no generated one."""

    def helps(parser: argparse.ArgumentParser, name: str) -> Iterator[tuple[str, str]]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for command, sub in action.choices.items():
                    yield from helps(sub, command)
            elif action.help:
                yield f"{name} {'/'.join(action.option_strings)}", action.help

    found = list(helps(build_parser(), "adacompress"))
    assert len(found) > 100
    twice = [(o, h) for o, h in found if len(STATES_DEFAULT.findall(h)) > 1]
    assert twice == []
