"""The decoded-images cache: reuse, rebuild on a changed source, damage, kills."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import pirl.tensor_data as tensor_data
from pirl.batch_transforms import BatchViews
from pirl.data import EpochBatchSampler, ImageSource
from pirl.tensor_data import HEADER_BYTES, DecodedDataset, DecodedImages
from pirl.transforms import ImageView, Jigsaw, Views
from tests.helpers import jpeg_bytes, photo
from tests.pirl.helpers import tiny_image


def cached_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.u8"))


def test_decodes_once_then_reuses(image_zip: Path, decoded_cache: Path) -> None:
    source = ImageSource(image_zip, under="train")
    images = DecodedImages.open(source, side=32)
    (path,) = cached_files(decoded_cache)
    assert path.stat().st_size == HEADER_BYTES + 40 * 32 * 32 * 3
    for i in (0, 17, 39):
        assert np.array_equal(images.batch([i])[0].numpy(), np.asarray(source.load(i)))
    before = path.stat()
    again = DecodedImages.open(ImageSource(image_zip, under="train"), side=32)
    assert path.stat().st_ino == before.st_ino  # not rewritten
    assert torch.equal(again.batch([3, 1]), images.batch([3, 1]))
    assert [p.name for p in decoded_cache.iterdir() if p.name.startswith(".")] == []


def test_other_images_or_sides_get_their_own_file(
    image_folder: Path, decoded_cache: Path
) -> None:
    source = ImageSource(image_folder)
    rest, held = source.split(10)
    DecodedImages.open(source, side=32)
    DecodedImages.open(rest, side=32)
    small = DecodedImages.open(held, side=16)
    assert len(cached_files(decoded_cache)) == 3
    expected = np.asarray(held.load(2).resize((16, 16), resample=2))
    assert np.array_equal(small.batch([2])[0].numpy(), expected)


def test_a_changed_source_is_decoded_again(
    image_folder: Path, tmp_path: Path, decoded_cache: Path
) -> None:
    first = DecodedImages.open(ImageSource(image_folder), side=32)
    name = ImageSource(image_folder).names[4]
    old = first.batch([4]).clone()
    tiny_image(999).save(image_folder / name)  # same name, new picture
    stat = (image_folder / name).stat()
    os.utime(image_folder / name, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    source = ImageSource(image_folder)
    second = DecodedImages.open(source, side=32)
    assert len(cached_files(decoded_cache)) == 1  # rebuilt in place
    assert not torch.equal(second.batch([4]), old)
    assert np.array_equal(second.batch([4])[0].numpy(), np.asarray(source.load(4)))
    # a zip is known by its size and modification time
    archive = tmp_path / "one.zip"
    for seed in (1, 2):
        with zipfile.ZipFile(archive, "w") as handle:
            tiny_image(seed).save(tmp_path / "x.png")
            handle.write(tmp_path / "x.png", "x.png")
        os.utime(archive, ns=(seed * 10**9, seed * 10**9))
        image = DecodedImages.open(ImageSource(archive), side=32).batch([0])[0]
        assert np.array_equal(image.numpy(), np.asarray(tiny_image(seed)))


@pytest.mark.parametrize("damage", ["truncated", "flipped pixel", "header", "empty"])
def test_a_damaged_cache_is_rebuilt_with_one_line(
    image_folder: Path,
    decoded_cache: Path,
    damage: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = ImageSource(image_folder)
    good = DecodedImages.open(source, side=32).batch(list(range(40))).clone()
    (path,) = cached_files(decoded_cache)
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "flipped pixel":
        data[HEADER_BYTES + 1234] ^= 0xFF
    elif damage == "header":
        data[30:40] = b"\xff" * 10
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    rebuilt = DecodedImages.open(source, side=32)
    assert torch.equal(rebuilt.batch(list(range(40))), good)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "decoding again" in err and "Traceback" not in err


def test_a_killed_build_leaves_no_file(
    image_folder: Path, decoded_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = ImageSource(image_folder)
    real = tensor_data.center_square
    calls = {"n": 0}

    def killed(*args: object) -> object:
        calls["n"] += 1
        if calls["n"] == 20:
            raise KeyboardInterrupt
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(tensor_data, "center_square", killed)
    with pytest.raises(KeyboardInterrupt):
        DecodedImages.open(source, side=32)
    assert cached_files(decoded_cache) == []
    assert [p.name for p in decoded_cache.iterdir() if p.suffix == ".tmp"] == []
    monkeypatch.setattr(tensor_data, "center_square", real)
    assert len(DecodedImages.open(source, side=32)) == 40
    # SIGKILL runs no cleanup: the next open removes the orphaned temp file
    (path,) = cached_files(decoded_cache)
    orphan = decoded_cache / f".{path.name}.abc123.tmp"
    orphan.write_bytes(b"half")
    DecodedImages.open(source, side=32)
    assert not orphan.exists() and path.exists()


def test_odd_sizes_are_centre_cropped(tmp_path: Path) -> None:
    (tmp_path / "odd").mkdir()
    photo(0, (160, 120)).save(tmp_path / "odd" / "wide.png")
    photo(1, (50, 90)).save(tmp_path / "odd" / "tall.png")
    images = DecodedImages.open(ImageSource(tmp_path / "odd"), side=24)
    assert images.batch([0, 1]).shape == (2, 24, 24, 3)


def test_dataset_batches_match_in_worker_processes(image_zip: Path) -> None:
    images = DecodedImages.open(ImageSource(image_zip), side=32)
    assert len(pickle.dumps(images)) < 2000  # the pixels are mapped, not copied
    dataset = DecodedDataset(images, BatchViews(Views(ImageView(32), Jigsaw(30, 8))))
    sampler = EpochBatchSampler(40, 8, seed=1, epoch=2)
    loaded = {
        workers: list(
            DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=workers)
        )
        for workers in (0, 1)
    }
    assert len(loaded[0]) == 5
    for (views_a, idx_a), (views_b, idx_b) in zip(loaded[0], loaded[1], strict=True):
        assert torch.equal(idx_a, idx_b) and torch.equal(views_a[0], views_b[0])
        assert torch.equal(views_a[1][0], views_b[1][0])
    first_keys = next(iter(sampler))
    assert loaded[0][0][1].tolist() == [k[0] for k in first_keys]


def test_an_image_whose_pixels_fail_is_stored_grey_and_counted(
    image_folder: Path, decoded_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = jpeg_bytes(photo(1))  # 160 x 120: the first half holds the header
    (image_folder / "a" / "cut.jpg").write_bytes(data[: len(data) // 2])
    source = ImageSource(image_folder)
    assert len(source) == 41  # the index, and so the memory bank, keeps it
    index = source.names.index("a/cut.jpg")
    images = DecodedImages.open(source, side=32)
    assert (images.batch([index]) == 128).all()
    assert images.batch([index + 1]).float().std() > 0
    (warning,) = capsys.readouterr().err.splitlines()
    assert "a/cut.jpg: corrupt or truncated image" in warning
    (path,) = cached_files(decoded_cache)
    header = tensor_data.read_header(path)
    assert header["unreadable"] == ["a/cut.jpg"] and header["n_unreadable"] == 1
    DecodedImages.open(ImageSource(image_folder), side=32)  # reused: one line again
    (again,) = capsys.readouterr().err.splitlines()
    assert "1 image(s) could not be decoded and are grey" in again
    assert again.endswith("a/cut.jpg")
