"""A core install -- numpy, Pillow and ONNX Runtime, no extra (issue 32): every
command either works or exits 2 with one line naming the extra it needs, and the
library says the same. Simulated in one process in which the extras' modules
cannot be imported (``tests.helpers.blocking_env``), rather than a second venv."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

from adacompress.cli.errors import EXTRAS
from tests.helpers import OPTIONAL_MODULES, blocking_env, photo

CHILD = """
import contextlib, io, json, sys
from adacompress.cli import main
results = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(args)
        except SystemExit as done:  # --help
            code = done.code
    results.append([args, code, err.getvalue()])
import adacompress
try:
    adacompress.service("lite0")
    service = "made"
except ValueError as refused:
    service = str(refused)
upload = adacompress.load(sys.argv[2]).compress(sys.argv[3])
loaded = sorted(m for m in {OPTIONAL} if m in sys.modules and sys.modules[m])
print(json.dumps([results, service, upload.action.key, loaded]))
"""


def test_every_command_works_or_names_its_extra_in_one_line(
    tmp_path: Path, lite0_export: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        photo(i).save(photos / f"p{i}.jpg")
    one = str(photos / "p0.jpg")
    out = str(tmp_path / "out")
    agent = str(lite0_export)
    needs = {
        "train": [
            ["compress", one, "--out", out],
            ["export", "lite0", "--out", out + "/agent"],
            ["run", "--images", str(photos), "--agent", agent, "--state", out + "/s"],
            ["run", "--images", str(photos), "--state", out + "/s", "--dry-run"],
            ["evaluate", "--images", str(photos)],
            ["train", "--images", str(photos), "--steps", "5", "--out", out + "/a.pt"],
            ["ship", "lite0-paper", "--out-dir", out],
            ["explain", one, "--out", out + "/e.png"],
            ["experiment", "scenery", "--day", str(photos)],
        ],
        "server": [["serve", "--port", "0"]],
    }
    works = [
        ["compress", one, "--agent", agent, "--out", out],
        *[
            [command, "--help"]
            for command in (*sorted({a[0] for a in needs["train"]}), "serve")
        ],
    ]
    commands = [args for group in needs.values() for args in group] + works
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD.replace("{OPTIONAL}", repr(OPTIONAL_MODULES)),
            json.dumps(commands),
            agent,
            one,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=blocking_env(tmp_path / "core", OPTIONAL_MODULES),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results, service, action, loaded = json.loads(done.stdout)
    extra_of = {
        json.dumps(args): extra for extra, group in needs.items() for args in group
    }
    for args, code, err in results:
        assert "Traceback" not in err, (args, err)
        extra = extra_of.get(json.dumps(args))
        if extra is None:
            assert code == 0, (args, err)
            continue
        assert code == 2, (args, code, err)
        assert err.count("\n") == 1 and f"pip install 'adacompress[{extra}]'" in err, (
            args,
            err,
        )
    assert (
        tmp_path / "out" / "manifest.jsonl"
    ).is_file()  # compress --agent DIR worked
    assert "pip install 'adacompress[train]'" in service
    assert action and loaded == []


def test_each_optional_module_is_named_with_the_extra_that_installs_it() -> None:
    """cli.errors.EXTRAS against pyproject.toml's optional dependencies (through
    the installed metadata: an extra may pull in another, as train pulls pirl)."""
    pulls: dict[str, set[str]] = {}
    for requirement in importlib.metadata.requires("adacompress") or []:
        found = re.match(
            r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?.*extra == \"([^\"]+)\"", requirement
        )
        if found:
            name, inner, extra = found.groups()
            wanted = (
                {f"[{e}]" for e in (inner or "[]")[1:-1].split(",") if e}
                if name == "adacompress"
                else {name.lower().replace("_", "-")}
            )
            pulls.setdefault(extra, set()).update(wanted)

    def installs(extra: str) -> set[str]:
        names = set()
        for item in pulls.get(extra, ()):
            names |= installs(item[1:-1]) if item.startswith("[") else {item}
        return names

    aliases = {"skimage": "scikit-image"}
    for module, extra in EXTRAS.items():
        distribution = aliases.get(module, module.replace("_", "-"))
        assert distribution in installs(extra), (module, extra)
