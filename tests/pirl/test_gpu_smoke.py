"""benchmarks/pirl_gpu_smoke.py's CPU fallback runs its two steps end to end."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_smoke_script_runs_on_the_cpu(tmp_path: Path) -> None:
    script = runpy.run_path(str(ROOT / "benchmarks" / "pirl_gpu_smoke.py"))
    report = tmp_path / "smoke.json"
    assert script["main"](["--smoke", "--threads", "1", "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["steps"] == 2 and result["images_per_s"] > 0
