"""Google Vision-shaped REST client: the emulator (``adacompress serve``) or the real
API.

``POST {base}/v1/images:annotate`` with base64 images and ``LABEL_DETECTION``; each
``labelAnnotations`` entry becomes a :class:`Label`. Label ids: the emulator puts the
ImageNet wnid in ``mid``, mapped back to the class index; any other ``mid`` (the real
API's ``/m/...`` ids) gets :func:`name_class_id` of the description, so metrics then
compare label names. Requests and labels are :mod:`adacompress.cloud.vision`'s
models, the ones the emulator answers with.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import httpx
from pydantic import ValidationError

from adacompress.cloud.clients.retry import (
    RetryPolicy,
    TokenBucket,
    Transient,
    parse_retry_after,
)
from adacompress.cloud.service import ServiceError, ServiceUnreachable
from adacompress.cloud.vision import (
    MAX_IMAGES,
    AnnotateRequest,
    ImageAnswer,
    dump,
    one_line,
)
from adacompress.core.labels import Answer, Label, name_class_id, wnid_class_ids
from adacompress.core.limits import GOOGLE_VISION_FORMATS, UploadLimits

ANNOTATE_PATH = "/v1/images:annotate"
MAX_IMAGES_PER_REQUEST = MAX_IMAGES
MAX_REQUEST_BYTES = 10 * 1000 * 1000
"""Google Vision's cap on one JSON request."""
MAX_IMAGE_BYTES = 7 * 1024 * 1024
"""The largest image whose base64 (4/3 of it) still fits one request."""
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
"""A larger answer is refused unread (sixteen images' labels take kilobytes)."""
RETRY_STATUS = {429, 500, 502, 503, 504}
API_KEY_ENV = ("ADACOMPRESS_API_KEY", "GOOGLE_API_KEY")
"""Environment variables read, in order, for the API key."""


def annotate_url(base: str) -> str:
    """The annotate endpoint under ``base`` (``http://host:port`` or a full URL)."""
    base = base.rstrip("/")
    return base if base.endswith(":annotate") else base + ANNOTATE_PATH


def annotate_request(images: Sequence[bytes], max_results: int) -> dict[str, Any]:
    """The JSON body of one ``images:annotate`` call."""
    contents = [base64.b64encode(data).decode() for data in images]
    return dump(AnnotateRequest.labels(contents, max_results))


def parse_labels(response: Any) -> Answer:
    """One ``responses[i]`` -> labels ranked by score (scores clipped to 0..1).

    An image without labels gets an empty answer.

    Raises:
        ValueError: the response is not of the documented shape (one line).
    """
    if not isinstance(response, dict):
        raise ValueError(f"a response is {type(response).__name__}, not an object")
    try:
        answer = ImageAnswer.model_validate(response)
    except ValidationError as err:
        raise ValueError(one_line(err)) from None
    known = wnid_class_ids()
    labels = [
        Label(
            known.get(item.mid, name_class_id(item.description)),
            item.description,
            min(1.0, max(0.0, item.score)),
        )
        for item in answer.labelAnnotations or []
    ]
    return sorted(labels, key=lambda label: -label.score)


def error_message(response: httpx.Response, body: bytes) -> str:
    """One line from a Google-style error ``body``, or the status line."""
    try:
        error = json.loads(body)["error"]
        text = f"{error.get('status') or error.get('code')}: {error.get('message')}"
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        text = response.reason_phrase or "no error body"
    return f"HTTP {response.status_code} {text}".splitlines()[0]


def batches(
    images: Sequence[bytes], size: int, max_bytes: int
) -> list[Sequence[bytes]]:
    """Consecutive runs of at most ``size`` images whose base64 fits ``max_bytes``
    (an image too large on its own goes alone; the service then refuses it)."""
    runs: list[Sequence[bytes]] = []
    start, total = 0, 0
    for index, data in enumerate(images):
        encoded = (len(data) + 2) // 3 * 4
        if index > start and (index - start == size or total + encoded > max_bytes):
            runs.append(images[start:index])
            start, total = index, 0
        total += encoded
    if start < len(images):
        runs.append(images[start:])
    return runs


