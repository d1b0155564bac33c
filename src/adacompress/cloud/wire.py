"""Google Vision's ``images:annotate`` wire format as ``adacompress serve`` speaks it:
what a request may hold, the answer's labels, and the error bodies.

Request-level problems get an HTTP error ``{"error": {"code", "message", "status"}}``;
a bad image inside a good request gets ``responses[i].error {code, message}`` (gRPC
code 3, as Google does) while the others are answered.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from adacompress.cloud.admission import BadRequest
from adacompress.cloud.service import TOP_LABELS
from adacompress.core.labels import Answer, imagenet_classes

MAX_IMAGES = 16
LABEL_DETECTION = ("LABEL_DETECTION", 4)
"""The feature type as Google's enum name or its number."""
INVALID_ARGUMENT_CODE = 3
"""gRPC code used in per-image errors."""
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


def image_error(message: str) -> dict[str, Any]:
    return {"error": {"code": INVALID_ARGUMENT_CODE, "message": message}}
