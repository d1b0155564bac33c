"""Frozen networks under ONNX Runtime: exported from torch once, cached, then run.

Every frozen network -- the device's feature extractors and the emulated clouds -- runs
as an ONNX graph under ONNX Runtime by default: what a phone or a C++ service would
run, and several times faster than eager PyTorch on a CPU (benchmarks/decision_cost.py).
A graph is exported from its torch module the first time it is needed and kept in the
user's cache folder (``$ADACOMPRESS_GRAPHS`` overrides it), named by a digest of what
it is made of -- the weights, the input size, the torch and onnxruntime versions -- and
written atomically under a lock, so concurrent processes export it once. Nothing is
downloaded. ``ADACOMPRESS_ENGINE=torch`` selects the eager path instead (for tests and
comparison); torch itself is needed only to export.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import warnings
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from basekit.atomic import atomic_write
from basekit.threads import model_threads, threads_configured

if TYPE_CHECKING:
    from torch import nn

ENGINE_ENV = "ADACOMPRESS_ENGINE"
ENGINES = ("onnx", "torch")
GRAPHS_ENV = "ADACOMPRESS_GRAPHS"
OPSET = 17


def engine() -> str:
    """The engine frozen networks run on: ``$ADACOMPRESS_ENGINE``, default ``onnx``.

    Raises:
        ValueError: an unknown engine (one line).
    """
    name = os.environ.get(ENGINE_ENV, "onnx").strip().lower() or "onnx"
    if name not in ENGINES:
        raise ValueError(f"unknown {ENGINE_ENV}={name!r} (known: {', '.join(ENGINES)})")
    return name


def engine_tag() -> str:
    """What a cache key adds for the engine, so eager and ONNX Runtime results never
    mix: nothing for eager (the results cached before ONNX Runtime), ``+onnx``."""
    return "" if engine() == "torch" else "+onnx"


def graphs_folder() -> Path:
    """Where exported graphs are kept: ``$ADACOMPRESS_GRAPHS``, else ``graphs/`` in
    the user's cache folder."""
    if os.environ.get(GRAPHS_ENV):
        return Path(os.environ[GRAPHS_ENV])
    from platformdirs import user_cache_path

    return user_cache_path("adacompress") / "graphs"


class OnnxGraph:
    """One ONNX graph with a single input and a single output, run by ONNX Runtime.

    Args:
        path: the ``.onnx`` file.
        data: its bytes, when already read (and checked): the file is not read.

    Threads: :func:`basekit.threads.model_threads`; after
    :func:`basekit.threads.configure_threads`, one process-wide pool.

    Raises:
        ValueError: the file is missing or not a graph ONNX Runtime can run (one line).
    """

    def __init__(self, path: str | Path, data: bytes | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        if threads_configured():
            # The process set its threads (the command line does): one pool for
            # every session, or each session's threads spin against the next's.
            _shared_pool(ort)
            options.use_per_session_threads = False
        else:
            # A library in someone else's process: a pool of its own whose
            # threads sleep between runs, nothing process-wide.
            options.intra_op_num_threads = model_threads()
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(self.path) if data is None else data,
                options,
                providers=["CPUExecutionProvider"],
            )
        except Exception as err:  # onnxruntime raises its own untyped errors
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ValueError(
                f"not a usable ONNX graph: {self.path} ({reason})"
            ) from None
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        """The graph's first output for ``inputs``, in the order of its inputs.

        Raises:
            ValueError: ONNX Runtime could not run it on them (one line naming the
                graph): a graph from elsewhere may load and still fail on an input.
        """
        feed = dict(zip(self.input_names, inputs, strict=True))
        try:
            return np.asarray(self.session.run(None, feed)[0])
        except MemoryError:
            raise
        except Exception as err:  # onnxruntime raises its own untyped errors
            reason = " ".join(str(err).split())[:300] or type(err).__name__
            raise ValueError(
                f"ONNX graph {self.path} could not run ({reason})"
            ) from err


_pool_threads: int | None = None


def _shared_pool(ort: Any) -> None:
    """ONNX Runtime's process-wide intra-op pool, sized once on first use."""
    global _pool_threads
    if _pool_threads is None:
        _pool_threads = model_threads()
        from onnxruntime.capi import _pybind_state

        _pybind_state.set_global_thread_pool_sizes(_pool_threads, 1)


def export_graph(
    module: nn.Module,
    example: tuple[np.ndarray, ...],
    names: tuple[tuple[str, ...], tuple[str, ...]] = (("input",), ("output",)),
) -> bytes:
    """``module`` as ONNX bytes, the batch dimension (the first) of every input and
    output dynamic."""
    import torch

    inputs, outputs = names
    dynamic = {name: {0: "batch"} for name in (*inputs, *outputs)}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            tuple(torch.from_numpy(x) for x in example),
            buffer,  # type: ignore[arg-type]
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


def graph_key(identity: Mapping[str, Any]) -> str:
    """A digest of what a graph is made of, the exporter's versions included."""
    import onnxruntime

    versions = {"onnxruntime": onnxruntime.__version__, "opset": OPSET}
    try:  # the installed version, without importing torch (a service need not)
        versions["torch"] = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        pass
    text = json.dumps({**identity, **versions}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_graph(
    name: str,
    identity: Mapping[str, Any],
    build: Callable[[], tuple[nn.Module, tuple[np.ndarray, ...]]],
) -> OnnxGraph:
    """The graph ``name`` made of ``identity``, exported by ``build`` (the module and
    an example input) unless the cache folder has it already."""
    from filelock import FileLock

    folder = graphs_folder()
    path = folder / f"{name}-{graph_key(identity)}.onnx"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if not path.is_file():
                module, example = build()
                data = export_graph(module, example)
                atomic_write(path, lambda handle: handle.write(data))
    return OnnxGraph(path)


@cache
def weights_digest(path: str) -> str:
    """SHA-256 of a weights file's bytes, read once a process."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
