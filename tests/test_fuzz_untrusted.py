"""A short fuzzing campaign over the readers of untrusted files (the long one is
``benchmarks/fuzz_untrusted.py --examples ...``, its figures in docs/security.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_short_campaign_over_the_untrusted_files_finds_nothing(
    tmp_path: Path,
) -> None:
    """Every target (card, agent file, graph, agent folder, manifest, answer
    cache, run state): each generated input gives a result or a one-line
    ValueError."""
    out = tmp_path / "fuzz.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fuzz_untrusted.py"), "--smoke"]
        + ["--seed", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    reports = json.loads(out.read_text())
    assert done.returncode == 0, [r.get("failures") for r in reports]
    assert len(reports) == 7
    for report in reports:
        assert report["examples"] >= 10 and report["other"] == 0, report
        assert report["results"] + report["errors"] == report["examples"]
