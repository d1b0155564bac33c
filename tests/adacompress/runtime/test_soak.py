"""A short soak (the long one is ``benchmarks/soak.py``, its figures in
docs/results.md): a run against a faulty service, killed at random moments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_a_killed_run_against_a_faulty_service_ends_as_a_clean_one(
    tmp_path: Path,
) -> None:
    """429s, 503s, dropped connections and slow answers, two `kill -9`s: every
    photo recorded once, each record as a fault-free run's."""
    out = tmp_path / "soak.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "soak.py"),
            "--photos",
            "40",
            "--kills",
            "2",
            "--kill-after",
            "2",
            "5",
            "--json",
            str(out),
        ],
        check=False,
        capture_output=True,
        timeout=900,
    )
    report = json.loads(out.read_text())
    assert report["run_process"]["kills"] >= 1, report
    assert report["lost"] == report["sent_twice"] == 0, report
    assert report["differing_from_reference"] == 0, report
