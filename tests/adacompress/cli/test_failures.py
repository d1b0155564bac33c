"""Failure and misuse: lost work, exit codes, a dead or hung service, damaged or
busy state, resuming by what an image is rather than where it sorts."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from adacompress.cli import main
from adacompress.cloud.emulated import EfficientNetLiteCloud
from adacompress.cloud.server import create_app, running
from adacompress.cloud.settings import ServeSettings
from adacompress.core.datasets import builtin_photos
from adacompress.exchange.cache import AnswerCache
from adacompress.runtime.store import RunStore
from basekit.sqlite import StateError
from tests.helpers import photo

QUICK = ["--timeout", "1", "--max-failures", "100"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def hung_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def photos(folder: Path, n: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        photo(i, (240, 180)).save(folder / f"p{i}.png")
    return folder


def run_args(url: str, folder: Path, state: Path, *extra: str) -> list[str]:
    return [
        "--quiet",
        "run",
        "--backend",
        url,
        "--agent",
        "lite0",
        "--images",
        str(folder),
        "--state",
        str(state),
        *extra,
    ]


def test_a_run_whose_uploads_failed_exits_1_and_the_next_run_retries_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    folder, state = photos(tmp_path / "in"), tmp_path / "state"
    assert main(run_args(url, folder, state, *QUICK)) == 1  # nothing listens
    report = json.loads((state / "report.json").read_text())
    assert report["states"] == {"failed": 4} and len(report["problems"]) == 4
    capsys.readouterr()
    app = create_app(ServeSettings(backend="lite0"), EfficientNetLiteCloud("lite0"))
    with running(app, port=port):
        assert main(run_args(url, folder, state, *QUICK)) == 0
    report = json.loads((state / "report.json").read_text())
    assert report["images"] == 4 and report["attempts"] == 8
    assert "failed" not in report["states"] and not report["problems"]
    with running(app, port=port):  # a third run has nothing left to do
        assert main(run_args(url, folder, state, *QUICK)) == 0
    assert json.loads((state / "report.json").read_text())["attempts"] == 8


def test_evaluate_whose_every_call_failed_exits_1(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    args = [
        "--quiet",
        "evaluate",
        "--backend",
        url,
        "--agent",
        "lite0",
        "--images",
        str(photos(tmp_path / "in", 2)),
        "--json",
        str(tmp_path / "r.json"),
        *QUICK,
    ]
    assert main(args) == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["n_images"] == 0 and len(report["skipped"]) == 2


@pytest.mark.parametrize("kind", ["hung", "closed"])
def test_a_dead_service_stops_the_run_with_one_line_and_exit_3(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, state = photos(tmp_path / "in", 6), tmp_path / "state"
    limits = ["--timeout", "1", "--max-failures", "2"]
    started = time.monotonic()
    if kind == "hung":
        with hung_server() as url:
            code = main(run_args(url, folder, state, *limits))
    else:
        code = main(run_args(f"http://127.0.0.1:{free_port()}", folder, state, *limits))
    elapsed = time.monotonic() - started
    assert code == 3
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 1 and "service unreachable" in err[0], err
    records = json.loads((state / "report.json").read_text())["records"]
    assert len(records) == 1  # the second failure stopped the run; 5 are left
    assert elapsed < 30  # not a full retry budget per image


def test_damaged_state_is_a_one_line_error_never_a_restart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = photos(tmp_path / "in", 2)
    for name, content in (("empty", b""), ("garbage", b"\x00junk" * 500)):
        state = tmp_path / name
        state.mkdir()
        (state / "run.sqlite").write_bytes(content)
        code = main(["--quiet", "run", "--images", str(folder), "--state", str(state)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and "\n" not in err and "Traceback" not in err
        assert str(state / "run.sqlite") in err
        assert (state / "run.sqlite").read_bytes() == content  # untouched
    cache = tmp_path / "cache.sqlite"
    cache.write_bytes(b"\x00junk" * 500)
    code = main(["--quiet", "evaluate", "--images", str(folder), "--cache", str(cache)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and str(cache) in err and "\n" not in err


def test_a_state_folder_in_use_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, state = photos(tmp_path / "in", 2), tmp_path / "state"
    with RunStore(state):
        code = main(["--quiet", "run", "--images", str(folder), "--state", str(state)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "in use by another run" in err and "\n" not in err
    with pytest.raises(StateError, match="in use"), RunStore(state), RunStore(state):
        pass


def test_a_state_folder_of_another_agent_is_refused_with_the_way_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run's folder keeps its agent's kind: another agent (here the paper-action
    one, as after an upgrade that changed the default) is a one-line error that says
    how to start anew, and the run's records are left as they were."""
    folder, state = photos(tmp_path / "in", 2), tmp_path / "state"
    run = ["--quiet", "run", "--images", str(folder), "--state", str(state)]
    assert main(run) == 0
    before = (state / "run.sqlite").read_bytes()
    code = main([*run, "--actions", "paper"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert "belongs to a run with actions=" in err and "another --state folder" in err
    assert (state / "run.sqlite").read_bytes() == before


def open_cache(path: str) -> str:
    try:
        AnswerCache(path).close()
        return "ok"
    except Exception as err:  # noqa: BLE001 -- reported to the test
        return f"{type(err).__name__}: {err}"


def test_many_processes_can_create_one_cache_at_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    with context.Pool(6) as pool:
        for trial in range(6):
            path = str(tmp_path / f"cache{trial}.sqlite")
            assert pool.map(open_cache, [path] * 6) == ["ok"] * 6


def test_resume_knows_images_by_content_and_path_not_by_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, state = photos(tmp_path / "in", 3), tmp_path / "state"
    never = ["--p-est-initial", "0", "--p-est-min", "0", "--p-est-max", "0"]
    assert (
        main(["--quiet", "run", "--images", str(folder), "--state", str(state), *never])
        == 0
    )
    # The same folder given relatively, from elsewhere: nothing is redone.
    monkeypatch.chdir(tmp_path)
    assert main(["--quiet", "run", "--images", "in", "--state", "state", *never]) == 0
    report = json.loads((state / "report.json").read_text())
    assert report["attempts"] == 3
    # A new photo that sorts first is processed; the others are not redone.
    shutil.copyfile(builtin_photos()[0], folder / "a-new.png")
    assert main(["--quiet", "run", "--images", "in", "--state", "state", *never]) == 0
    report = json.loads((state / "report.json").read_text())
    assert report["attempts"] == 4 and report["images"] == 4
    assert Path(report["records"][-1]["path"]).name == "a-new.png"
    # A changed photo is a new image.
    photo(9, (240, 180)).save(folder / "p0.png")
    assert main(["--quiet", "run", "--images", "in", "--state", "state", *never]) == 0
    assert json.loads((state / "report.json").read_text())["attempts"] == 5


def test_a_dry_run_counts_only_what_a_rerun_would_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a finished run --dry-run said "would make 14 to 28 new calls" where a
    rerun makes none (issue 32): it counts the images the state has not finished."""
    folder, state = photos(tmp_path / "in", 3), tmp_path / "state"
    args = ["--quiet", "run", "--images", str(folder), "--state", str(state)]
    assert main([*args, "--dry-run"]) == 0
    assert "for 3 images" in capsys.readouterr().out
    assert not state.exists()  # a dry run creates nothing
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--dry-run"]) == 0
    assert "would make no new calls: all 3 images are done" in capsys.readouterr().out
    assert main(args) == 0
    report = json.loads((state / "report.json").read_text())
    assert report["calls"]["new"] == sum(r["calls"] for r in report["records"])
    assert len(report["records"]) == 3  # the rerun did nothing
    photo(9).save(folder / "new.jpg")
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "for 1 images" in out and "3 images done already" in out
