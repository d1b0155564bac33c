"""Emulated clouds: pretrained EfficientNet-Lite ImageNet classifiers that answer
uploads in process, as a service would over the wire (decode, classify, top labels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adacompress.cloud.service import TOP_LABELS, ServiceError
from adacompress.core.efficientnet import VARIANTS, LiteNetwork, preprocess_array
from adacompress.core.engine import engine_tag
from adacompress.core.labels import Answer, Label, imagenet_classes
from adacompress.core.limits import GOOGLE_VISION_FORMATS, UploadLimits
from basekit.images import ImageError, load_image


class EfficientNetLiteCloud:
    """An emulated cloud: a pretrained EfficientNet-Lite ImageNet classifier.

    Args:
        variant: ``"lite0"``, ``"lite1"`` or ``"lite2"`` (input 224, 240 or 260 px).
        batch_size: images per forward pass.

    Examples:
        >>> cloud = EfficientNetLiteCloud("lite0")
        >>> answer = cloud.classify([jpeg_bytes])[0]
        >>> answer[0].name, answer[0].score
    """

    limits = UploadLimits(formats=GOOGLE_VISION_FORMATS)
    """shaped like Google Vision: it takes what Google documents"""

    def __init__(self, variant: str, *, batch_size: int = 8) -> None:
        self.name = variant
        self.cache_name = variant + engine_tag()
        """the name its answers are cached under: ONNX Runtime's and eager answers
        may differ in the last bits, so they never mix"""
        self.image_size = VARIANTS[variant].image_size
        self.batch_size = batch_size
        self.network = LiteNetwork(variant, self.image_size, "answer")
        self.classes = imagenet_classes()

    def classify(self, images: Sequence[bytes]) -> list[Answer]:
        answers: list[Answer] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            try:
                decoded = [load_image(data) for data in chunk]
            except ImageError as err:
                raise ServiceError(f"{self.name} refused an upload: {err}") from None
            probabilities = self.network(preprocess_array(decoded, self.image_size))
            ids = np.argsort(-probabilities, axis=1, kind="stable")[:, :TOP_LABELS]
            scores = np.take_along_axis(probabilities, ids, axis=1)
            for row_scores, row_ids in zip(scores.tolist(), ids.tolist(), strict=True):
                answers.append(
                    [
                        Label(class_id, self.classes[class_id][1], score)
                        for class_id, score in zip(row_ids, row_scores, strict=True)
                    ]
                )
        return answers
