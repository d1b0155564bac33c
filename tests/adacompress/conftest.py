"""Fixtures shared by the AdaCompress tests: one export of the default agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from adacompress.device.compressor import Compressor
from adacompress.device.export import export_agent


@pytest.fixture(scope="session")
def lite0_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default agent (lite0-scale-quality) exported; read it, never change it."""
    folder = tmp_path_factory.mktemp("export") / "lite0"
    export_agent(Compressor.load("lite0"), folder)
    return folder
