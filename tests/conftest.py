"""Shared fixtures: an isolated answer cache per test, and where the data is.

Helpers that make images live in :mod:`tests.helpers`."""

from __future__ import annotations

from pathlib import Path

import pytest

from adacompress.core.datasets import data_root


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own answer cache unless it passes one explicitly."""
    monkeypatch.setenv("ADACOMPRESS_CACHE", str(tmp_path / "cache.sqlite"))


@pytest.fixture(scope="session")
def imagenet_dir() -> Path:
    folder = data_root() / "imagenet-samples"
    if not folder.is_dir():
        pytest.skip(f"imagenet-samples not found at {folder} (set ADACOMPRESS_DATA)")
    return folder


@pytest.fixture(scope="session")
def lite0_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default agent (lite0-scale-quality) exported once a session; read it,
    never change it (copy it first)."""
    from adacompress.device.compressor import Compressor
    from adacompress.device.export import export_agent

    folder = tmp_path_factory.mktemp("export") / "lite0"
    export_agent(Compressor.load("lite0"), folder)
    return folder
