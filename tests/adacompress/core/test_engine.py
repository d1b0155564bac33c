"""Frozen networks under ONNX Runtime: the same answers as eager PyTorch, exported
once into the cache folder, and results of the two engines never cached together."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from adacompress.cloud.emulated import EfficientNetLiteCloud
from adacompress.core.datasets import builtin_photos
from adacompress.core.efficientnet import LiteNetwork, preprocess_array
from adacompress.core.engine import ENGINE_ENV, GRAPHS_ENV, OnnxGraph, engine
from adacompress.device.features.lite import ScaleConfidenceFeatures
from basekit.images import load_image


@pytest.fixture
def graphs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(GRAPHS_ENV, str(tmp_path / "graphs"))
    return tmp_path / "graphs"


def test_onnx_runtime_gives_eager_pytorchs_probabilities(
    graphs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = preprocess_array([load_image(p) for p in builtin_photos()[:4]], 224)
    onnx = LiteNetwork("lite0", 224)(batch)
    monkeypatch.setenv(ENGINE_ENV, "torch")
    eager = LiteNetwork("lite0", 224)(batch)
    np.testing.assert_allclose(onnx, eager, atol=1e-5)
    np.testing.assert_array_equal(onnx.argmax(1), eager.argmax(1))


def test_a_graph_is_exported_once_and_reused(graphs: Path) -> None:
    LiteNetwork("lite0", 128)
    (first,) = graphs.glob("lite0-probabilities-128-*.onnx")
    stamp = first.stat().st_mtime_ns
    LiteNetwork("lite0", 128)
    assert [p.stat().st_mtime_ns for p in graphs.glob("*.onnx")] == [stamp]
    LiteNetwork("lite0", 128, "pooled")  # another output is another graph
    assert len(list(graphs.glob("*.onnx"))) == 2


def test_the_engines_cache_under_different_names(
    graphs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx_cloud, onnx_features = (
        EfficientNetLiteCloud("lite0"),
        ScaleConfidenceFeatures(),
    )
    monkeypatch.setenv(ENGINE_ENV, "torch")
    eager_cloud, eager_features = (
        EfficientNetLiteCloud("lite0"),
        ScaleConfidenceFeatures(),
    )
    assert onnx_cloud.cache_name != eager_cloud.cache_name == "lite0"
    assert onnx_features.cache_name != eager_features.cache_name
    assert onnx_cloud.name == eager_cloud.name == "lite0"
    data = builtin_photos()[0].read_bytes()
    top5 = [
        [label.class_id for label in c.classify([data])[0][:5]]
        for c in (onnx_cloud, eager_cloud)
    ]
    assert top5[0] == top5[1]


def test_unknown_engines_and_broken_graphs_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENGINE_ENV, "tensorrt")
    with pytest.raises(ValueError, match="unknown ADACOMPRESS_ENGINE"):
        engine()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(io.BytesIO(b"\x00" * 64).getvalue())
    with pytest.raises(ValueError, match="not a usable ONNX graph") as err:
        OnnxGraph(bad)
    assert "\n" not in str(err.value)


def test_a_graph_that_fails_on_its_input_is_a_one_line_error(tmp_path: Path) -> None:
    """A graph from elsewhere can load and still fail at a run (a fixed batch fed
    another): one line naming it, not ONNX Runtime's own exception (issue 31)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "fixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    runner = OnnxGraph(tmp_path / "fixed.onnx", model.SerializeToString())
    assert runner(np.ones((2, 3), np.float32)).shape == (2, 3)
    with pytest.raises(ValueError, match="could not run") as err:
        runner(np.ones((1, 3), np.float32))
    assert str(tmp_path / "fixed.onnx") in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("configured", [False, True])
def test_only_a_process_that_set_its_threads_shares_one_pool(
    graphs: Path, configured: bool
) -> None:
    """A library in someone else's process claims nothing process-wide (their own
    sessions still work); after configure_threads every session shares one pool."""
    LiteNetwork("lite0", 96)  # the graph, exported here
    script = f"""
import onnxruntime as ort
from basekit.threads import configure_threads
from adacompress.core.efficientnet import LiteNetwork
if {configured}:
    configure_threads(2)
graph = LiteNetwork("lite0", 96)._run
print(graph.session.get_session_options().use_per_session_threads)
path = str(graph.path)
try:
    ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    print("theirs ok")
except Exception:
    print("theirs refused")
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, GRAPHS_ENV: str(graphs)},
    )
    lines = done.stdout.splitlines()  # ONNX Runtime prints its own errors too
    shared, theirs = lines[0], lines[-1]
    assert shared == ("False" if configured else "True")
    assert theirs == ("theirs refused" if configured else "theirs ok")
