"""The emulated cloud as a real HTTP service: ``adacompress serve``.

Speaks Google Vision's ``POST /v1/images:annotate`` JSON, so one client
(:class:`~adacompress.cloud.clients.google_rest.GoogleRestClient`) serves this
emulator and the real API.
Up to 16 images a request run as one model batch. Request-level problems get an HTTP
error ``{"error": {"code", "message", "status"}}``; a bad image inside a good request
gets ``responses[i].error {code, message}`` (gRPC code 3, as Google does) while the
others are answered. Seeded fault injection (latency, 429 with ``Retry-After``, 503,
dropped connections) makes the service as unreliable as a real one on demand.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import logging
import os
import random
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from adacompress.cloud.admission import BadRequest, BodyBudget, BodyPace, read_body
from adacompress.cloud.backends import get_backend
from adacompress.cloud.connections import (
    ACCEPT_BACKLOG,
    ConnectionLimits,
    GuardedConfig,
    fit_open_file_limit,
    quiet_floods,
)
from adacompress.cloud.service import TOP_LABELS, Service, ServiceError
from adacompress.cloud.settings import ServeSettings
from adacompress.core.labels import Answer, imagenet_classes
from basekit.images import ImageError, image_header, load_image
from basekit.memory import return_large_buffers

MAX_IMAGES = 16
LABEL_DETECTION = ("LABEL_DETECTION", 4)
"""The feature type as Google's enum name or its number."""
INVALID_ARGUMENT_CODE = 3
"""gRPC code used in per-image errors."""
READING_REQUESTS = 4
"""Bodies of the largest size the service reads at once (smaller ones: more); one
client address reads at most one."""
MAX_KEY_BYTES = 4096
"""An API key file larger than this is refused unread."""
CONFIG_ENV = "ADACOMPRESS_SERVE_CONFIG"
"""How ``--workers N`` hands the settings to each worker process."""
API_KEY_ENV = "ADACOMPRESS_SERVE_KEY"
"""API key the service requires when ``--api-key`` is not given."""
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "status"],
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "status": {"type": "string"},
            },
        }
    },
}
_IMAGE_ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
}
"""One image's error inside a 200 answer, as Google sends it (``google.rpc.Status``)."""
_LABEL_SCHEMA = {
    "type": "object",
    "required": ["mid", "description", "score"],
    "properties": {
        "mid": {"type": "string"},
        "description": {"type": "string"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "topicality": {"type": "number"},
    },
}
_IMAGE_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["image", "features"],
    "properties": {
        "image": {
            "type": "object",
            "required": ["content"],
            "properties": {"content": {"type": "string", "format": "byte"}},
        },
        "features": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {"type": {"type": ["string", "integer"]}},
            },
            "contains": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"enum": list(LABEL_DETECTION)},
                    "maxResults": {"type": "integer", "minimum": 1},
                },
            },
        },
    },
}
_JSON_ERROR = {"content": {"application/json": {"schema": _ERROR_SCHEMA}}}
ANNOTATE_OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": "x-goog-api-key",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
        },
        {"name": "key", "in": "query", "required": False, "schema": {"type": "string"}},
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["requests"],
                    "properties": {
                        "requests": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_IMAGES,
                            "items": _IMAGE_REQUEST_SCHEMA,
                        }
                    },
                }
            }
        },
    },
    "responses": {
        "200": {
            "description": "one answer per image: its labels, or its error",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["responses"],
                        "properties": {
                            "responses": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "labelAnnotations": {
                                            "type": "array",
                                            "items": _LABEL_SCHEMA,
                                        },
                                        "error": _IMAGE_ERROR_SCHEMA,
                                    },
                                },
                            }
                        },
                    }
                }
            },
        },
        **{
            str(code): {"description": name, **_JSON_ERROR}
            for code, name in (
                (400, "a bad request"),
                (403, "a missing or wrong key"),
                (408, "the body came too slowly"),
                (413, "too large a request"),
                (429, "throttled (fault injection)"),
                (500, "the model failed"),
                (503, "busy"),
            )
        },
    },
}
"""The annotate operation as OpenAPI documents it (the handler reads the raw body
itself, so the schema is stated here): what clients and the fuzzing campaign see."""
HEALTH_SCHEMA = {
    "type": "object",
    "required": ["status", "backend"],
    "properties": {"status": {"type": "string"}, "backend": {"type": "string"}},
}


