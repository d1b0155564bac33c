"""``local-probes``: what the local classifier says of every candidate upload.

The ``confidence`` state (Lite0's ten highest scores on the photo, the log pixel
count) plus, for each of the 25 scale-quality actions, the local EfficientNet-Lite0
on that action's upload as a cloud would see it (encoded, decoded, its 224 px view):
the share of the reference class's score it keeps (0 when that class leaves its top
five), whether its top-1 class is the reference's, and whether the reference class
is still in its top five. The reference is the q=75 upload's top-1. Beside the
confidence state, 3 numbers an action (``per_action``), which the survival policy
reads with that action alone.

The most the device can know of a cloud it does not run, at 27 Lite0 forwards and
26 encodes a decision: far above the budget of a phone, so no default agent uses it
(docs/results.md, "A student of the cloud").
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from adacompress.core.efficientnet import LiteNetwork, preprocess_array
from adacompress.core.engine import engine_tag
from adacompress.device.actions import REFERENCE_ACTION, get_action_set
from adacompress.device.codec import Resized, encode
from adacompress.device.features.base import register_extractor
from adacompress.device.features.lite import CONFIDENCE_TOP, log_pixels, top_scores
from basekit.images import load_image

TOP_LABELS = 5
"""Labels a cloud answers with (as the emulated services)."""

CLOUD_SIDE = 224
"""The local classifier's input side (EfficientNet-Lite0's)."""


class LocalProbeFeatures:
    """The confidence state plus the local classifier's verdict on each candidate.

    Args:
        actions: the action set whose candidates are probed.

    Shape: ``extract`` returns (len(images), 11 + 3 * actions), float32.
    """

    per_action = 3

    def __init__(self, actions: str = "scale-quality") -> None:
        self.name = "local-probes"
        self.cache_name = self.name + engine_tag()
        self.actions = get_action_set(actions)
        self.network = LiteNetwork("lite0", CLOUD_SIDE, "answer")
        self.dim = CONFIDENCE_TOP + 1 + self.per_action * len(self.actions)

    def extract(self, images: list[Image.Image]) -> np.ndarray:
        return np.stack([self._state(image) for image in images]).astype(np.float32)

    def _state(self, image: Image.Image) -> np.ndarray:
        resized: Resized = {}
        uploads = [
            load_image(encode(image, action, resized=resized))
            for action in (REFERENCE_ACTION, *self.actions)
        ]
        rows = self.network(preprocess_array([image, *uploads], CLOUD_SIDE))
        original, reference, candidates = rows[0], rows[1], rows[2:]
        label = int(reference.argmax())
        top5 = np.argsort(-candidates, axis=1, kind="stable")[:, :TOP_LABELS]
        kept = (top5 == label).any(axis=1)
        share = np.where(kept, candidates[:, label] / reference[label], 0.0)
        same = candidates.argmax(axis=1) == label
        probes = np.stack([share, same, kept], axis=1).reshape(-1)
        confidence = top_scores(original[None])[0]
        return np.concatenate([confidence, [log_pixels(image)], probes])


register_extractor("local-probes")(LocalProbeFeatures)
