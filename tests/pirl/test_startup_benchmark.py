"""``benchmarks/pirl_startup.py --smoke`` runs (issue 36: where start-up time goes)."""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("ADACOMPRESS_DATA", "/work/shared/data"))


def test_startup_benchmark_smoke(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (DATA / "imagenet-samples").is_dir():
        pytest.skip(f"no ImageNet samples under {DATA} (set ADACOMPRESS_DATA)")
    script = ROOT / "benchmarks" / "pirl_startup.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--smoke", "--data", str(DATA)])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(script), run_name="__main__")
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "| open |" in out and "| cached |" in out and "decode / open:" in out
