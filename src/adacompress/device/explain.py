"""Where in a picture the agent's choice comes from: an occlusion map.

Cover one patch of the image at a time with its mean colour, and measure how much
the agent's preference for its choice over the runner-up -- the difference of their
scores (Q-values, or survival logits) -- falls. The runner-up of a Q-policy is the
action with the next best score; that of the survival policy, which sends the
cheapest action it trusts, is the next cheaper candidate (the one it did not trust).
Regions whose covering lowers the preference are what the choice rests on. This
works for every feature extractor, differentiable or not (Zeiler & Fergus, ECCV 2014,
occlusion sensitivity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from adacompress.device.actions import Action
from adacompress.device.compressor import Compressor


@dataclass(frozen=True)
class Explanation:
    """An occlusion map and the choice it explains.

    Attributes:
        heat: the preference lost when each patch is covered, per pixel of the
            image, shape (height, width); positive: the patch supports the choice.
        chosen: the action sent.
        runner_up: the action the agent preferred the choice to (see above).
        preference: score(chosen) - score(runner_up) on the whole image.
    """

    heat: np.ndarray
    chosen: Action
    runner_up: Action
    preference: float


def explain(
    compressor: Compressor, image: Image.Image, *, grid: int = 8
) -> Explanation:
    """The occlusion map of ``compressor``'s choice for ``image``.

    Patches are ``1/grid`` of each side, moved by half a patch, so each pixel is
    covered by up to four patches; its heat is their mean.
    """
    if grid < 2:
        raise ValueError(f"grid must be at least 2, got {grid}")
    features = compressor.features([image])
    policy = compressor.learned
    base = policy.scores(features)[0]
    chosen = int(compressor.choose(features)[0])
    runner_up = policy.runner_up(base, chosen, compressor.candidates)
    width, height = image.size
    pw, ph = max(1, width // grid), max(1, height // grid)
    boxes = [
        (x, y, min(width, x + pw), min(height, y + ph))
        for y in range(0, height - ph // 2, max(1, ph // 2))
        for x in range(0, width - pw // 2, max(1, pw // 2))
    ]
    fill = tuple(int(c) for c in np.asarray(image).reshape(-1, 3).mean(axis=0))
    covered = []
    for box in boxes:
        copy = image.copy()
        ImageDraw.Draw(copy).rectangle(box, fill=fill)
        covered.append(copy)
    scores = compressor.learned.scores(compressor.features(covered))
    drop = (base[chosen] - base[runner_up]) - (scores[:, chosen] - scores[:, runner_up])
    heat = np.zeros((height, width))
    count = np.zeros((height, width))
    for (x0, y0, x1, y1), value in zip(boxes, drop, strict=True):
        heat[y0:y1, x0:x1] += value
        count[y0:y1, x0:x1] += 1
    return Explanation(
        heat=heat / np.maximum(count, 1),
        chosen=compressor.actions[chosen],
        runner_up=compressor.actions[runner_up],
        preference=float(base[chosen] - base[runner_up]),
    )
