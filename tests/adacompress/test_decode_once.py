"""Each photo is decoded once, whatever `run`, `evaluate` and `compress` do with it:
features, uploads, sizes, the reference and the scene statistics share one decode
(and in `run`, one read and hash of the file)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from PIL import PngImagePlugin

from adacompress.core import datasets
from adacompress.device.actions import paper_actions
from adacompress.device.compressor import Compressor
from adacompress.device.policies.q import DQNPolicy
from adacompress.device.policies.settings import PolicySettings
from adacompress.exchange.cache import AnswerCache
from adacompress.exchange.environment import CompressionEnv
from adacompress.learning.evaluate import collect
from adacompress.runtime.loop import Runtime
from adacompress.runtime.settings import RuntimeSettings
from adacompress.runtime.store import RunStore
from basekit.images import read_image_file
from tests.adacompress.fakes import MeanFeatures, SizeCloud, write_photos


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts decodes of the PNG photos (the uploads are JPEG)."""
    counts: Counter[str] = Counter()
    load = PngImagePlugin.PngImageFile.load

    def counting(self: PngImagePlugin.PngImageFile) -> object:
        if getattr(self, "_im", None) is None:  # not decoded yet
            counts[str(self.filename or "photo")] += 1
        return load(self)

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", counting)
    return counts


def make_env(tmp_path: Path) -> CompressionEnv:
    return CompressionEnv(
        SizeCloud(),
        AnswerCache(tmp_path / "cache.sqlite"),
        actions=paper_actions(),
        extractor=MeanFeatures(),
    )


def policy() -> DQNPolicy:
    return DQNPolicy(PolicySettings(state_dim=3, n_actions=10, seed=0))


def test_run_reads_and_decodes_each_photo_once(
    tmp_path: Path, decodes: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Estimates upload the choice, the reference and a cheaper probe, and watch the
    scene: all from one read (and hash) of the file and one decode."""
    paths = write_photos(tmp_path / "img", 4)
    decodes.clear()
    reads: Counter[str] = Counter()

    def counting_read(path: Path, **kwargs: object) -> bytes:
        reads[str(path)] += 1
        return read_image_file(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(datasets, "read_image_file", counting_read)
    always = RuntimeSettings.of(p_est_initial=1.0, p_est_min=1.0, p_est_max=1.0)
    env = make_env(tmp_path)
    compressor = Compressor(policy(), MeanFeatures(), paper_actions())
    metadata = {"backend": "size-cloud", "features": "mean"}
    store = RunStore(tmp_path / "state")
    runtime = Runtime(env, compressor, always, store, metadata=metadata)
    records = [runtime.process(path) for path in paths]
    assert [r.kind for r in records] == ["estimate"] * 4
    assert sum(r.calls for r in records) >= 8  # reference and choice, each photo
    assert sum(decodes.values()) == len(paths)
    assert sorted(reads.values()) == [1] * len(paths)


def test_evaluate_decodes_each_photo_once(
    tmp_path: Path, decodes: Counter[str]
) -> None:
    paths = write_photos(tmp_path / "img", 20)  # more than one feature chunk
    decodes.clear()
    collected = collect(make_env(tmp_path), paths, progress=False)
    assert len(collected.outcomes) == 20
    assert sum(decodes.values()) == len(paths)


def test_compress_decodes_each_photo_once(
    tmp_path: Path, decodes: Counter[str]
) -> None:
    paths = write_photos(tmp_path / "img", 3)
    decodes.clear()
    compressor = Compressor(policy(), MeanFeatures(), paper_actions())
    uploads = compressor.compress_many(paths)
    assert len(uploads) == 3 and sum(decodes.values()) == len(paths)
