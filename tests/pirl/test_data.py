from __future__ import annotations

import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile
from torch.utils.data import DataLoader

from basekit.images import ImageError
from pirl.data import (
    PLACEHOLDER_GREY,
    DataError,
    EpochBatchSampler,
    ImageDataset,
    ImageSource,
)
from pirl.transforms import EvalView
from tests.helpers import jpeg_bytes, photo, write_bad_inputs
from tests.pirl.helpers import tiny_image


def test_folder_and_zip_list_the_same_images(
    image_folder: Path, image_zip: Path
) -> None:
    folder = ImageSource(image_folder)
    archive = ImageSource(image_zip, under="train")
    assert len(folder) == len(archive) == 40
    assert folder.classes == archive.classes == ["a", "b"]
    assert folder.labels == archive.labels
    assert np.array_equal(np.asarray(folder.load(3)), np.asarray(archive.load(3)))


def test_dataset_returns_views_and_index_through_workers(image_zip: Path) -> None:
    dataset = ImageDataset(ImageSource(image_zip), EvalView(32))
    loader = DataLoader(dataset, batch_size=8, num_workers=2)
    seen = torch.cat([index for _, index in loader])
    assert sorted(seen.tolist()) == list(range(40))
    x, index = dataset[5]
    assert x.shape == (3, 32, 32) and index == 5


def test_bad_images_are_skipped_with_a_reason(
    tmp_path: Path, image_folder: Path
) -> None:
    expected = write_bad_inputs(image_folder / "bad")
    del expected["truncated.jpg"]  # its header is sound: indexed, grey when read
    (image_folder / "README.txt").write_text("not an image, ignored")
    source = ImageSource(image_folder)
    assert len(source) == 41 and "bad/truncated.jpg" in source.names
    reasons = {Path(s.name).name: s.reason for s in source.skipped}
    assert set(reasons) == set(expected)
    for name, word in expected.items():
        assert word in reasons[name].lower(), (name, reasons[name])
        assert "\n" not in reasons[name]
    assert source.classes == ["a", "b", "bad"]  # truncated.jpg is indexed


def truncated_photo(folder: Path) -> Path:
    """A 160 x 120 JPEG cut in half: its header is whole, its pixels are not."""
    folder.mkdir(parents=True, exist_ok=True)
    data = jpeg_bytes(photo(1))
    path = folder / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("archived", [False, True], ids=["folder", "zip"])
def test_opening_reads_headers_and_a_truncated_image_fails_only_when_read(
    image_folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    archived: bool,
) -> None:
    truncated_photo(image_folder / "c")
    path = image_folder
    if archived:
        path = tmp_path / "images.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for file in sorted(image_folder.rglob("*.*")):
                archive.write(file, file.relative_to(image_folder).as_posix())
    source = ImageSource(path)  # a full decode would have skipped it
    assert len(source) == 41 and source.skipped == []
    index = source.names.index("c/truncated.jpg")
    assert source.sizes[index] == (160, 120)
    with pytest.raises(ImageError, match="truncated"):
        source.load(index)
    assert capsys.readouterr().err == ""
    dataset = ImageDataset(source, EvalView(32))
    for _ in range(2):  # the same grey every time, one warning line per process
        views, got = dataset[(index, 0, 0)]
        assert got == index and torch.equal(views, dataset[index][0])
    (warning,) = capsys.readouterr().err.splitlines()
    assert warning.startswith("pirl: warning: ") and "truncated.jpg" in warning
    assert "a grey image stands in for it" in warning
    assert source.load_or_grey(index).getpixel((5, 5)) == PLACEHOLDER_GREY
    assert list(source.unreadable) == ["c/truncated.jpg"]
    other, _ = dataset[index - 1 if index else index + 1]
    assert other.std() > 0  # the other images are decoded as ever


