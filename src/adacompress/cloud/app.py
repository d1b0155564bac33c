"""The service's app: a request traced from its key to its answer.

The event loop only reads requests (:mod:`.admission`); parsing, decoding and
classifying run in worker threads, at most ``max_concurrent`` requests at a time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import os
import random
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from adacompress.cloud.admission import (
    BadRequest,
    BodyBudget,
    BodyPace,
    DecodeBudget,
    read_body,
)
from adacompress.cloud.backends import get_backend
from adacompress.cloud.connections import ConnectionLimits
from adacompress.cloud.faults import inject_fault
from adacompress.cloud.service import Service, ServiceError
from adacompress.cloud.settings import ServeSettings
from adacompress.cloud.vision import (
    MAX_IMAGES,
    AnnotateResponse,
    Health,
    ImageAnswer,
    dump,
)
from adacompress.cloud.wire import (
    ANNOTATE_ROUTE,
    busy,
    document_request,
    error_response,
    image_error,
    label_annotations,
    parse_requests,
)
from adacompress.core.labels import Answer
from basekit.images import ImageError, image_header, load_image

READING_REQUESTS = 4
"""Bodies of the largest size the service reads at once (smaller ones: more); one
client address reads at most one."""
MAX_KEY_BYTES = 4096
"""An API key file larger than this is refused unread."""
API_KEY_ENV = "ADACOMPRESS_SERVE_KEY"
"""API key the service requires when ``--api-key`` is not given."""

log = logging.getLogger("uvicorn.error")
"""The service's log: uvicorn's, so that its lines look alike."""


def read_api_key(settings: ServeSettings) -> str | None:
    """The key the service requires: the file's content, else $ADACOMPRESS_SERVE_KEY,
    else none.

    Raises:
        ValueError: the key file cannot be read or is empty (one line).
    """
    if settings.api_key_file:
        path = Path(settings.api_key_file)
        try:
            if not stat.S_ISREG(path.stat().st_mode):
                raise ValueError(f"the API key file {path} is not a regular file")
            with path.open("rb") as handle:
                raw = handle.read(MAX_KEY_BYTES + 1)
            if len(raw) > MAX_KEY_BYTES:
                raise ValueError(
                    f"the API key file {path} is over {MAX_KEY_BYTES} bytes"
                )
            key = raw.decode("utf-8").strip()
        except OSError as err:
            raise ValueError(f"cannot read the API key file: {err}") from None
        except UnicodeDecodeError:
            raise ValueError(f"the API key file {path} is not UTF-8 text") from None
        if not key:
            raise ValueError(f"the API key file {settings.api_key_file} is empty")
        return key
    return os.environ.get(API_KEY_ENV) or None


def create_app(settings: ServeSettings, service: Service | None = None) -> FastAPI:
    """The FastAPI app serving ``settings.backend`` (or ``service``).

    The event loop only reads requests, each body at a minimum pace and under a
    budget of bytes read at once, reserved as they arrive (:mod:`.admission`);
    parsing, decoding and classifying run in worker threads, at most
    ``max_concurrent`` requests at a time (more get 503 with ``Retry-After``), so
    neither a heavy request nor a slow sender stalls the others.
    """
    cloud = service if service is not None else get_backend(settings.backend)
    if hasattr(cloud, "batch_size"):
        cloud.batch_size = MAX_IMAGES  # one request = one model batch
    annotator = Annotator(settings, cloud, read_api_key(settings))
    app = FastAPI(title="adacompress emulated cloud", docs_url=None, redoc_url=None)
    app.state.faults = annotator.faults
    app.state.connection_limits = connection_limits(settings)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    @app.get("/healthz", response_model=Health)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "backend": cloud.name}

    @app.post("/v1/images:annotate", **ANNOTATE_ROUTE)
    async def annotate(request: Request) -> Response:
        return await annotator.annotate(request)

    document_request(app)
    return app


class Annotator:
    """One annotate request's path: the key, the declared length and a free slot
    (before the body is read), the body (under its budget and pace), a fault draw,
    then :func:`answer` in a worker thread."""

    def __init__(self, settings: ServeSettings, cloud: Service, api_key: str | None):
        self.settings, self.cloud, self.api_key = settings, cloud, api_key
        self.model_lock = threading.Lock()
        self.gate = asyncio.Semaphore(settings.max_concurrent)
        self.reading = BodyBudget(
            READING_REQUESTS * settings.max_request_bytes, settings.max_request_bytes
        )
        self.pace = BodyPace(
            settings.body_grace, settings.min_body_rate, settings.body_timeout
        )
        self.decoding = DecodeBudget(settings.decode_budget_mb * 1_000_000)
        self.rng = random.Random(settings.seed)
        self.faults = {"dropped": 0, "throttled": 0, "unavailable": 0}

    def classify(self, images: list[bytes]) -> list[Answer]:
        with self.model_lock:
            return self.cloud.classify(images)

    async def annotate(self, request: Request) -> Response:
        refused = self.refused(request)
        if refused is not None:
            return refused
        # The body is read before a compute slot is taken, so slow senders hold
        # only their own connection; the bytes being read at once are bounded.
        body = await self.body(request)
        if isinstance(body, Response):
            return body
        if self.gate.locked():
            return busy("too many requests at once")
        async with self.gate:
            fault = inject_fault(self.settings, self.rng, self.faults)
            if fault is not None:
                return fault
            if self.settings.latency > 0:
                await asyncio.sleep(self.settings.latency)
            return await run_in_threadpool(
                answer, body, self.settings, self.classify, self.decoding
            )

    def refused(self, request: Request) -> Response | None:
        """Why the request is refused before its body is read, if it is."""
        given = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if self.api_key and not hmac.compare_digest(
            (given or "").encode(), self.api_key.encode()
        ):
            return error_response(403, "missing or invalid API key")
        limit = self.settings.max_request_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return error_response(413, f"request larger than {limit} bytes")
        if self.gate.locked():  # refused before the client sends its body
            return busy("too many requests at once")
        return None

    async def body(self, request: Request) -> bytes | Response:
        """The request's body, or the answer when it cannot be read."""
        try:
            return await read_body(
                request,
                limit=self.settings.max_request_bytes,
                budget=self.reading,
                pace=self.pace,
            )
        except BadRequest as err:
            if err.status == 503:
                return busy(str(err))
            return error_response(err.status, str(err))
        except ClientDisconnect:  # nobody to answer; a line, not a traceback
            host = request.client.host if request.client else "?"
            log.warning("client closed its connection mid-body (%s)", host)
            return Response(status_code=400)


