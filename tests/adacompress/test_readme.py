"""README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adacompress.core.datasets import builtin_photos

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_python_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has a python example"
    photos = {p.name: p for p in builtin_photos()}
    (tmp_path / "cat.jpg").write_bytes(photos["chelsea.png"].read_bytes())
    (tmp_path / "coffee.jpg").write_bytes(photos["coffee.png"].read_bytes())
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102
    upload = namespace["upload"]
    assert upload.nbytes < (tmp_path / "cat.jpg").stat().st_size  # type: ignore[attr-defined]
