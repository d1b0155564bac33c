"""``pirl train``'s defaults are the CIFAR-10 benchmark's measured setting (issue 36):
the equal-epochs table in docs/results.md is the defaults' own number."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from pirl.train import TrainSettings

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def benchmark_defaults() -> argparse.Namespace:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(
            "pirl_cifar10", BENCHMARKS / "pirl_cifar10.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    parser = argparse.ArgumentParser()
    module.add_training_options(parser)
    return parser.parse_args([])


def test_pirl_train_defaults_are_the_benchmarks_measured_setting() -> None:
    measured, defaults = benchmark_defaults(), TrainSettings()
    for name in (
        "arch",
        "width",
        "grid_size",
        "patch_size",
        "batch_size",
        "lr",
        "n_negatives",
        "lam",
        "loss",
    ):
        assert getattr(defaults, name) == getattr(measured, name), name
    assert defaults.cifar_stem and defaults.image_size == 32
