"""A short fuzzing campaign from the service's own OpenAPI schema (the long one is
``benchmarks/fuzz_service.py``, its figures in docs/results.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_a_short_fuzzing_campaign_finds_no_failure(tmp_path: Path) -> None:
    """A real `adacompress serve`, a few hundred generated requests (valid and
    invalid, with and without the key): no 5xx, every error in the service's JSON
    shape, every answer as the schema says."""
    out = tmp_path / "fuzz.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "fuzz_service.py"),
            "--examples",
            "60",
            "--seed",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = json.loads(out.read_text())
    assert done.returncode == 0, report["failures"]
    assert report["counts"]["requests"] >= 240 and report["server_alive"]
    assert not any(key.startswith("failed") for key in report["counts"])