def _read_body(
    response: httpx.Response, deadline: float, late: Callable[[], Exception]
) -> bytes:
    """The answer's body, read as it arrives, never past ``deadline`` (the last
    wait for a byte is bounded by the read timeout) nor past
    :data:`MAX_RESPONSE_BYTES`.

    Raises:
        late(): the deadline passed (a drip is a timeout).
        ServiceError: the answer is too large.
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise ServiceError(f"answer of {int(declared):,} bytes refused unread")
    data = bytearray()
    for piece in response.iter_bytes():
        data += piece
        if len(data) > MAX_RESPONSE_BYTES:
            raise ServiceError(f"answer over {MAX_RESPONSE_BYTES:,} bytes refused")
        if time.monotonic() > deadline:
            raise late()
    return bytes(data)


class GoogleRestClient:
    """Labels images through a Google Vision-shaped ``images:annotate`` endpoint.

    Args:
        base_url: ``http://127.0.0.1:8080`` (emulator) or
            ``https://vision.googleapis.com``.
        api_key: sent as ``x-goog-api-key``; default: ``$ADACOMPRESS_API_KEY`` or
            ``$GOOGLE_API_KEY``.
        batch_size: images per request (at most 16). 8 matches the in-process
            backends' model batches, so the emulator answers bit for bit alike.
        max_results: labels asked for per image.
        timeout: seconds one :meth:`classify` chunk may take, retries included: a
            deadline for the whole call (connect, send, the answer's headers and
            body), each attempt getting what is left of it; a service that drips
            its answer is cut off there, as a timeout.
        retry: backoff policy for 429/5xx/timeouts/resets.
        rate_limit: requests per second (token bucket); None for no limit.
        transport: an httpx transport (tests).

    Examples:
        >>> client = GoogleRestClient("http://127.0.0.1:8080")
        >>> client.classify([jpeg_bytes])[0][0].name
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        batch_size: int = 8,
        max_results: int = 10,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        rate_limit: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_IMAGES_PER_REQUEST:
            raise ValueError(f"batch_size must be in 1..{MAX_IMAGES_PER_REQUEST}")
        self.name = base_url.rstrip("/")
        self.cache_name = self.name
        """its answers are cached under its URL"""
        self.url = annotate_url(base_url)
        if api_key is None:
            api_key = next(
                (os.environ[v] for v in API_KEY_ENV if v in os.environ), None
            )
        headers = {"x-goog-api-key": api_key} if api_key else {}
        self.batch_size = batch_size
        self.max_results = max_results
        self.timeout = timeout
        self.retry = retry or RetryPolicy(total_timeout=timeout)
        self.bucket = TokenBucket(rate_limit, 1) if rate_limit else None
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers=headers,
            transport=transport,
        )

    limits = UploadLimits(max_bytes=MAX_IMAGE_BYTES, formats=GOOGLE_VISION_FORMATS)
    """what the device may send (the encoder honours it)"""

    def close(self) -> None:
        self._http.close()

    def classify(self, images: Sequence[bytes]) -> list[Answer]:
        answers: list[Answer] = []
        for chunk in batches(images, self.batch_size, MAX_REQUEST_BYTES):
            deadline = time.monotonic() + self.timeout
            send = partial(self._post, chunk, deadline)
            answers.extend(self.retry.call(send, what=self.url))
        return answers

    def _post(self, images: Sequence[bytes], deadline: float) -> list[Answer]:
        if self.bucket:
            self.bucket.acquire()
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._late()
        body = annotate_request(images, self.max_results)
        try:
            with self._http.stream(
                "POST",
                self.url,
                json=body,
                timeout=httpx.Timeout(left, connect=min(left, 10.0)),
            ) as response:
                data = _read_body(response, deadline, self._late)
        except httpx.TimeoutException as err:
            raise Transient(f"timed out ({type(err).__name__})") from None
        except httpx.TransportError as err:
            raise Transient(f"connection failed: {err or type(err).__name__}") from None
        return self._answers(response, data, len(images))

    def _late(self) -> ServiceUnreachable:
        """The deadline passed: not retried, counted by a circuit breaker."""
        return ServiceUnreachable(
            f"{self.url} timed out: no complete answer within {self.timeout:g} s"
        )

    def _answers(
        self, response: httpx.Response, data: bytes, n_images: int
    ) -> list[Answer]:
        if response.status_code in RETRY_STATUS:
            raise Transient(
                error_message(response, data),
                parse_retry_after(response.headers.get("retry-after")),
            )
        if response.status_code in (401, 403):  # every call will fail alike
            raise ServiceUnreachable(
                f"{self.name} refused the key: {error_message(response, data)}"
            )
        if response.status_code != 200:
            raise ServiceError(
                f"{self.name} refused the request: {error_message(response, data)}"
            )
        try:
            results = json.loads(data)["responses"]
        except (ValueError, KeyError, TypeError, RecursionError):
            raise ServiceError(f"{self.name} sent a malformed answer") from None
        if not isinstance(results, list) or len(results) != n_images:
            count = len(results) if isinstance(results, list) else "none"
            raise ServiceError(f"{self.name} answered {count} of {n_images} images")
        answers = []
        for index, result in enumerate(results):
            if isinstance(result, dict) and "error" in result:
                error = result["error"]
                message = error.get("message") if isinstance(error, dict) else error
                raise ServiceError(
                    f"{self.name} refused image {index}: {message or 'no message'}"
                )
            try:
                answers.append(parse_labels(result))
            except ValueError as err:
                raise ServiceError(
                    f"{self.name} sent a malformed answer for image {index}: {err}"
                ) from None
        return answers
