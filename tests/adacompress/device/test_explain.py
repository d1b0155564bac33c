"""``adacompress explain``: the occlusion map says what the choice rests on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adacompress.cli import main
from adacompress.core.datasets import builtin_photos
from adacompress.device.compressor import Compressor
from adacompress.device.explain import explain


@pytest.mark.parametrize("actions", ["scale-quality", "paper"])  # survival, alpha-DQN
def test_the_map_covers_the_image_and_explains_the_choice(actions: str) -> None:
    compressor = Compressor.load("lite0", actions=actions)
    image = compressor.decode(builtin_photos()[3]).resize((160, 120))
    found = explain(compressor, image, grid=4)
    assert found.heat.shape == (120, 160)
    assert np.isfinite(found.heat).all() and np.abs(found.heat).max() > 0
    assert found.chosen == compressor.compress(image).action
    assert found.runner_up != found.chosen and found.preference >= 0
    with pytest.raises(ValueError, match="grid"):
        explain(compressor, image, grid=1)


def test_explain_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "why.png"
    args = [
        "--quiet",
        "explain",
        str(builtin_photos()[3]),
        "--out",
        str(out),
        "--grid",
        "4",
    ]
    assert main(args) == 0
    assert Image.open(out).size[0] > 500
