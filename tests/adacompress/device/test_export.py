"""An exported agent: the same choices as the agent file it came from, a typed card,
one-line errors for damaged exports, and a device install without torch."""

from __future__ import annotations

import json
import os
import subprocess
import venv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from adacompress.cli import main
from adacompress.core.datasets import builtin_photos
from adacompress.core.limits import UploadLimits
from adacompress.device.card import AgentCard
from adacompress.device.compressor import Compressor
from adacompress.device.export import export_agent
from adacompress.device.features import get_extractor
from adacompress.device.policies.files import make_policy
from basekit.images import load_image

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("agent", "actions"), [("lite0", None), ("lite2", "paper")])
def test_an_export_decides_as_its_agent_file(
    tmp_path: Path, agent: str, actions: str | None
) -> None:
    full = Compressor.load(agent, actions=actions)
    export_agent(full, tmp_path / "agent")
    exported = Compressor.load(tmp_path / "agent")
    images = [load_image(p) for p in builtin_photos()]
    states = full.features(images)
    np.testing.assert_allclose(exported.features(images), states, atol=1e-6)
    np.testing.assert_array_equal(exported.choose(states), full.choose(states))
    assert exported.actions == full.actions
    assert exported.card.threshold == full.card.threshold
    assert exported.card.action_set == full.card.action_set


@pytest.mark.parametrize(
    ("features", "probe_from"),
    [("confidence-scales", "photo"), ("confidence-probes", "view")],
)
def test_a_state_with_downscale_probes_exports_the_same_state(
    tmp_path: Path, features: str, probe_from: str
) -> None:
    """The probe states (Lite0 on the photo and three downscales, made from the
    photo or blurred from the network's view) export too: the card says how the
    probes are made and the graph computes the same state and choices."""
    agent = Compressor.load("lite0")
    extractor = get_extractor(features)
    policy = make_policy(replace(agent.policy.settings, state_dim=extractor.dim))
    probes = Compressor(
        policy, extractor, agent.actions, card=replace(agent.card, features=features)
    )
    card = export_agent(probes, tmp_path / "agent")
    assert card.preprocessing.probe_from == probe_from
    assert len(card.preprocessing.probe_scales) == 3
    exported = Compressor.load(tmp_path / "agent")
    images = [load_image(p) for p in builtin_photos()]
    states = probes.features(images)
    np.testing.assert_allclose(exported.features(images), states, atol=1e-6)
    np.testing.assert_array_equal(exported.choose(states), probes.choose(states))


def test_the_card_spells_out_actions_limits_and_versions(tmp_path: Path) -> None:
    limits = UploadLimits(80, 5_000_000, frozenset({"jpeg", "png"}))
    export_agent(Compressor.load("lite1", limits=limits), tmp_path)
    data = json.loads((tmp_path / "card.json").read_text())
    assert data["actions"][5] == {
        "key": "5@0.75",
        "format": "jpeg",
        "scale": 0.75,
        "quality": 5,
    }
    assert data["limits"]["formats"] == ["jpeg", "png"]
    assert data["limits"]["min_side"] == 80
    assert data["preprocessing"] == {
        "input_size": 160,
        "crop_padding": 32,
        "offset": 127.0,
        "scale": 128.0,
        "probe_scales": [],
        "probe_from": "photo",
    }
    assert data["backend"] == "lite1" and data["policy"] == "survival"
    assert 0.9 < data["threshold"] <= 1.0 and data["target_accuracy"] == 0.99
    assert {"torch", "onnxruntime", "adacompress"} <= set(data["versions"])
    assert data["metrics"] == []  # measured without limits: not this agent's
    card = AgentCard.read(tmp_path)
    assert card.upload_limits() == limits
    assert Compressor.load(tmp_path).limits == limits


