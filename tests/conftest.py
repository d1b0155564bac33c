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
