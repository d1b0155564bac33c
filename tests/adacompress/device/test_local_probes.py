"""The ``local-probes`` state: the local classifier's verdict on every candidate
upload is what the ``lite0`` service answers for that upload."""

from __future__ import annotations

import numpy as np
import pytest

from adacompress.cloud.backends import get_backend
from adacompress.core.datasets import builtin_photos
from adacompress.device.actions import REFERENCE_ACTION, get_action_set
from adacompress.device.codec import encode
from adacompress.device.compressor import Compressor
from adacompress.device.export import export_agent
from adacompress.device.features import get_extractor
from adacompress.device.features.lite import CONFIDENCE_TOP
from basekit.images import load_image


def test_each_action_reads_what_the_local_service_answers() -> None:
    extractor = get_extractor("local-probes")
    actions = get_action_set("scale-quality")
    image = load_image(builtin_photos()[0])
    state = extractor.extract([image])[0]
    assert state.shape == (CONFIDENCE_TOP + 1 + 3 * len(actions),)
    probes = state[CONFIDENCE_TOP + 1 :].reshape(len(actions), 3)
    cloud = get_backend("lite0")
    reference, *answers = cloud.classify(
        [encode(image, a) for a in (REFERENCE_ACTION, *actions)]
    )
    label = reference[0].class_id
    for (share, same, kept), answer in zip(probes, answers, strict=True):
        ids = [lab.class_id for lab in answer]
        assert kept == (label in ids)
        assert same == (ids[0] == label)
        expected = answer[ids.index(label)].score / reference[0].score if kept else 0
        assert share == pytest.approx(expected, abs=1e-5)
    assert probes[:, 2].any() and not probes[:, 2].all()  # a mix, on this photo


def test_a_probes_agent_decides_and_does_not_export(tmp_path: object) -> None:
    agent = Compressor.load("lite1-probes")
    assert agent.card.features == "local-probes"
    assert agent.policy.settings.per_action == 3
    upload = agent.compress(builtin_photos()[0])
    assert upload.nbytes > 0
    with pytest.raises(ValueError, match="do not export"):
        export_agent(agent, tmp_path)  # type: ignore[arg-type]
    assert np.isfinite(agent.features([load_image(builtin_photos()[1])])).all()
