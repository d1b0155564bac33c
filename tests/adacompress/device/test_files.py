"""``adacompress compress``: uploads and manifest, bad files listed, reruns redo
nothing, outputs equal to the Python API's."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from adacompress.cli import main
from adacompress.core.datasets import builtin_photos
from adacompress.device.compressor import Compressor
from adacompress.device.files import MANIFEST, expand_inputs
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


def test_outputs_keep_relative_paths_and_stay_apart(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    for name in ("x.png", "x.jpg", "y.jpeg", ".hidden.jpg"):
        (tmp_path / "a" / name).write_bytes(b"")
    planned = {s.name: o.as_posix() for s, o in expand_inputs([tmp_path / "a"])}
    # Planned without an extension: the upload's format gives it (x.jpg, x.png.jpg).
    assert planned == {"x.jpg": "x", "x.png": "x.png", "y.jpeg": "y"}


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