def test_export_and_compress_through_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["export", "lite0", "--actions", "paper", "--out", str(tmp_path / "a")])
        == 0
    )
    photos = [str(p) for p in builtin_photos()[:3]]
    out = tmp_path / "uploads"
    assert (
        main(
            [
                "compress",
                *photos,
                "--agent",
                str(tmp_path / "a"),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 3


def test_the_manifest_names_an_export_by_name_and_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It recorded the folder's name alone (issue 32): two different exports in
    folders of one name were one agent to a rerun."""
    folder = tmp_path / "agent"
    card = export_agent(Compressor.load("lite0", actions="paper"), folder)
    photo, out = str(builtin_photos()[0]), tmp_path / "uploads"
    assert main(["compress", photo, "--agent", str(folder), "--out", str(out)]) == 0
    (entry,) = [
        json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()
    ]
    assert entry["agent"] == card.name == "lite0-paper"
    assert entry["agent_sha256"] == card.digest() == AgentCard.read(folder).digest()
    export_agent(Compressor.load("lite0"), folder)  # another agent, the same folder
    capsys.readouterr()
    assert main(["compress", photo, "--agent", str(folder), "--out", str(out)]) == 0
    assert "1 written" in capsys.readouterr().out


def test_a_folder_without_a_card_says_what_it_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "agent file not found" (issue 32)."""
    (tmp_path / "agent").mkdir()
    photo = str(builtin_photos()[0])
    args = ["compress", photo, "--agent", str(tmp_path / "agent"), "--out", "o"]
    assert main([*args[:-1], str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "holds no card.json" in err and "adacompress export" in err
    assert err.count("\n") == 1


def test_damaged_or_mismatched_exports_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "agent"
    export_agent(Compressor.load("lite0", actions="paper"), folder)
    jpeg_only = UploadLimits(formats=frozenset({"webp"}))
    with pytest.raises(ValueError, match="none of the agent's formats"):
        Compressor.load(folder, limits=jpeg_only)
    with pytest.raises(ValueError, match="scale-quality"):
        Compressor.load(folder, actions="scale-quality")
    (folder / "policy.onnx").write_bytes(b"not a graph")
    with pytest.raises(ValueError, match="SHA-256 differs"):
        Compressor.load(folder)
    for text in ("{", "[]", json.dumps({"format": 1}), "[" * 100_000):
        (folder / "card.json").write_text(text)
        with pytest.raises(ValueError, match="agent card") as err:
            Compressor.load(folder)
        assert "\n" not in str(err.value)
    assert (
        main(
            [
                "compress",
                str(builtin_photos()[0]),
                "--agent",
                str(folder),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "agent card" in capsys.readouterr().err


def test_export_refuses_states_that_need_torch(tmp_path: Path) -> None:
    agent = Compressor.load("lite0", actions="paper")
    stats = Compressor(agent.policy, get_extractor("stats"), agent.actions)
    with pytest.raises(ValueError, match="do not export"):
        export_agent(stats, tmp_path)


DEVICE_PACKAGES = ["numpy", "pillow", "onnxruntime", "tqdm", "filelock", "platformdirs"]

API_SCRIPT = """
import json, sys
import adacompress
compressor = adacompress.load(sys.argv[1])
uploads = compressor.compress_many(sys.argv[2:])
print(json.dumps([u.action.key for u in uploads]))
try:
    import torch
except ImportError:
    print("no torch")
"""


@pytest.mark.slow
def test_a_device_install_without_torch_makes_the_same_choices(
    tmp_path: Path, imagenet_dir: Path
) -> None:
    env_dir = tmp_path / "device-venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", *DEVICE_PACKAGES], check=True
    )
    export_agent(Compressor.load("lite0"), tmp_path / "agent")
    photos = sorted(imagenet_dir.glob("*.JPEG"))[:50]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    api = subprocess.run(
        [python, "-c", API_SCRIPT, str(tmp_path / "agent"), *map(str, photos)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    keys, torch_line = api.stdout.strip().splitlines()
    assert torch_line == "no torch"
    full = Compressor.load("lite0").compress_many(photos)
    assert json.loads(keys) == [u.action.key for u in full]
    cli = subprocess.run(
        [
            python,
            "-m",
            "adacompress",
            "compress",
            *map(str, photos),
            "--agent",
            str(tmp_path / "agent"),
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert cli.returncode == 0, cli.stderr
    manifest = [
        json.loads(line)
        for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()
    ]
    assert [m["action"] for m in manifest] == json.loads(keys)
    refused = subprocess.run(
        [
            python,
            "-m",
            "adacompress",
            "compress",
            str(photos[0]),
            "--out",
            str(tmp_path / "o2"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert refused.returncode == 2
    assert "adacompress export" in refused.stderr and "Traceback" not in refused.stderr
