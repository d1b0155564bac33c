"""SIGTERM: one line and exit status 143, cleanups run as on Ctrl-C."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import signal, sys
from adacompress.cli import compress
from adacompress.cli.main import main

def execute(args):
    try:
        signal.raise_signal(signal.SIGTERM)
    finally:
        print("cleaned up")
    return 0

compress.execute = execute
sys.exit(main(["compress", "a.jpg", "--out", "o"]))
"""


def test_sigterm_is_one_line_and_143(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 143
    assert done.stderr == "adacompress: terminated\n"
    assert done.stdout == "cleaned up\n"


def test_the_handler_is_put_back() -> None:
    import signal

    from adacompress.cli.termination import sigterm_raises

    before = signal.getsignal(signal.SIGTERM)
    with sigterm_raises():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
