"""Cloud vision services: a registry of backends that answer encoded images with labels.

SPEC.md, "Symbols": the cloud model ``M`` is a black box that returns a ranked list of
labels with scores. Every backend takes encoded bytes -- exactly what would go over the
wire -- and returns the top labels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch

from adacompress.codec import ImageError, load_image
from adacompress.efficientnet import VARIANTS, load_lite, preprocess
from adacompress.labels import Answer, Label, imagenet_classes
from adacompress.registry import Registry

TOP_LABELS = 10


class ServiceError(RuntimeError):
    """The service could not answer (unreachable, failing, or refused the upload)."""


class Service(Protocol):
    """Anything that labels encoded images.

    A service may also carry ``limits`` (:class:`adacompress.codec.UploadLimits`): the
    smallest side and largest upload it accepts; the encoder then stays inside them.
    """

    name: str

    def classify(self, images: Sequence[bytes]) -> list[Answer]:
        """Answer each encoded image with its ranked labels, in order."""
        ...


BACKENDS: Registry[Service] = Registry("backend")
register_backend = BACKENDS.register


def get_backend(name: str) -> Service:
    """A registered backend, or a remote one: ``http(s)://...`` is a Google
    Vision-shaped REST endpoint (e.g. ``adacompress serve``), ``rekognition`` is AWS.

    Raises:
        ValueError: unknown name (the message lists the choices).
    """
    if name.startswith(("http://", "https://")):
        from adacompress.clients.google_rest import GoogleRestClient

        return GoogleRestClient(name)
    if name == "rekognition":
        from adacompress.clients.rekognition import RekognitionClient

        return RekognitionClient()
    try:
        return BACKENDS.build(name)
    except ValueError as err:
        raise ValueError(f"{err}, rekognition, or an http(s):// URL") from None


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

    def __init__(self, variant: str, *, batch_size: int = 8) -> None:
        self.name = variant
        self.image_size = VARIANTS[variant].image_size
        self.batch_size = batch_size
        self.model = load_lite(variant)
        self.classes = imagenet_classes()

    def classify(self, images: Sequence[bytes]) -> list[Answer]:
        answers: list[Answer] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            try:
                decoded = [load_image(data) for data in chunk]
            except ImageError as err:
                raise ServiceError(f"{self.name} refused an upload: {err}") from None
            with torch.inference_mode():
                logits = self.model(preprocess(decoded, self.image_size))
            scores, ids = torch.softmax(logits, dim=1).topk(TOP_LABELS, dim=1)
            for row_scores, row_ids in zip(scores.tolist(), ids.tolist(), strict=True):
                answers.append(
                    [
                        Label(class_id, self.classes[class_id][1], score)
                        for class_id, score in zip(row_ids, row_scores, strict=True)
                    ]
                )
        return answers


def _lite_factory(variant: str) -> Callable[[], Service]:
    return lambda: EfficientNetLiteCloud(variant)


for _variant in VARIANTS:
    register_backend(_variant)(_lite_factory(_variant))