def connection_limits(settings: ServeSettings) -> ConnectionLimits:
    return ConnectionLimits(
        header_timeout=settings.header_timeout,
        max_connections=settings.max_connections,
        max_client_connections=settings.max_client_connections,
    )


def answer(
    body: bytes,
    settings: ServeSettings,
    classify: Callable[[list[bytes]], list[Answer]],
    decoding: DecodeBudget | None = None,
) -> Response:
    """Parse, check, decode and classify one annotate request (in a worker thread).

    Pixels are counted from each image's header before anything is decoded: a
    request over ``max_request_pixels`` in all is refused whole. What decoding will
    hold in memory is reserved from ``decoding`` first (a JPEG is checked at a
    fraction of its size); a request that cannot fit gets 413, one that would wait
    too long 503.
    """
    try:
        parsed = parse_requests(json.loads(body), settings.max_image_bytes)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep
        return error_response(400, "body is not valid JSON")
    except BadRequest as err:
        return error_response(err.status, str(err))
    responses = [ImageAnswer() for _ in parsed]
    checked: list[tuple[int, bytes, int]] = []
    pixels = 0
    for i, (content, _) in enumerate(parsed):
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            responses[i] = image_error("image content is not valid base64")
            continue
        try:
            header = image_header(data)
        except ImageError as err:
            responses[i] = image_error(f"bad image data: {err}")
            continue
        area = header.width * header.height
        if area < settings.min_pixels:
            responses[i] = image_error(
                f"bad image data: image too small: {header.width}x{header.height} "
                f"(at least {settings.min_pixels} pixels)"
            )
            continue
        pixels += area
        checked.append((i, data, header.decode_bytes))
    if pixels > settings.max_request_pixels:
        return error_response(
            413,
            f"request holds {pixels:,} pixels, more than "
            f"{settings.max_request_pixels:,} in all",
        )
    budget = decoding or DecodeBudget(1 << 62)
    try:
        with budget.holding(sum(cost for *_, cost in checked)):
            return _classified(checked, parsed, responses, settings, classify)
    except BadRequest as err:
        return (
            busy(str(err))
            if err.status == 503
            else error_response(err.status, str(err))
        )


def _classified(
    checked: list[tuple[int, bytes, int]],
    parsed: list[tuple[str, int]],
    responses: list[ImageAnswer],
    settings: ServeSettings,
    classify: Callable[[list[bytes]], list[Answer]],
) -> Response:
    """Check that each image decodes, classify the good ones, answer all."""
    good: list[tuple[int, bytes]] = []
    for i, data, _ in checked:
        try:
            load_image(data, max_pixels=settings.max_pixels, draft=(64, 64))
        except ImageError as err:
            responses[i] = image_error(f"bad image data: {err}")
            continue
        good.append((i, data))
    if good:
        try:
            answers = classify([d for _, d in good])
        except ServiceError as err:
            return error_response(500, str(err))
        for (i, _), labels in zip(good, answers, strict=True):
            responses[i] = label_annotations(labels, parsed[i][1])
    return JSONResponse(dump(AnnotateResponse(responses=responses)))
