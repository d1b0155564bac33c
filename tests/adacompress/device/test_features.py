"""State feature extractors: ``stats``, ``pirl:PATH`` and ``random``."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageFilter

from adacompress.core.efficientnet import model_view
from adacompress.core.engine import ENGINE_ENV, GRAPHS_ENV
from adacompress.device.features import get_extractor
from adacompress.device.features.lite import blurred_probes
from adacompress.device.features.pirl import PirlFeatures
from adacompress.device.features.stats import STAT_NAMES, image_statistics
from pirl.cli import main as pirl_main
from pirl.model import PIRLModel
from pirl.resnet import resnet
from pirl.train import TrainSettings
from tests.helpers import photo


def stat(image: Image.Image, name: str) -> float:
    return float(image_statistics(image)[STAT_NAMES.index(name)])


def noise(seed: int = 0, size: tuple[int, int] = (200, 150)) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


# --- stats ----------------------------------------------------------------------------


def test_probes_blurred_from_the_view_keep_what_a_downscale_keeps() -> None:
    """A probe keeps ``min(1, scale * side / 224)`` of the view's detail: a large
    photo keeps all of it at 0.5, a small one loses more at every smaller scale."""
    scales = (0.5, 0.35, 0.25)
    view = model_view(noise(0, (800, 600)), 224)
    large = blurred_probes(view, (800, 600), scales)
    assert large[0] is view and large[1] is not view  # 0.5 x 525 px > 224 > 0.35 x 525
    small = blurred_probes(view, (400, 300), scales)
    detail = [stat(probe, "gradient") for probe in [view, *small]]
    assert detail == sorted(detail, reverse=True) and detail[-1] < detail[0] / 2
    assert all(probe.size == view.size for probe in small)


def test_stats_have_the_documented_length_and_are_finite() -> None:
    extractor = get_extractor("stats")
    images = [photo(0), photo(1, (640, 480)), noise()]
    features = extractor.extract(images)
    assert extractor.name == "stats"
    assert extractor.dim == len(STAT_NAMES) == 10
    assert features.shape == (3, len(STAT_NAMES)) and features.dtype == np.float32
    assert np.isfinite(features).all()
    np.testing.assert_array_equal(features[0], image_statistics(images[0]))


def test_stats_see_detail_brightness_and_colour() -> None:
    busy = noise()
    smooth = busy.filter(ImageFilter.GaussianBlur(6))
    for name in ("bpp_probe", "bpp_probe_small", "gradient", "dct_high"):
        assert stat(smooth, name) < stat(busy, name), name
    picture = photo(3)
    darker = ImageEnhance.Brightness(picture).enhance(0.5)
    assert stat(darker, "brightness") < stat(picture, "brightness")
    flatter = ImageEnhance.Contrast(picture).enhance(0.3)
    assert stat(flatter, "contrast") < stat(picture, "contrast")
    gray = picture.convert("L").convert("RGB")
    assert stat(picture, "colourfulness") > 0.05
    assert stat(gray, "colourfulness") == pytest.approx(0.0, abs=1e-6)
    assert stat(gray, "saturation") == pytest.approx(0.0, abs=1e-6)
    wide = photo(0, (400, 100))
    assert stat(wide, "log_aspect") == pytest.approx(np.log(4.0), rel=1e-5)
    assert stat(wide, "log_pixels") == pytest.approx(np.log(40_000), rel=1e-5)


def test_stats_take_any_size_and_mode() -> None:
    base = photo(2)
    rgba = base.convert("RGBA")
    rgba.putalpha(100)
    gray16 = Image.fromarray(
        (np.asarray(base.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    )
    images = [
        Image.new("RGB", (1, 1), (10, 20, 30)),
        Image.new("RGB", (3, 700), (200, 0, 0)),
        noise(1, (1500, 40)),
        base.convert("L"),
        base.convert("P"),
        rgba,
        gray16,
        Image.new("RGB", (64, 64), (128, 128, 128)),
    ]
    features = get_extractor("stats").extract(images)
    assert features.shape == (len(images), len(STAT_NAMES))
    assert np.isfinite(features).all()
    flat = dict(zip(STAT_NAMES, features[-1].tolist(), strict=True))
    assert flat["gradient"] == flat["dct_high"] == flat["contrast"] == 0.0


# --- pirl:PATH and random -------------------------------------------------------------


def write_export(folder: Path, *, seed: int, name: str = "encoder.pt") -> Path:
    """A tiny PIRL model saved the way ``pirl train`` saves it, then ``pirl export``."""
    settings = TrainSettings(width=8, cifar_stem=True, image_size=16, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = PIRLModel(resnet(settings.arch, width=settings.width, cifar_stem=True))
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = folder / "checkpoint.pt"
    state = {"epoch": 1, "step_in_epoch": 0, "global_step": 3, "elapsed": 1.0}
    torch.save(
        {"model": model.state_dict(), "state": state, "settings": asdict(settings)},
        checkpoint,
    )
    out = folder / name
    assert pirl_main(["--threads", "1", "export", str(checkpoint), str(out)]) == 0
    return out


def test_pirl_export_round_trip(tmp_path: Path) -> None:
    path = write_export(tmp_path / "a", seed=0)
    extractor = get_extractor(f"pirl:{path}")
    assert extractor.dim == 64  # resnet18 width 8: 8 * 8 channels in the last stage
    assert extractor.image_size == 16  # what the checkpoint was trained at
    assert extractor.name.startswith("pirl:encoder-")
    assert len(extractor.name) == len("pirl:encoder-") + 10
    images = [photo(0), photo(1, (90, 200)), noise(2, (20, 20)), photo(4).convert("L")]
    features = extractor.extract(images)
    assert features.shape == (4, 64) and features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(features, extractor.extract(images))
    again = get_extractor(f"pirl:{path}")
    assert again.name == extractor.name
    np.testing.assert_array_equal(features, again.extract(images))
    # The name follows the file's content, not its place.
    copy = tmp_path / "elsewhere" / "encoder.pt"
    copy.parent.mkdir()
    shutil.copy(path, copy)
    assert get_extractor(f"pirl:{copy}").name == extractor.name
    other = write_export(tmp_path / "b", seed=1)
    changed = get_extractor(f"pirl:{other}")
    assert changed.name != extractor.name
    assert not np.allclose(changed.extract(images), features)


def test_random_like_an_export_is_its_untrained_twin(tmp_path: Path) -> None:
    path = write_export(tmp_path / "a", seed=1)  # seed 0 would be the control itself
    trained = get_extractor(f"pirl:{path}")
    control = get_extractor(f"random:{path}")
    assert (control.dim, control.image_size) == (trained.dim, trained.image_size)
    assert control.name == "random:" + trained.name.removeprefix("pirl:")
    images = [photo(0), noise(2, (20, 20))]
    assert not np.allclose(control.extract(images), trained.extract(images))
    np.testing.assert_array_equal(
        control.extract(images), get_extractor(f"random:{path}").extract(images)
    )
    with pytest.raises(ValueError, match="not found"):
        get_extractor("random:/missing.pt")


def test_pirl_bad_paths_are_one_line_value_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found") as missing:
        get_extractor("pirl:/missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError) as unreadable:
        get_extractor(f"pirl:{junk}")
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(ValueError, match="not a pirl") as foreign:
        get_extractor(f"pirl:{plain}")
    for err in (missing, unreadable, foreign):
        assert "\n" not in str(err.value)


def test_random_is_deterministic_and_leaves_the_global_rng_alone() -> None:
    before = torch.random.get_rng_state()
    first, second = get_extractor("random"), get_extractor("random")
    assert torch.equal(torch.random.get_rng_state(), before)
    assert first.name == "random"
    assert first.dim == 32 * 8  # resnet18 width 32: last stage 8x the first
    images = [photo(5), noise(6, (50, 40))]
    features = first.extract(images)
    np.testing.assert_array_equal(features, second.extract(images))
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)


def test_pirl_encoders_run_on_onnx_runtime_as_in_eager_pytorch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GRAPHS_ENV, str(tmp_path / "graphs"))
    images = [photo(5), noise(6, (50, 40))]
    onnx = get_extractor("random")
    other = PirlFeatures.from_random(7)  # other weights: another graph
    monkeypatch.setenv(ENGINE_ENV, "torch")
    eager = get_extractor("random")
    np.testing.assert_allclose(onnx.extract(images), eager.extract(images), atol=1e-5)
    assert onnx.cache_name != eager.cache_name and onnx.name == eager.name
    assert not np.allclose(other.extract(images), onnx.extract(images))
    assert len(list((tmp_path / "graphs").glob("pirl-*.onnx"))) == 2


def test_unknown_names_raise_a_one_line_value_error() -> None:
    with pytest.raises(ValueError, match="unknown feature extractor") as err:
        get_extractor("nope")
    message = str(err.value)
    assert "\n" not in message
    assert "pirl:PATH" in message and "stats" in message and "random" in message