log = logging.getLogger("uvicorn.error")
"""The service's log: uvicorn's, so that its lines look alike."""


class DroppedConnection(Exception):
    """Raised after the response started, so the server closes the connection."""


class _DropResponse(Response):
    """Starts a response it never finishes: the client sees a reset connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"1000")],
            }
        )
        raise DroppedConnection("fault injection: connection dropped")


class _QuietDrops(logging.Filter):
    """Keep injected drops out of the server's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """Google's HTTP-level error body."""
    body = {
        "error": {
            "code": status,
            "message": message,
            "status": STATUS_NAMES.get(status, "UNKNOWN"),
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def busy(reason: str) -> JSONResponse:
    """503 with ``Retry-After``: the service is busy, not the request wrong."""
    return error_response(503, f"busy: {reason}", {"Retry-After": "1"})


def parse_requests(body: Any, max_image_bytes: int) -> list[tuple[str, int]]:
    """``(base64 content, maxResults)`` per image of an annotate body.

    Raises:
        BadRequest: missing or malformed fields, too many or too large images.
    """
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise BadRequest(400, "body must be an object with a 'requests' list")
    requests = body["requests"]
    if not 1 <= len(requests) <= MAX_IMAGES:
        raise BadRequest(400, f"'requests' must hold 1 to {MAX_IMAGES} images")
    parsed = []
    for i, item in enumerate(requests):
        image = item.get("image") if isinstance(item, dict) else None
        content = image.get("content") if isinstance(image, dict) else None
        if not isinstance(content, str):
            raise BadRequest(400, f"requests[{i}].image.content is missing")
        if len(content) // 4 * 3 > max_image_bytes:
            raise BadRequest(
                400, f"requests[{i}]: image larger than {max_image_bytes} bytes"
            )
        features = item.get("features")
        if not isinstance(features, list) or not features:
            raise BadRequest(400, f"requests[{i}].features is missing")
        label = [
            f
            for f in features
            if isinstance(f, dict) and f.get("type") in LABEL_DETECTION
        ]
        if not label:
            raise BadRequest(400, f"requests[{i}]: only LABEL_DETECTION is supported")
        max_results = label[0].get("maxResults", TOP_LABELS)
        if isinstance(max_results, float) and max_results.is_integer():
            max_results = int(max_results)  # JSON's 178.0 is the integer 178
        if (
            isinstance(max_results, bool)
            or not isinstance(max_results, int)
            or max_results < 1
        ):
            raise BadRequest(400, f"requests[{i}]: maxResults must be a positive int")
        parsed.append((content, max_results))
    return parsed


def label_annotations(answer: Answer, max_results: int) -> list[dict[str, Any]]:
    """Labels as Google's ``labelAnnotations``; ``mid`` carries the ImageNet wnid."""
    classes = imagenet_classes()
    return [
        {
            "mid": classes[label.class_id][0] if 0 <= label.class_id < 1000 else "",
            "description": label.name,
            "score": label.score,
            "topicality": label.score,
        }
        for label in answer[:max_results]
    ]


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
    api_key = read_api_key(settings)
    model_lock = threading.Lock()
    gate = asyncio.Semaphore(settings.max_concurrent)
    reading = BodyBudget(
        READING_REQUESTS * settings.max_request_bytes, settings.max_request_bytes
    )
    pace = BodyPace(settings.body_grace, settings.min_body_rate, settings.body_timeout)
    decoding = DecodeBudget(settings.decode_budget_mb * 1_000_000)
    rng = random.Random(settings.seed)
    app = FastAPI(title="adacompress emulated cloud", docs_url=None, redoc_url=None)
    app.state.faults = {"dropped": 0, "throttled": 0, "unavailable": 0}
    app.state.connection_limits = connection_limits(settings)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    @app.get(
        "/healthz",
        responses={200: {"content": {"application/json": {"schema": HEALTH_SCHEMA}}}},
    )
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "backend": cloud.name}

    def classify(images: list[bytes]) -> list[Answer]:
        with model_lock:
            return cloud.classify(images)

    @app.post("/v1/images:annotate", openapi_extra=ANNOTATE_OPENAPI)
    async def annotate(request: Request) -> Response:
        given = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if api_key and not hmac.compare_digest(
            (given or "").encode(), api_key.encode()
        ):
            return error_response(403, "missing or invalid API key")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > settings.max_request_bytes:
            return error_response(
                413, f"request larger than {settings.max_request_bytes} bytes"
            )
        if gate.locked():  # refused before the client sends its body
            return busy("too many requests at once")
        # The body is read before a compute slot is taken, so slow senders hold
        # only their own connection; the bytes being read at once are bounded.
        try:
            body = await read_body(
                request, limit=settings.max_request_bytes, budget=reading, pace=pace
            )
        except BadRequest as err:
            if err.status == 503:
                return busy(str(err))
            return error_response(err.status, str(err))
        except ClientDisconnect:  # nobody to answer; a line, not a traceback
            host = request.client.host if request.client else "?"
            log.warning("client closed its connection mid-body (%s)", host)
            return Response(status_code=400)
        if gate.locked():
            return busy("too many requests at once")
        async with gate:
            fault = inject_fault(settings, rng, app.state.faults)
            if fault is not None:
                return fault
            if settings.latency > 0:
                await asyncio.sleep(settings.latency)
            return await run_in_threadpool(answer, body, settings, classify, decoding)

    return app


