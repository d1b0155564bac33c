"""src/pirl/README.md's ten-line example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.pirl.helpers import tiny_image

README = Path(__file__).resolve().parents[2] / "src" / "pirl" / "README.md"


def test_the_pirl_readme_example_trains_one_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    (tmp_path / "photos").mkdir()
    for i in range(48):
        tiny_image(i).save(tmp_path / "photos" / f"{i:02d}.png")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    loss = namespace["loss"]
    assert float(loss.detach()) > 0  # type: ignore[attr-defined]
    bank = namespace["criterion"].memory_bank.bank  # type: ignore[attr-defined]
    assert bank.shape == (48, 128)
