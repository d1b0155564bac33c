"""Every benchmark runs: ``--smoke`` (a handful of images, one repeat, tiny steps)
exits 0 (issue 32: benchmarks that cannot rot).

``tests/test_benchmarks_start.py`` checks that each script starts; this runs each
one end to end on tiny data, one subprocess each, sharing one answer cache that
starts empty (as in CI). Slow: about three minutes for the set on two cores.
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
    "benchmarks/research/night_photos.py": "night photos two research scripts share",
}
"""Scripts that are not benchmarks: nothing to smoke."""
ELSEWHERE = {
    "benchmarks/fuzz_untrusted.py": "tests/test_fuzz_untrusted.py",
    "benchmarks/pirl_gpu_smoke.py": "tests/pirl/test_gpu_smoke.py",
    "benchmarks/pirl_startup.py": "tests/pirl/test_startup_benchmark.py",
}
"""Benchmarks whose ``--smoke`` another test runs already (and checks more of)."""
BENCHMARKS = sorted(
    str(p.relative_to(ROOT))
    for p in (ROOT / "benchmarks").rglob("*.py")
    if str(p.relative_to(ROOT)) not in HELPERS
)


def test_benchmarks_are_found() -> None:
    assert "benchmarks/evaluate_agents.py" in BENCHMARKS
    assert all((ROOT / helper).is_file() for helper in HELPERS)


@pytest.mark.parametrize("script", BENCHMARKS)
def test_every_benchmark_has_a_smoke(script: str) -> None:
    """Fast: a new benchmark without ``--smoke`` fails here, before the slow run."""
    text = (ROOT / script).read_text()
    assert "add_smoke(" in text or '"--smoke"' in text, "see benchmarks/_common.py"


@pytest.mark.parametrize("script", sorted(ELSEWHERE))
def test_the_smokes_run_elsewhere_are_run_there(script: str) -> None:
    text = (ROOT / ELSEWHERE[script]).read_text()
    assert Path(script).name in text and "--smoke" in text


@pytest.mark.slow
@pytest.mark.parametrize("script", BENCHMARKS)
def test_smoke(script: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    if script in ELSEWHERE:
        pytest.skip(f"its smoke runs in {ELSEWHERE[script]}")
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