class DecodeBudget:
    """Bytes of decoded pixels the service holds at once, across requests and
    worker threads: a request reserves what its images will cost
    (:func:`basekit.images.image_header`) before anything is decoded."""

    def __init__(self, total: int, wait: float = 30.0) -> None:
        self.total, self.used, self.wait = total, 0, wait
        self._free = threading.Condition()

    @contextlib.contextmanager
    def holding(self, size: int) -> Iterator[None]:
        """Hold ``size`` bytes while the block runs.

        Raises:
            BadRequest: 413 when ``size`` is over the whole budget, 503 when it
                does not come free within ``wait`` seconds.
        """
        if size > self.total:
            raise BadRequest(
                413,
                f"decoding needs {size / 1e6:,.0f} MB, more than the "
                f"{self.total / 1e6:,.0f} MB the service decodes at once",
            )
        with self._free:
            if not self._free.wait_for(
                lambda: self.used + size <= self.total, self.wait
            ):
                raise BadRequest(503, "decoding other requests")
            self.used += size
        try:
            yield
        finally:
            with self._free:
                self.used -= size
                self._free.notify_all()


def connection_limits(settings: ServeSettings) -> ConnectionLimits:
    return ConnectionLimits(
        header_timeout=settings.header_timeout,
        max_connections=settings.max_connections,
        max_client_connections=settings.max_client_connections,
    )


