"""Every script under ``benchmarks/`` starts: ``--help`` answers without an error.

Nothing else imports the benchmarks, so an API they use can move away unnoticed
(issue 32: four README tables' scripts ended in an ImportError). One subprocess runs
every script's ``--help`` in turn (this file is its own driver), so torch is loaded
once rather than thirty times.
"""

from __future__ import annotations

import contextlib
import io
import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.relative_to(ROOT) for p in (ROOT / "benchmarks").rglob("*.py"))


def start(script: Path) -> str | None:
    """Run ``script --help`` as ``__main__`` in this process: None when it exits 0
    (or, for a helper without a ``main``, imports cleanly), else the error's line."""
    sys.argv = [str(script), "--help"]
    sys.path[0] = str(script.parent)  # its sibling helpers (served, logistic_fit)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path(str(script), run_name="__main__")
    except SystemExit as stop:
        if stop.code not in (0, None):
            return f"--help exited {stop.code}"
    except BaseException as error:  # noqa: BLE001 - any failure to start is the finding
        return f"{type(error).__name__}: {error}"
    return None


@pytest.fixture(scope="module")
def failures() -> dict[str, str | None]:
    """Each script's error (None: it started), from one driver subprocess."""
    done = subprocess.run(
        [sys.executable, __file__, *map(str, SCRIPTS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, str | None] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_benchmarks_are_found() -> None:
    assert Path("benchmarks/evaluate_agents.py") in SCRIPTS
    assert any(p.parts[1] == "research" for p in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=str)
def test_benchmark_starts(script: Path, failures: dict[str, str | None]) -> None:
    assert failures[str(script)] is None, failures[str(script)]


if __name__ == "__main__":
    names = sys.argv[1:]
    found = {name: start(ROOT / name) for name in names}
    sys.stdout = sys.__stdout__
    print(json.dumps(found))
