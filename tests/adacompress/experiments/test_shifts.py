"""Shifted photos (issue 34's streams): each shift changes the photo the way it says,
gives the same bytes every time, and never touches the input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adacompress.experiments.shifts import SHIFTS, make_shifted_folder


def photo(path: Path, seed: int = 0, size: tuple[int, int] = (320, 240)) -> Path:
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, size[0])[None, :, None] * np.ones((size[1], 1, 3))
    x = x + rng.normal(0, 20, x.shape)
    Image.fromarray(np.clip(x, 0, 255).astype(np.uint8)).save(path, quality=95)
    return path


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


@pytest.mark.parametrize("shift", sorted(SHIFTS))
def test_a_shift_is_made_once_the_same_every_time_and_leaves_the_input(
    shift: str, tmp_path: Path
) -> None:
    source = photo(tmp_path / "a.jpg")
    before = source.read_bytes()
    (made,), skipped = make_shifted_folder([source], tmp_path / "one", shift)
    (again,), _ = make_shifted_folder([source], tmp_path / "two", shift)
    assert not skipped and source.read_bytes() == before
    assert made.read_bytes() == again.read_bytes()
    assert made.parent.parent == tmp_path / "one"


def test_each_shift_does_what_it_says(tmp_path: Path) -> None:
    source = photo(tmp_path / "a.jpg")
    original = pixels(source)
    made = {
        name: pixels(make_shifted_folder([source], tmp_path, name)[0][0])
        for name in ("dark", "noisy", "blurred", "small", "grayscale")
    }
    assert made["dark"].mean() < 0.5 * original.mean()
    assert made["small"].shape[:2] == (160, 213)
    gray = made["grayscale"]
    assert np.abs(gray[..., 0] - gray[..., 2]).max() <= 2  # JPEG rounding only
    roughness = {k: np.abs(np.diff(v, axis=1)).mean() for k, v in made.items()}
    assert roughness["blurred"] < np.abs(np.diff(original, axis=1)).mean() / 2
    assert roughness["noisy"] > np.abs(np.diff(original, axis=1)).mean()


def test_mixed_draws_several_shifts_by_name(tmp_path: Path) -> None:
    sources = [photo(tmp_path / f"p{i}.jpg", seed=i) for i in range(12)]
    made, _ = make_shifted_folder(sources, tmp_path / "out", "mixed")
    shapes = {pixels(p).shape for p in made}
    assert len(made) == 12 and len(shapes) >= 2  # some were made small


def test_unreadable_photos_are_skipped_with_a_reason_and_unknown_shifts_refused(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a photo")
    made, skipped = make_shifted_folder([bad], tmp_path / "out", "noisy")
    assert made == [] and skipped[0][0] == bad and skipped[0][1]
    with pytest.raises(ValueError, match="unknown shift"):
        make_shifted_folder([bad], tmp_path / "out", "sepia")
