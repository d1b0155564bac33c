"""A cheaper state, measured: what each candidate state costs on the device and what
it keeps of the shipped agents' bytes.

    python benchmarks/research/state_cost.py [--backends lite0 lite1 lite2]
        [--images 60] [--threads 2] [--json out/state_cost.json]

Candidates: one Lite0 forward (its ten highest scores and the log pixel count), and
the ``confidence-scales`` kind (the same plus three downscale probes):

- ``confidence``, ``confidence@160``: one forward at 224 / 160 px (the shipped state
  is ``confidence@160``);
- ``confidence-scales``: the probes downscaled from the photo (the state shipped
  before);
- ``confidence-probes``: the probes blurred from the network's 224 px view;
- ``confidence-probes@160``, ``@128``: the same at a smaller side;
- ``confidence-probes+int8``: ONNX Runtime static int8 (QDQ, per-channel weights),
  calibrated on the views of the first 64 training photos.

Per candidate: the features' median time, one photo at a time, side by side with
the photo's decode on the first ``--images`` test photos (timing only, nothing
scored), and per backend the shipped scale-quality recipe trained on that state
(train split only): the size ratio its 5-fold cross-validation reaches at 0.98,
0.985 and 0.99 accuracy (the calibration table of ``train``). The held-out split
scores nothing here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from adacompress.core.datasets import imagenet_split
from adacompress.core.efficientnet import LiteNetwork, model_input
from adacompress.core.engine import OnnxGraph, weights_digest
from adacompress.device.features import get_extractor
from adacompress.device.features.base import (
    EXTRACTORS,
    FeatureExtractor,
    register_extractor,
)
from adacompress.device.features.lite import ScaleConfidenceFeatures, state_views
from adacompress.learning.presets import TRAIN_PRESETS
from adacompress.learning.train import train
from basekit.atomic import atomic_write_json
from basekit.images import load_image
from basekit.threads import configure_threads

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from _common import (  # noqa: E402  (benchmarks/_common.py)
    SMOKE_OVERRIDES,
    add_smoke,
    limit_splits,
    smoke_path,
)

TARGETS = (0.98, 0.985, 0.99)
CALIBRATION_PHOTOS = 64
INT8 = "confidence-probes+int8"
OVERRIDES: dict[str, Any] = {}
"""More training overrides (a smoke run's few steps)."""


def quantized(folder: Path) -> Path:
    """The ``confidence-probes`` network as static int8, calibrated on train views.

    Runs before :func:`configure_threads`: the quantiser makes sessions of its own.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    probes = ScaleConfidenceFeatures("view")
    views = [
        model_input(state_views(load_image(path), probes.preprocessing))
        for path in imagenet_split("train")[:CALIBRATION_PHOTOS]
    ]
    fp32 = LiteNetwork("lite0", 224)._run.path

    class Views(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(views)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {"input": batch}

    prepared, out = folder / "prepared.onnx", folder / "int8.onnx"
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    quantize_static(
        str(prepared),
        str(out),
        Views(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return out


def candidates(int8: Path) -> dict[str, Callable[[], FeatureExtractor]]:
    def int8_probes() -> FeatureExtractor:
        extractor = ScaleConfidenceFeatures("view")
        extractor.name = INT8
        extractor.cache_name = f"{INT8}:{weights_digest(str(int8))[:16]}"
        extractor.network = OnnxGraph(int8)  # type: ignore[assignment]
        return extractor

    return {
        "confidence": lambda: get_extractor("confidence"),
        "confidence@160": lambda: get_extractor("confidence@160"),
        "confidence-scales": lambda: get_extractor("confidence-scales"),
        "confidence-probes": lambda: get_extractor("confidence-probes"),
        "confidence-probes@160": lambda: ScaleConfidenceFeatures("view", 160),
        "confidence-probes@128": lambda: ScaleConfidenceFeatures("view", 128),
        INT8: int8_probes,
    }


def timings(
    extractors: dict[str, FeatureExtractor], n_images: int
) -> dict[str, dict[str, float]]:
    """Median ms of decode and of each state, one test photo at a time."""
    paths = imagenet_split("test")[:n_images]
    ms: dict[str, list[float]] = {"decode": [], **{name: [] for name in extractors}}
    for i, path in enumerate([paths[0], *paths]):  # the first warms up
        start = time.perf_counter()
        image = load_image(path)
        times = {"decode": time.perf_counter() - start}
        for name, extractor in extractors.items():
            start = time.perf_counter()
            extractor.extract([image])
            times[name] = time.perf_counter() - start
        if i:
            for name, seconds in times.items():
                ms[name].append(1000 * seconds)
    decode = statistics.median(ms["decode"])
    return {
        name: {"ms": statistics.median(v), "x_decode": statistics.median(v) / decode}
        for name, v in ms.items()
    }


def cv_sizes(state: str, backend: str, out: Path) -> dict[str, float | None]:
    """The shipped recipe on ``state``: its CV size ratio at each target."""
    settings = TRAIN_PRESETS.get(
        "shipped-scale-quality",
        {
            "cloud": {"backend": backend},
            "features": state,
            "out": str(out / f"{backend}-{state}.pt"),
            "progress": False,
            **OVERRIDES,
        },
    )
    table = train(settings)["calibration"]["table"]
    sizes: dict[str, float | None] = {}
    for target in TARGETS:
        reached = [
            row["cv_size_ratio"] for row in table if row["cv_accuracy"] >= target
        ]
        sizes[str(target)] = min(reached) if reached else None
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["lite0", "lite1", "lite2"])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path("out/state_cost.json"))
    add_smoke(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        limit_splits()
        OVERRIDES.update(SMOKE_OVERRIDES)
        args.backends, args.images = args.backends[:1], 2
        args.json = smoke_path(args.json)
    with tempfile.TemporaryDirectory() as tmp:
        int8 = quantized(Path(tmp))
        configure_threads(args.threads)
        makers = candidates(int8)
        for name, make in makers.items():
            if name not in EXTRACTORS:
                register_extractor(name)(make)
        timed = timings({name: make() for name, make in makers.items()}, args.images)
        cv = {
            name: {b: cv_sizes(name, b, Path(tmp)) for b in args.backends}
            for name in makers
        }
    report: dict[str, Any] = {
        "images_timed": args.images,
        "threads": args.threads,
        "timing": timed,
        "cv_size_ratio": cv,
    }
    atomic_write_json(args.json, report)
    print(json.dumps(report, indent=2))
    header = " | ".join(f"{b} CV size at {TARGETS[-1]}" for b in args.backends)
    print(f"\n| state | features (x decode) | {header} |")
    print("|---" * (2 + len(args.backends)) + "|")
    for name in makers:
        sizes = [cv[name][b][str(TARGETS[-1])] for b in args.backends]
        cells = " | ".join("-" if s is None else f"{s:.3f}" for s in sizes)
        print(f"| {name} | {timed[name]['x_decode']:.1f} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
