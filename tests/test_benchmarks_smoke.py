"""Every benchmark runs: ``--smoke`` (a handful of images, one repeat, tiny steps)
exits 0 (issue 32: benchmarks that cannot rot).

``tests/test_benchmarks_start.py`` checks that each script starts; this runs each
one end to end on tiny data, one subprocess each, with its own answer cache (cold,
as in CI). Slow: about two minutes for the set on two cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HELPERS = {
    "benchmarks/_common.py": "what the benchmarks share",
    "benchmarks/base_tree.py": "checks another commit out",
    "benchmarks/served.py": "starts adacompress serve",
    "benchmarks/research/logistic_fit.py": "a fit two research scripts share",
}
"""Scripts that are not benchmarks: nothing to smoke."""
SKIPPED: dict[str, str] = {}
"""Benchmarks whose smoke cannot run here, and why."""
BENCHMARKS = sorted(
    str(p.relative_to(ROOT))
    for p in (ROOT / "benchmarks").rglob("*.py")
    if str(p.relative_to(ROOT)) not in HELPERS
)


def test_benchmarks_are_found() -> None:
    assert "benchmarks/evaluate_agents.py" in BENCHMARKS
    assert all((ROOT / helper).is_file() for helper in HELPERS)


@pytest.mark.slow
@pytest.mark.parametrize("script", BENCHMARKS)
def test_smoke(script: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    if script in SKIPPED:
        pytest.skip(SKIPPED[script])
    cache = tmp_path_factory.getbasetemp() / "smoke-answers.sqlite"
    env = {**os.environ, "ADACOMPRESS_CACHE": str(cache)}
    done = subprocess.run(
        [sys.executable, script, "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