def test_opening_decodes_no_pixels(
    image_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decoding(self: Image.Image) -> None:
        raise AssertionError("pixels decoded while indexing")

    with monkeypatch.context() as patch:
        patch.setattr(Image.Image, "load", no_decoding)
        patch.setattr(ImageFile.ImageFile, "load", no_decoding)
        source = ImageSource(image_folder)
    assert len(source) == 40 and source.load(0).mode == "RGB"


def test_unusable_sources_give_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        ImageSource(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no usable image"):
        ImageSource(tmp_path / "empty")
    (tmp_path / "file.txt").write_text("hello")
    with pytest.raises(DataError, match="neither a folder nor a zip"):
        ImageSource(tmp_path / "file.txt")


def test_limit_is_a_seeded_subset(image_folder: Path) -> None:
    a = ImageSource(image_folder, limit=10, seed=3)
    b = ImageSource(image_folder, limit=10, seed=3)
    assert len(a) == 10 and a.names == b.names


def test_split_holds_out_a_seeded_disjoint_part(image_folder: Path) -> None:
    source = ImageSource(image_folder)
    rest, held = source.split(3, seed=1)
    assert len(held) == 3 and len(rest) == len(source) - 3
    assert set(rest.names).isdisjoint(held.names)
    assert sorted(rest.names + held.names) == sorted(source.names)
    assert held.names == source.split(3, seed=1)[1].names
    if source.labels is not None:
        assert [source.labels[source.names.index(n)] for n in held.names] == held.labels
    assert held.load(0).mode == "RGB"
    with pytest.raises(DataError, match="cannot hold out"):
        source.split(len(source))


def test_sampler_slices_global_batches_across_processes() -> None:
    one = list(EpochBatchSampler(50, 8, seed=1, epoch=2, world=1))
    two = [
        list(EpochBatchSampler(50, 4, seed=1, epoch=2, rank=r, world=2)) for r in (0, 1)
    ]
    assert len(one) == 6 and len(two[0]) == len(two[1]) == 6
    for step, batch in enumerate(one):
        assert batch == two[0][step] + two[1][step]
    resumed = list(EpochBatchSampler(50, 8, seed=1, epoch=2, start=4))
    assert resumed == one[4:]
    other_epoch = list(EpochBatchSampler(50, 8, seed=1, epoch=3))
    assert other_epoch != one


def data_root() -> Path:
    return Path(os.environ.get("ADACOMPRESS_DATA", "../shared/data"))


def test_cifar10_zip_reads_directly() -> None:
    path = data_root() / "cifar10" / "cifar10-jpeg.zip"
    if not path.exists():
        pytest.skip(f"CIFAR-10 zip not found at {path} (set ADACOMPRESS_DATA)")
    test = ImageSource(path, under="test", limit=200)
    assert len(test) == 200 and len(test.classes) == 10
    assert test.load(0).size == (32, 32)


def test_zip_members_are_checked_by_declared_size_before_reading(
    tmp_path: Path,
) -> None:
    import zipfile

    from tests.pirl.helpers import tiny_image

    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for i in range(3):
            tiny_image(i).save(tmp_path / f"{i}.png")
            archive.write(tmp_path / f"{i}.png", f"{i}.png")
        archive.writestr("bomb.png", b"\x00" * 3_000_000)  # inflates to 3 MB
    source = ImageSource(path, max_bytes=1_000_000)
    assert len(source) == 3
    assert [s.name for s in source.skipped] == ["bomb.png"]
    assert "zip member too large: 3,000,000 bytes declared" in source.skipped[0].reason


def index_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("index-*.json"))


def test_the_index_is_cached_and_a_later_open_reads_no_image(
    image_folder: Path, decoded_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_bad_inputs(image_folder / "bad")
    first = ImageSource(image_folder)
    (cached,) = index_files(decoded_cache)

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("an image was opened")

    with monkeypatch.context() as patch:
        patch.setattr(Image, "open", no_reading)
        again = ImageSource(image_folder)
    assert again.names == first.names and again.sizes == first.sizes
    assert again.skipped == first.skipped and len(again.skipped) == 4
    assert again.load(0).mode == "RGB"
    # a changed file (size or modification time) means a new index
    tiny_image(999, size=40).save(image_folder / first.names[0])
    changed = ImageSource(image_folder)
    assert changed.sizes[0] == (40, 40) and len(index_files(decoded_cache)) == 2
    # without the cache nothing is written
    ImageSource(image_folder, limit=5, cache_index=False)
    assert len(index_files(decoded_cache)) == 2


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"key": "other", "entries": []}',
        "entries",  # the right key, entries replaced below
        "padded",  # the right index, but larger than any index of 40 images
    ],
)
def test_a_damaged_index_cache_is_untrusted_and_made_again(
    image_folder: Path, decoded_cache: Path, damage: bytes | str
) -> None:
    expected = ImageSource(image_folder)
    (cached,) = index_files(decoded_cache)
    if damage == "entries":
        data = json.loads(cached.read_text())
        data["entries"][0] = [10**6, 10**6]  # over the pixel limit
        data["entries"][1] = {"width": 3}
        cached.write_text(json.dumps(data))
    elif damage == "padded":
        cached.write_text(cached.read_text() + " " * 200_000)
    else:
        assert isinstance(damage, bytes)
        cached.write_bytes(damage)
    source = ImageSource(image_folder)
    assert source.names == expected.names and source.sizes == expected.sizes
    assert json.loads(cached.read_text())["entries"][0] == list(expected.sizes[0])
    assert cached.stat().st_size < 100_000


def test_an_unwritable_cache_folder_means_no_cache(
    image_folder: Path, tmp_path: Path
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    source = ImageSource(image_folder, cache_dir=blocked / "cache")
    assert len(source) == 40


def _open_and_report(folder: Path, cache: Path, out: Path) -> None:
    source = ImageSource(folder, cache_dir=cache)
    out.write_text(json.dumps([source.names, source.sizes]))


def test_ranks_opening_at_once_index_once(
    image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing

    calls = tmp_path / "calls"
    index = ImageSource._index

    def counted(self: ImageSource, names: list[str]) -> list[object]:
        with calls.open("a") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(0.5)  # without the lock, the other rank would index meanwhile
        return index(self, names)  # type: ignore[return-value]

    monkeypatch.setattr(ImageSource, "_index", counted)
    context = multiprocessing.get_context("fork")
    ranks = [
        context.Process(
            target=_open_and_report,
            args=(image_folder, tmp_path / "cache", tmp_path / f"rank{r}.json"),
        )
        for r in range(2)
    ]
    for rank in ranks:
        rank.start()
    for rank in ranks:
        rank.join(60)
        assert rank.exitcode == 0
    assert len(calls.read_text().splitlines()) == 1  # the other rank read it
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert results[0] == results[1] and len(results[0][0]) == 40
