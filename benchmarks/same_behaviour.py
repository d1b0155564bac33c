"""Does this tree behave bit for bit as another commit? For refactors that promise
"behaviour unchanged".

    python benchmarks/same_behaviour.py --base eabe1bb [--quick]

Checks out ``--base`` in a temporary git worktree and runs the same commands with
each tree's sources (``PYTHONPATH``), in this environment, against the same answer
cache: ``evaluate`` of every shipped agent on the test split, three scenery runs
(the default agent, the paper-action agent, the paper's runtime preset), a ``run``
with ``--downshift`` (its per-image records compared), ``evaluate`` over HTTP (the
tree's ``adacompress serve`` answering its REST client), three short trainings (the
alpha-DQN with its calibration, the survival policy with full information, the
survival policy from a survey; each agent file byte for byte and its whole log,
calibration included) and two short PIRL trainings (their weights).
Reports are compared without timings and without the agent file's path (shipped
files may be renamed). Prints one line per check and exits 1 if any differs.
``--quick`` skips the trainings.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from _common import SMOKE_IMAGES, add_smoke
from adacompress.device.zoo import shipped
from base_tree import ROOT, checked_out

IGNORED = {"agent_file", "state", "plot", "cache"}
"""Report keys that differ between identical runs (paths), besides timings."""
TIMINGS = ("second", "elapsed", "duration", "time")


def normalised(value: Any) -> Any:
    """A report without what differs between identical runs: timings, paths, and
    which of the service calls were new (the first of the two runs pays for what
    the second finds in the shared answer cache; their sum is compared)."""
    if isinstance(value, dict) and {"new", "cached"} <= value.keys():
        calls = value["new"] + value["cached"]
        value = {k: v for k, v in value.items() if k not in ("new", "cached")}
        value["new_or_cached"] = calls
    if isinstance(value, dict):
        return {
            k: normalised(v)
            for k, v in value.items()
            if k not in IGNORED and not any(word in k for word in TIMINGS)
        }
    if isinstance(value, list):
        return [normalised(v) for v in value]
    return value


def records(state_dir: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(state_dir / "run.sqlite") as db:
        return db.execute("SELECT * FROM records ORDER BY position").fetchall()


def weights(path: Path, key: str) -> list[float]:
    """The sum of each saved tensor (agent files before 0.3 keep theirs under q)."""
    saved = torch.load(path, weights_only=True)
    tensors = saved[key] if key in saved else saved["q"]
    return [float(t.double().sum()) for t in tensors.values()]


def report(out: Path) -> Any:
    return normalised(json.loads((out / "r.json").read_text()))


def run_records(out: Path) -> Any:
    return report(out), records(out / "state")


def agent_file(path: Path) -> Any:
    """Everything an agent file holds -- settings (the calibrated threshold, the
    action costs), metadata (alpha), epsilon -- its tensors byte for byte."""

    def plain(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return str(value.dtype), tuple(value.shape), value.numpy().tobytes()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(torch.load(path, weights_only=True))


def flat_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """A training log's settings with the ``answers`` group's fields at the top, as
    logs kept them before the group existed (issue 33): the five answer modes moved
    into one group, their values did not."""
    if not isinstance(settings.get("answers"), dict):
        return settings
    answers, rest = settings["answers"], dict(settings)
    del rest["answers"]
    if answers.keys() & rest.keys():
        raise ValueError(f"answers and settings share {answers.keys() & rest.keys()}")
    return rest | answers


def agent(out: Path) -> Any:
    """The agent file and its whole log (history, calibration table, survey
    summary, service calls), without timings; its settings flat (logs before
    issue 33 had no ``answers`` group)."""
    log = json.loads((out / "a.json").read_text())
    log.pop("command")  # names the output folder
    log["settings"] = flat_settings(log["settings"])
    return agent_file(out / "a.pt"), normalised(log)


def pirl_weights(out: Path) -> Any:
    return weights(out / "checkpoint.pt", "model")


Check = tuple[str, list[str], Callable[[Path], Any]]
"""A name, command arguments (``{out}``: its output folder), what to compare."""


def checks(data: Path, lists: Path, quick: bool, smoke: bool = False) -> list[Check]:
    test80, train80 = str(lists / "test80.txt"), str(lists / "train80.txt")
    if smoke:  # one evaluation and one short training, on the lists' few photos
        evaluate = ["evaluate", "--backend", "lite0", "--images", test80]
        train = ["train", "--images", train80, "--steps", "20"]
        train += ["--calibration-folds", "2", "--backend", "lite0"]
        train += ["--features", "confidence", "--policy", "survival"]
        train += ["--full-information", "--target-accuracy", "0.97"]
        return [
            ("evaluate lite0", [*evaluate, "--json", "{out}/r.json"], report),
            ("train survival", [*train, "--out", "{out}/a.pt"], agent),
        ]
    out: list[Check] = []
    for backend in ("lite0", "lite1", "lite2"):
        for actions in ("scale-quality", "paper"):
            args = ["evaluate", "--backend", backend, "--split", "test"]
            args += ["--actions", actions, "--json", "{out}/r.json"]
            out.append((f"evaluate {backend} {actions}", args, report))
    scenery = ["experiment", "scenery", "--day-passes", "1", "--night-passes", "2"]
    scenery += ["--after-passes", "1", "--json", "{out}/r.json"]
    out += [
        ("scenery lite1", [*scenery, "--backend", "lite1", "--seed", "3"], report),
        (
            "scenery lite0 paper actions",
            [*scenery, "--backend", "lite0", "--actions", "paper", "--seed", "1"],
            report,
        ),
        (
            "scenery lite0 paper preset",
            [*scenery, "--backend", "lite0", "--actions", "paper", "--seed", "1"]
            + ["--preset", "paper"],
            report,
        ),
        (
            "run lite1 --downshift (records)",
            ["run", "--backend", "lite1", "--downshift", "--p-est-initial", "0.3"]
            + ["--images", test80, "--state", "{out}/state", "--json", "{out}/r.json"],
            run_records,
        ),
    ]
    rest = ["--serve", "evaluate", "--backend", "{url}", "--images", test80]
    rest += ["--agent", str(shipped("lite0", "paper").file)]
    rest += ["--cache", "{out}/cache.sqlite", "--json", "{out}/r.json"]
    out.append(("evaluate lite0 over HTTP (serve + REST client)", rest, report))
    return out if quick else out + trainings(data, train80)


def trainings(data: Path, train80: str) -> list[Check]:
    """Three short trainings and two short PIRL trainings."""
    train = ["train", "--images", train80, "--steps", "300", "--calibration-folds", "3"]
    out: list[Check] = [
        (
            "train alpha-DQN, calibrated",
            [*train, "--preset", "alpha-dqn-scale-quality", "--backend", "lite0"]
            + ["--actions", "paper", "--features", "confidence"]
            + ["--target-accuracy", "0.95", "--out", "{out}/a.pt"],
            agent,
        ),
        (
            "train survival, full information",
            [*train, "--backend", "lite1", "--features", "confidence"]
            + ["--policy", "survival", "--full-information"]
            + ["--target-accuracy", "0.97", "--out", "{out}/a.pt"],
            agent,
        ),
        (
            "train survival, survey",
            [*train, "--backend", "lite1", "--features", "confidence"]
            + ["--policy", "survival", "--queries-per-image", "3"]
            + ["--target-accuracy", "0.97", "--out", "{out}/a.pt"],
            agent,
        ),
    ]
    for method in ("pirl", "jigsaw"):
        args = ["--pirl", "train", "--data", str(data / "imagenet-samples")]
        args += ["--limit", "64", "--method", method, "--arch", "resnet10"]
        args += ["--width", "16", "--image-size", "32", "--batch-size", "16"]
        args += ["--epochs", "2", "--seed", "1", "--workers", "0", "--out", "{out}"]
        out.append((f"pirl train {method}", args, pirl_weights))
    return out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


SERVE_PORT = free_port()
"""The port both trees' services listen on, in turn."""


