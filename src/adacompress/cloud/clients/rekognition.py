"""AWS Rekognition ``DetectLabels`` adapter (the paper's "Amazon" cloud).

Raw bytes go up as ``Image.Bytes``; ``Confidence`` (0-100) becomes a score in 0..1.
Rekognition returns label names, not ImageNet ids: each label's id is
:func:`name_class_id` of its name, so metrics compare names. Uploads Rekognition would
refuse (over 5 MB, a side under 80 px) are refused here before anything is sent.
Retries are botocore's ``standard`` mode only -- no second layer on top.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from PIL import Image, UnidentifiedImageError

from adacompress.cloud.service import ServiceError, ServiceUnreachable
from adacompress.core.labels import Answer, Label, name_class_id
from adacompress.core.limits import REKOGNITION_FORMATS, UploadLimits

MAX_BYTES = 5 * 1024 * 1024
"""Rekognition's limit for image bytes sent inline."""
MIN_SIDE = 80
"""Rekognition's minimum image height and width in pixels."""


def make_client(
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    max_attempts: int = 4,
    timeout: float = 30.0,
    **credentials: str,
) -> Any:
    """A boto3 Rekognition client; botocore ``standard`` retries, ``max_attempts``
    in all (the first included), each attempt a share of ``timeout`` seconds."""
    from basekit.extras import require

    boto3 = require(
        "boto3", extra="aws", feature="the rekognition backend", package="adacompress"
    )
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=min(10.0, timeout / max_attempts),
        read_timeout=timeout / max_attempts,
    )
    session = boto3.session.Session()
    return session.client(
        "rekognition",
        region_name=region or session.region_name or "us-east-1",
        endpoint_url=endpoint_url,
        config=config,
        **credentials,
    )


def check_upload(data: bytes) -> None:
    """Refuse what Rekognition would refuse, before sending it.

    Raises:
        ServiceError: over 5 MB, not a JPEG or PNG, or a side under 80 px.
    """
    if len(data) > MAX_BYTES:
        raise ServiceError(
            f"rekognition refuses uploads over 5 MB (this one is {len(data):,} bytes)"
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            format_ = (image.format or "").lower()
    except (UnidentifiedImageError, OSError):
        raise ServiceError("rekognition refused an upload: not an image") from None
    if format_ not in REKOGNITION_FORMATS:
        raise ServiceError(
            f"rekognition takes only JPEG and PNG uploads (this one is {format_})"
        )
    if min(width, height) < MIN_SIDE:
        raise ServiceError(
            f"rekognition refuses images under {MIN_SIDE} px a side "
            f"(this one is {width}x{height})"
        )


class RekognitionClient:
    """Labels images with AWS Rekognition ``detect_labels``.

    Args:
        client: a boto3 Rekognition client (tests inject a stubbed one); default:
            :func:`make_client` (region from ``$AWS_REGION``/config, else us-east-1).
        max_labels: labels asked for per image.

    Examples:
        >>> cloud = RekognitionClient()
        >>> cloud.classify([jpeg_bytes])[0][0].name
        'Cat'
    """

    name = cache_name = "rekognition"

    limits = UploadLimits(
        min_side=MIN_SIDE, max_bytes=MAX_BYTES, formats=REKOGNITION_FORMATS
    )
    """what the device may send (the encoder honours it)"""

    def __init__(
        self, client: Any | None = None, *, max_labels: int = 10, timeout: float = 30.0
    ) -> None:
        self.client = client if client is not None else make_client(timeout=timeout)
        self.max_labels = max_labels

    def classify(self, images: Sequence[bytes]) -> list[Answer]:
        for data in images:
            check_upload(data)
        return [self._detect(data) for data in images]

    def _detect(self, data: bytes) -> Answer:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.detect_labels(
                Image={"Bytes": data}, MaxLabels=self.max_labels
            )
        except ClientError as err:
            error = err.response.get("Error", {})
            code = str(error.get("Code", "error"))
            message = f"rekognition: {code}: {error.get('Message', str(err))}"
            status = int(
                err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            )
            kind = (
                ServiceUnreachable
                if code in UNREACHABLE or status >= 500
                else ServiceError
            )
            raise kind(message.splitlines()[0]) from None
        except BotoCoreError as err:  # no connection, timeouts
            raise ServiceUnreachable(f"rekognition: {err}".splitlines()[0]) from None
        try:
            return parse_labels(response)
        except (KeyError, TypeError, ValueError) as err:
            raise ServiceError(f"rekognition sent a malformed answer: {err}") from None


UNREACHABLE = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "InternalServerError",
    "ServiceUnavailableException",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
}
"""Error codes after which every call would fail alike (the breaker counts them)."""


def parse_labels(response: Any) -> Answer:
    """``DetectLabels``'s answer -> labels ranked by score (confidence / 100)."""
    items = response.get("Labels") or []
    labels = []
    for item in items:
        name, confidence = item["Name"], item.get("Confidence", 0.0)
        if not isinstance(name, str) or isinstance(confidence, bool):
            raise ValueError("a label is not (name, confidence)")
        score = float(confidence) / 100.0
        if score != score:
            raise ValueError("a label's confidence is NaN")
        labels.append(Label(name_class_id(name), name, min(1.0, max(0.0, score))))
    return sorted(labels, key=lambda label: -label.score)
