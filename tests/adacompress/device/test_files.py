"""``adacompress compress``: uploads and manifest, bad files listed, reruns redo
nothing, outputs equal to the Python API's; colliding names, inputs as outputs,
a folder named like a shipped agent, a damaged manifest, Pillow's warnings."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from adacompress.cli import main
from adacompress.core.datasets import builtin_photos
from adacompress.device.compressor import Compressor
from adacompress.device.manifest import MANIFEST
from adacompress.device.zoo import shipped
from tests.helpers import write_bad_inputs


def make_folder(root: Path) -> dict[str, str]:
    (root / "cats").mkdir(parents=True)
    for photo in builtin_photos()[:3]:
        (root / "cats" / photo.name).write_bytes(photo.read_bytes())
    (root / "top.png").write_bytes(builtin_photos()[4].read_bytes())
    return write_bad_inputs(root / "bad")


def test_compress_writes_uploads_and_a_manifest_then_reruns_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, out = tmp_path / "in", tmp_path / "out"
    bad = make_folder(source)
    assert main(["--quiet", "compress", str(source), "--out", str(out)]) == 1
    lines = [json.loads(x) for x in (out / MANIFEST).read_text().splitlines()]
    assert len(lines) == 4 + len(bad)  # one line per input
    done = [e for e in lines if e["skipped"] is None]
    skipped = {Path(e["source"]).name: e["skipped"] for e in lines if e["skipped"]}
    assert set(skipped) == set(bad)
    for name, word in bad.items():
        assert word in skipped[name] and "\n" not in skipped[name]
    compressor = Compressor.load("lite0")
    for entry in done:
        written = out / entry["output"]
        assert written.suffix == ".jpg"
        assert Image.open(io.BytesIO(written.read_bytes())).size == (
            entry["width"],
            entry["height"],
        )
        upload = compressor.compress(entry["source"])
        assert written.read_bytes() == upload.data
        assert entry["action"] == upload.action.key and entry["bytes"] == upload.nbytes
    outputs = {e["output"] for e in done}
    assert outputs == {
        "cats/astronaut.jpg",
        "cats/brick.jpg",
        "cats/camera.jpg",
        "top.jpg",
    }
    capsys.readouterr()

    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")}
    assert main(["--quiet", "compress", str(source), "--out", str(out)]) == 1
    assert "0 written, 4 already done" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")} == stamps
    # A changed input is done again; the rest stays.
    (source / "top.png").write_bytes(builtin_photos()[5].read_bytes())
    assert main(["--quiet", "compress", str(source), "--out", str(out)]) == 1
    assert "1 written, 3 already done" in capsys.readouterr().out
    # Other limits: everything is done again.
    args = ["--quiet", "compress", str(source), "--out", str(out), "--formats", "jpeg"]
    assert main(args) == 1
    assert "4 written, 0 already done" in capsys.readouterr().out


def test_a_damaged_manifest_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).write_text("{not json\n")
    photo = builtin_photos()[0]
    assert main(["--quiet", "compress", str(photo), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "damaged manifest" in err and str(out / MANIFEST) in err
    assert "\n" not in err


def run(*args: str | Path) -> int:
    return main(["--quiet", "compress", *map(str, args)])


def test_colliding_names_give_distinct_outputs_the_manifest_describes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # compress d1 d2 d3 --out o, a.jpg in each: d2's upload was lost
    folders = [tmp_path / f"d{i}" for i in (1, 2, 3)]
    for folder, photo in zip(folders, builtin_photos(), strict=False):
        folder.mkdir()
        (folder / "a.jpg").write_bytes(photo.read_bytes())
    out = tmp_path / "o"
    assert run(*folders, "--out", out) == 0
    entries = [json.loads(x) for x in (out / MANIFEST).read_text().splitlines()]
    assert len({e["output"] for e in entries}) == 3
    compressor = Compressor.load("lite0")
    for entry in entries:
        upload = compressor.compress(entry["source"]).data
        assert (out / entry["output"]).read_bytes() == upload
        assert entry["bytes"] == len(upload)
    capsys.readouterr()
    assert run(*folders, "--out", out) == 0
    assert "0 written, 3 already done" in capsys.readouterr().out


def test_an_input_is_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    original = builtin_photos()[0].read_bytes()
    (photos / "photo.jpg").write_bytes(original)
    monkeypatch.chdir(photos)
    for args in (
        ["photo.jpg", "--out", "."],
        [".", "--out", "."],
        [".", "--out", "up"],
    ):
        capsys.readouterr()
        assert run(*args) == 2
        err = capsys.readouterr().err
        assert err.startswith("adacompress: error:") and err.count("\n") == 1
    assert (photos / "photo.jpg").read_bytes() == original
    assert os.listdir(photos) == ["photo.jpg"]


def test_a_folder_named_like_a_shipped_agent_does_not_replace_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lite0").mkdir()
    (tmp_path / "lite0" / "card.json").write_text("{}")
    photo = builtin_photos()[0]
    assert run(photo, "--out", "up") == 0
    (entry,) = [
        json.loads(x) for x in (tmp_path / "up" / MANIFEST).read_text().splitlines()
    ]
    assert entry["agent"] == "lite0-scale-quality"
    shipped_file = shipped("lite0-scale-quality").file
    assert (
        entry["agent_sha256"] == hashlib.sha256(shipped_file.read_bytes()).hexdigest()
    )
    capsys.readouterr()
    assert run(photo, "--out", "up2", "--agent", "./lite0") == 2  # asked for: read
    assert run(photo, "--out", "up2", "--agent", "nonesuch") == 2
    (tmp_path / "nonesuch").mkdir()
    assert run(photo, "--out", "up2", "--agent", "nonesuch") == 2
    err = capsys.readouterr().err.splitlines()
    assert "give it as a path: ./nonesuch" in err[-1]


def test_a_photo_under_the_minimum_side_is_skipped_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An 8x8 photo with --min-side 80 was written as an 8x8 upload, exit 0
    (issue 32): the service would refuse it, and --help says none is made."""
    Image.new("RGB", (8, 8), (200, 30, 30)).save(tmp_path / "tiny8.png")
    out = tmp_path / "out"
    assert (
        run(
            tmp_path / "tiny8.png",
            builtin_photos()[0],
            "--out",
            out,
            "--min-side",
            "80",
        )
        == 1
    )
    entries = [json.loads(x) for x in (out / MANIFEST).read_text().splitlines()]
    tiny = next(e for e in entries if e["source"].endswith("tiny8.png"))
    assert (
        tiny["output"] is None
        and "under the service's minimum of 80 px" in tiny["skipped"]
    )
    photo = next(e for e in entries if e is not tiny)
    assert min(photo["width"], photo["height"]) >= 80
    shown = capsys.readouterr()
    assert "tiny8.png" in shown.out + shown.err
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".jpg") == [
        Path(photo["output"]).name
    ]