def inject_fault(
    settings: ServeSettings, rng: random.Random, counts: dict[str, int]
) -> Response | None:
    """The injected fault this request gets, if any (seeded draws)."""
    draw = rng.random()
    if draw < settings.dropped:
        counts["dropped"] += 1
        return _DropResponse()
    draw -= settings.dropped
    if draw < settings.throttled:
        counts["throttled"] += 1
        return error_response(
            429,
            "quota exceeded (fault injection)",
            {"Retry-After": f"{settings.retry_after:g}"},
        )
    draw -= settings.throttled
    if draw < settings.unavailable:
        counts["unavailable"] += 1
        return error_response(503, "service unavailable (fault injection)")
    return None


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
    responses: list[dict[str, Any]] = [{} for _ in parsed]
    checked: list[tuple[int, bytes, int]] = []
    pixels = 0
    for i, (content, _) in enumerate(parsed):
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            responses[i] = _image_error("image content is not valid base64")
            continue
        try:
            header = image_header(data)
        except ImageError as err:
            responses[i] = _image_error(f"bad image data: {err}")
            continue
        area = header.width * header.height
        if area < settings.min_pixels:
            responses[i] = _image_error(
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
    responses: list[dict[str, Any]],
    settings: ServeSettings,
    classify: Callable[[list[bytes]], list[Answer]],
) -> Response:
    """Check that each image decodes, classify the good ones, answer all."""
    good: list[tuple[int, bytes]] = []
    for i, data, _ in checked:
        try:
            load_image(data, max_pixels=settings.max_pixels, draft=(64, 64))
        except ImageError as err:
            responses[i] = _image_error(f"bad image data: {err}")
            continue
        good.append((i, data))
    if good:
        try:
            answers = classify([d for _, d in good])
        except ServiceError as err:
            return error_response(500, str(err))
        for (i, _), labels in zip(good, answers, strict=True):
            responses[i] = {"labelAnnotations": label_annotations(labels, parsed[i][1])}
    return JSONResponse({"responses": responses})


def _image_error(message: str) -> dict[str, Any]:
    return {"error": {"code": INVALID_ARGUMENT_CODE, "message": message}}


def app_from_env() -> FastAPI:
    """App factory for worker processes (``--workers N``): settings from the env."""
    from basekit.threads import configure_threads

    settings = ServeSettings(**json.loads(os.environ[CONFIG_ENV]))
    configure_threads(max(1, (os.cpu_count() or 1) // settings.workers), torch=False)
    return_large_buffers()
    quiet_logs()
    return create_app(settings)


def quiet_logs() -> None:
    """Keep injected drops out of the log, and what clients can repeat at will
    down to a line now and then (once per process)."""
    errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in errors.filters):
        errors.addFilter(_QuietDrops())
    quiet_floods()


def serve(settings: ServeSettings) -> None:
    """Run the service until interrupted (``adacompress serve``).

    The model is loaded and the socket bound before the address is printed, so the
    line appears only when the service accepts connections.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    quiet_logs()
    return_large_buffers()  # decoded images go back to the system when freed
    limits = fit_open_file_limit(connection_limits(settings))
    app = create_app(settings) if settings.workers == 1 else None
    read_api_key(settings)  # a bad key file fails here, before listening
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as err:
        sock.close()
        raise OSError(
            f"cannot listen on {settings.host}:{settings.port}: {err.strerror}"
        ) from None
    sock.listen(ACCEPT_BACKLOG)
    port = sock.getsockname()[1]
    print(
        f"serving {settings.backend} on http://{settings.host}:{port} "
        f"({settings.workers} worker(s))",
        flush=True,
    )
    if app is not None:
        uvicorn.Server(GuardedConfig(app, limits, log_level="warning")).run([sock])
        return
    os.environ[CONFIG_ENV] = json.dumps(asdict(settings))
    workers = GuardedConfig(
        "adacompress.cloud.server:app_from_env",
        limits,
        factory=True,
        workers=settings.workers,
        log_level="warning",
    )
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(workers, sockets=[sock]).run()


@contextlib.contextmanager
def running(app: FastAPI, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` on a loopback port (default: an ephemeral one) in a thread;
    yields its base URL.

    For tests and benchmarks: the server stops when the block ends.
    """
    import uvicorn

    quiet_logs()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    limits = getattr(app.state, "connection_limits", ConnectionLimits())
    config = GuardedConfig(app, limits, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30.0
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the service did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30.0)
        sock.close()
