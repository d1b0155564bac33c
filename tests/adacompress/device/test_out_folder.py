"""The output folder: refused when it is or lies under an input, never writing onto
or into an input (a property over random layouts), locked for one run, and clear of
the temp files a killed run left."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adacompress.core.limits import NO_LIMITS
from adacompress.device.actions import Action
from adacompress.device.card import AgentCard
from adacompress.device.compressor import Upload
from adacompress.device.files import compress_files
from adacompress.device.manifest import MANIFEST, Entry
from adacompress.device.out_folder import OutFolder


class EchoCompressor:
    """A compressor whose upload names its input's content: fast, and each input's
    output tells which input it came from."""

    source = "echo.pt"
    card = AgentCard(name="echo")
    digest = "e" * 64
    limits = NO_LIMITS
    batch_size = 3

    action = Action(50)

    def compress_many(self, sources: Iterable[bytes]) -> list[Upload]:
        return [
            Upload(b"upload of " + sha(data).encode(), self.action, "", 1, 1, len(data))
            for data in sources
        ]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def compress(inputs: list[str | Path], out: str | Path, **kwargs: object) -> dict:
    return compress_files(EchoCompressor(), inputs, Path(out), **kwargs)  # type: ignore[arg-type]


def manifest(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / MANIFEST).read_text().splitlines()]


def test_an_out_that_is_or_lies_under_an_input_is_refused(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    photo = tmp_path / "photos" / "photo.jpg"
    photo.write_bytes(b"original")
    (tmp_path / "link").symlink_to(tmp_path / "photos")
    for inputs, out in [
        ([photo.parent], photo.parent),  # compress DIR --out DIR
        ([photo.parent], photo.parent / "up"),  # up/up/up/... on every rerun
        ([photo.parent], tmp_path / "link" / "up"),  # the same through a link
        ([tmp_path / "link"], photo.parent / "up"),
        ([photo], photo),
    ]:
        with pytest.raises(ValueError, match="lies under input"):
            compress(inputs, out)
    assert photo.read_bytes() == b"original"
    assert sorted(p.name for p in photo.parent.iterdir()) == ["photo.jpg"]


def test_an_output_onto_an_input_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cd photos && compress photo.jpg --out . replaced the photo with its upload
    monkeypatch.chdir(tmp_path)
    Path("photo.jpg").write_bytes(b"original")
    Path("other.png").write_bytes(b"other")
    with pytest.raises(ValueError, match="would overwrite input photo.jpg"):
        compress(["other.png", "photo.jpg"], ".")
    assert Path("photo.jpg").read_bytes() == b"original"
    assert not Path("other.jpg").exists()


def test_a_link_in_out_cannot_lead_into_an_input(tmp_path: Path) -> None:
    (tmp_path / "in" / "cats").mkdir(parents=True)
    (tmp_path / "in" / "cats" / "a.png").write_bytes(b"cat")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "cats").symlink_to(tmp_path / "in" / "cats")
    with pytest.raises(ValueError, match="would land in input folder"):
        compress([tmp_path / "in"], tmp_path / "out")
    assert os.listdir(tmp_path / "in" / "cats") == ["a.png"]


def test_a_second_run_on_the_same_out_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"a")
    folder = OutFolder(tmp_path / "out", [], [])
    with folder.locked(), pytest.raises(ValueError, match="another adacompress"):
        compress([tmp_path / "a.png"], tmp_path / "out")
    assert compress([tmp_path / "a.png"], tmp_path / "out")["written"] == 1


def test_stale_temps_of_a_killed_run_are_removed(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"a")
    out = tmp_path / "out"
    compress([tmp_path / "in"], out)
    stale = [out / ".a.jpg.k2x_9abc.tmp", out / f".{MANIFEST}.abcdefgh.tmp"]
    kept = [out / ".notes.abcdefgh.tmp", out / "a.jpg.abcdefgh.tmp"]
    for path in stale + kept:
        path.write_bytes(b"half")
    compress([tmp_path / "in"], out)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)


def test_a_replaced_output_is_not_done(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"a")
    out = tmp_path / "out"
    compress([tmp_path / "a.png"], out)
    original = (out / "a.jpg").read_bytes()
    (out / "a.jpg").write_bytes(b"X" * len(original))  # same size, other content
    summary = compress([tmp_path / "a.png"], out)
    assert summary["written"] == 1 and (out / "a.jpg").read_bytes() == original


def test_an_output_recorded_outside_out_is_never_done(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"a")
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"s")
    out = tmp_path / "out"
    compress([tmp_path / "a.png"], out)
    (entry,) = manifest(out)
    for output in [str(secret), "../secret.jpg"]:
        entry |= {"output": output, "bytes": 1, "output_sha256": sha(b"s")}
        (out / MANIFEST).write_text(json.dumps(entry) + "\n")
        summary = compress([tmp_path / "a.png"], out)
        assert summary["written"] == 1 and summary["manifest_ignored"] == 1
    (out / "link.jpg").symlink_to(secret)
    entry |= {"output": "link.jpg"}
    (out / MANIFEST).write_text(json.dumps(entry) + "\n")
    assert compress([tmp_path / "a.png"], out)["written"] == 1
    assert secret.read_bytes() == b"s"


def test_earlier_runs_stay_in_the_manifest_and_keep_their_names(
    tmp_path: Path,
) -> None:
    for name in ("A", "B"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.png").write_bytes(name.encode())
    out = tmp_path / "out"
    compress([tmp_path / "A"], out)
    compress([tmp_path / "B"], out)
    entries = manifest(out)
    assert [Path(e["source"]).parent.name for e in entries] == ["A", "B"]
    assert [e["output"] for e in entries] == ["a.jpg", "a.png.jpg"]
    for entry in entries:
        data = (Path(entry["source"])).read_bytes()
        assert (out / entry["output"]).read_bytes() == b"upload of " + sha(
            data
        ).encode()
    summary = compress([tmp_path / "B", tmp_path / "A"], out)
    assert summary["reused"] == 2 and summary["written"] == 0


def test_an_interrupted_run_records_what_it_wrote(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for i in range(7):
        (tmp_path / "in" / f"{i}.png").write_bytes(bytes([i]))

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compress([tmp_path / "in"], tmp_path / "out", on_progress=stop)
    assert len(manifest(tmp_path / "out")) == EchoCompressor.batch_size
    assert compress([tmp_path / "in"], tmp_path / "out")["reused"] == 3


# -- the property: whatever the layout, no input is written ------------------------

FILES = ["p/a.jpg", "p/q/a.jpg", "p/a.png", "r/a.jpg", "r/b.jpg", "a.jpg", "o/a.jpg"]
LINKS = {
    "lp": "p",
    "la.jpg": "p/a.jpg",
    "r/lq": "../p/q",
    "o/q": "../p/q",
    "o/b.jpg": "../r/b.jpg",
    "lo": "o",
}
PATHS = [".", "p", "p/q", "r", "o", "lp", "lp/q", "r/lq", "lo", *FILES, *LINKS]


@st.composite
def layouts(draw: st.DrawFn) -> tuple[list[str], list[str], list[str], str]:
    files = draw(st.lists(st.sampled_from(FILES), min_size=1, unique=True))
    links = draw(st.lists(st.sampled_from(sorted(LINKS)), unique=True))
    inputs = draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=4))
    out = draw(st.sampled_from([*PATHS, "new", "p/new", "o/new", "lo/q/new"]))
    return files, links, inputs, out


def snapshot(root: str) -> dict[str, tuple[bytes, int, int]]:
    """Every file under ``root`` (links not followed): content, inode, mtime."""
    seen = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path):
                info = os.stat(path)
                seen[path] = (Path(path).read_bytes(), info.st_ino, info.st_mtime_ns)
    return seen


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts())
def test_compress_never_writes_an_input_path(
    layout: tuple[list[str], list[str], list[str], str],
) -> None:
    files, links, inputs, out = layout
    home = os.getcwd()
    with tempfile.TemporaryDirectory() as base:
        try:
            os.chdir(base)
            for i, name in enumerate(files):
                Path(name).parent.mkdir(parents=True, exist_ok=True)
                Path(name).write_bytes(f"photo {i}".encode())
            for name in links:
                Path(name).parent.mkdir(parents=True, exist_ok=True)
                Path(name).symlink_to(LINKS[name])
            real_inputs = [os.path.realpath(i) for i in inputs if os.path.exists(i)]
            folders = {i: snapshot(i) for i in real_inputs if os.path.isdir(i)}
            files_before = {
                i: (Path(i).read_bytes(), os.stat(i).st_ino)
                for i in real_inputs
                if os.path.isfile(i)
            }
            given = {i: os.lstat(i) for i in inputs if os.path.lexists(i)}
            try:
                summary = compress(list(inputs), out)
            except (ValueError, OSError):
                summary = None
            event("written" if summary is not None else "refused")
            for path, info in given.items():  # a link given is still that link
                assert os.lstat(path)[:2] == info[:2]
            for folder, before in folders.items():
                assert snapshot(folder) == before, f"{folder} was written"
            for path, (data, inode) in files_before.items():
                assert (Path(path).read_bytes(), os.stat(path).st_ino) == (data, inode)
            if summary is not None:
                entries = [Entry.parse(e) for e in manifest(Path(out))]
                outputs = [e.output for e in entries if e.output]
                assert len(outputs) == len({o.casefold() for o in outputs})
                for entry in entries:  # the manifest describes what is there
                    if entry.output:
                        data = Path(out, entry.output).read_bytes()
                        assert sha(data) == entry.output_sha256
                        assert data == b"upload of " + str(entry.sha256).encode()
        finally:
            os.chdir(home)