def test_damaged_manifest_lines_are_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo, out = builtin_photos()[0], tmp_path / "out"
    assert run(photo, "--out", out) == 0
    with open(out / MANIFEST, "a") as handle:
        handle.write('{"source": {"a": 1}}\n{"source": "x.jpg", "bytes": "x"}\n')
        handle.write('{"source": "y.jpg", "output": "/etc/passwd"}\n')
    capsys.readouterr()
    assert run(photo, "--out", out) == 0
    captured = capsys.readouterr()
    assert "1 already done" in captured.out
    (line,) = captured.err.splitlines()
    assert line.startswith("adacompress: warning: 3 damaged lines")
    assert len((out / MANIFEST).read_text().splitlines()) == 1


def test_a_fifo_manifest_is_one_line_not_a_hang(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / MANIFEST)
    assert run(builtin_photos()[0], "--out", out) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_max_pixels_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    for value in ("-1", "0", "x"):
        with pytest.raises(SystemExit) as stop:
            run("a.jpg", "--out", "o", "--max-pixels", value)
        assert stop.value.code == 2
        assert "positive whole number" in capsys.readouterr().err


def test_pillow_warnings_stay_off_stderr(tmp_path: Path) -> None:
    # an EXIF tag whose data lies past the end: Pillow warns as it reads it
    tiff = b"II*\x00" + struct.pack("<IHHHII", 8, 1, 0x010E, 2, 100, 1000)
    buffer = io.BytesIO()
    Image.open(builtin_photos()[0]).save(
        buffer, "JPEG", exif=b"Exif\x00\x00" + tiff + b"\0\0\0\0"
    )
    (tmp_path / "exif.jpg").write_bytes(buffer.getvalue())
    done = subprocess.run(
        [sys.executable, "-m", "adacompress", "--quiet", "compress", "exif.jpg"]
        + ["--out", "out"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and done.stderr == ""