@contextlib.contextmanager
def serving(src: Path, port: int, env: dict[str, str]) -> Iterator[str]:
    """``adacompress serve --backend lite0`` of the tree at ``src``; its URL.

    Both trees get the same port, so that the reports name the same backend."""
    command = [str(Path(sys.executable).parent / "adacompress"), "serve"]
    command += ["--backend", "lite0", "--port", str(port)]
    server = subprocess.Popen(
        command,
        env={**env, "PYTHONPATH": str(src)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = server.stdout.readline() if server.stdout else ""
        if " on http://" not in line:
            raise RuntimeError(f"adacompress serve did not start: {line!r}")
        yield line.split(" on ")[1].split()[0]
    finally:
        server.terminate()
        server.wait(timeout=60)


def run(src: Path, args: list[str], out: Path, env: dict[str, str]) -> None:
    if args[0] == "--serve":  # the REST client against the same tree's service
        with serving(src, SERVE_PORT, env) as url:
            run(src, [a.replace("{url}", url) for a in args[1:]], out, env)
        return
    tool = "pirl" if args[0] == "--pirl" else "adacompress"
    args = [a.replace("{out}", str(out)) for a in args if a != "--pirl"]
    command = [str(Path(sys.executable).parent / tool)]
    command += ([] if tool == "pirl" else ["--quiet"]) + args
    subprocess.run(
        command,
        env={**env, "PYTHONPATH": str(src)},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="the commit to compare with (required)")
    parser.add_argument("--quick", action="store_true", help="skip the trainings")
    add_smoke(parser)
    args = parser.parse_args(argv)
    if args.base is None and not args.smoke:
        parser.error("the following arguments are required: --base")
    if args.smoke:  # against this commit, on a few photos; exits 0 either way
        args.base = "HEAD"
    photos = SMOKE_IMAGES if args.smoke else 80
    from adacompress.core.datasets import data_root, imagenet_split

    data = data_root()
    env = {**os.environ, "ADACOMPRESS_DATA": str(data), "ADACOMPRESS_THREADS": "2"}
    with tempfile.TemporaryDirectory() as tmp, checked_out(args.base) as base_src:
        tmp_path = Path(tmp)
        lists = tmp_path / "lists"
        lists.mkdir()
        for split in ("test", "train"):
            paths = imagenet_split(split)[:photos]
            (lists / f"{split}80.txt").write_text("\n".join(map(str, paths)))
        differ = 0
        for name, command, compare in checks(data, lists, args.quick, args.smoke):
            results = []
            for label, src in (("base", base_src), ("here", ROOT / "src")):
                out = tmp_path / label / name.replace(" ", "_")
                out.mkdir(parents=True)
                run(src, command, out, env)
                results.append(compare(out))
            same = results[0] == results[1]
            differ += not same
            print(f"{'same' if same else 'DIFFERS'}  {name}", flush=True)
    # A smoke run checks that the comparison runs: an uncommitted change in the
    # tree may differ from HEAD, and says so above.
    return 1 if differ and not args.smoke else 0


if __name__ == "__main__":
    raise SystemExit(main())
