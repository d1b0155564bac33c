"""How ``adacompress serve`` reads and writes Google Vision's ``images:annotate``
format (stated once in :mod:`.vision`): the request's checks, the answer's labels,
the error bodies, and the annotate operation as OpenAPI documents it.

Request-level problems get an HTTP error ``{"error": {"code", "message", "status"}}``;
a bad image inside a good request gets ``responses[i].error {code, message}`` (gRPC
code 3, as Google does) while the others are answered.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic.json_schema import models_json_schema

from adacompress.cloud.admission import BadRequest
from adacompress.cloud.service import TOP_LABELS
from adacompress.cloud.vision import (
    INVALID_ARGUMENT_CODE,
    LABEL_DETECTION,
    MAX_IMAGES,
    AnnotateRequest,
    AnnotateResponse,
    ErrorBody,
    ErrorDetail,
    ImageAnswer,
    ImageStatus,
    LabelAnnotation,
    dump,
)
from adacompress.core.labels import Answer, imagenet_classes

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


_REQUEST_REF = "#/components/schemas/{model}"
ANNOTATE_ROUTE: dict[str, Any] = {
    "response_model": AnnotateResponse,
    "responses": {
        200: {"description": "one answer per image: its labels, or its error"},
        **{
            code: {"model": ErrorBody, "description": name}
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
    "openapi_extra": {
        "parameters": [
            {
                "name": "x-goog-api-key",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
            },
            {
                "name": "key",
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
            },
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": _REQUEST_REF.format(model="AnnotateRequest")}
                }
            },
        },
    },
}
"""How the annotate route is documented: its answers are models FastAPI states;
its body is read raw (bounded, deep JSON refused before parsing), so the request
model joins the document through :func:`document_request`."""


def document_request(app: FastAPI) -> None:
    """Add :class:`~adacompress.cloud.vision.AnnotateRequest`'s schemas to the
    OpenAPI components of ``app`` (the route refers to it)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            _, defs = models_json_schema(
                [(AnnotateRequest, "validation")], ref_template=_REQUEST_REF
            )
            components = document.setdefault("components", {})
            components.setdefault("schemas", {}).update(defs["$defs"])
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """Google's HTTP-level error body."""
    status_name = STATUS_NAMES.get(status, "UNKNOWN")
    body = ErrorBody(
        error=ErrorDetail(code=status, message=message, status=status_name)
    )
    return JSONResponse(dump(body), status_code=status, headers=headers)


def busy(reason: str) -> JSONResponse:
    """503 with ``Retry-After``: the service is busy, not the request wrong."""
    return error_response(503, f"busy: {reason}", {"Retry-After": "1"})


def parse_requests(body: Any, max_image_bytes: int) -> list[tuple[str, int]]:
    """``(base64 content, maxResults)`` per image of an annotate body.

    Checks what :class:`~adacompress.cloud.vision.AnnotateRequest` documents, by
    hand and in order, so that each problem gets its one-line message and an
    image too large is refused before anything else is made of it.

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


def label_annotations(answer: Answer, max_results: int) -> ImageAnswer:
    """Labels as Google's ``labelAnnotations``; ``mid`` carries the ImageNet wnid."""
    classes = imagenet_classes()
    return ImageAnswer(
        labelAnnotations=[
            LabelAnnotation(
                mid=classes[label.class_id][0] if 0 <= label.class_id < 1000 else "",
                description=label.name,
                score=label.score,
                topicality=label.score,
            )
            for label in answer[:max_results]
        ]
    )


def image_error(message: str) -> ImageAnswer:
    """One image's error inside a 200 answer (gRPC code 3, as Google does)."""
    return ImageAnswer(error=ImageStatus(code=INVALID_ARGUMENT_CODE, message=message))
