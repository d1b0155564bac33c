"""Google Vision's ``images:annotate`` wire format, stated once as models.

``adacompress serve`` documents its OpenAPI schema from them and writes its answers
with them; the REST client (:mod:`.clients.google_rest`) builds its requests and
reads the labels of the answers with them. Only :mod:`pydantic` is needed here, so
the client goes without the server's packages.

Extra fields are ignored (the real API sends more than these); what the schema
documents beyond the types (one ``LABEL_DETECTION`` feature, scores in 0..1) is
checked by the service's own parser (:func:`adacompress.cloud.wire.parse_requests`),
whose one-line messages name the field.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.json_schema import JsonDict, SkipJsonSchema

MAX_IMAGES = 16
"""Images in one request."""
LABEL_DETECTION = ("LABEL_DETECTION", 4)
"""The feature type as Google's enum name or its number."""
INVALID_ARGUMENT_CODE = 3
"""gRPC code used in per-image errors."""

_LABEL_FEATURE: JsonDict = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"enum": list(LABEL_DETECTION)},
        "maxResults": {"type": "integer", "minimum": 1},
    },
}


class Image(BaseModel):
    content: str = Field(json_schema_extra={"format": "byte"})
    """The image's bytes in base64."""


class Feature(BaseModel):
    type: str | int | SkipJsonSchema[None] = None
    maxResults: SkipJsonSchema[int | None] = None
    """Documented for the label feature only (the ``contains`` below)."""


class ImageRequest(BaseModel):
    image: Image
    features: list[Feature] = Field(
        min_length=1, json_schema_extra={"contains": _LABEL_FEATURE}
    )


class AnnotateRequest(BaseModel):
    """The body of ``POST /v1/images:annotate``."""

    requests: list[ImageRequest] = Field(min_length=1, max_length=MAX_IMAGES)

    @classmethod
    def labels(cls, contents: list[str], max_results: int) -> AnnotateRequest:
        """A request for the labels of images given as base64."""
        feature = Feature(type="LABEL_DETECTION", maxResults=max_results)
        return cls(
            requests=[
                ImageRequest(image=Image(content=content), features=[feature])
                for content in contents
            ]
        )


class LabelAnnotation(BaseModel):
    """One label; the emulator puts the ImageNet wnid in ``mid``."""

    model_config = ConfigDict(
        json_schema_extra={"required": ["mid", "description", "score"]}
    )

    mid: str = Field("", strict=True)
    description: str = Field(strict=True)
    score: float = Field(strict=True, json_schema_extra={"minimum": 0, "maximum": 1})
    topicality: float | SkipJsonSchema[None] = None

    @field_validator("score")
    @classmethod
    def _a_number(cls, score: float) -> float:
        if math.isnan(score):
            raise ValueError("a label's score is NaN")
        return score


class ImageStatus(BaseModel):
    """One image's error inside a 200 answer, as Google sends it
    (``google.rpc.Status``)."""

    code: int
    message: str


class ImageAnswer(BaseModel):
    """One image's answer: its labels, or its error."""

    labelAnnotations: list[LabelAnnotation] | SkipJsonSchema[None] = None
    error: ImageStatus | SkipJsonSchema[None] = None


class AnnotateResponse(BaseModel):
    """One answer per image of the request, in its order."""

    responses: list[ImageAnswer]


class ErrorDetail(BaseModel):
    code: int
    message: str
    status: str


class ErrorBody(BaseModel):
    """Google's HTTP-level error body."""

    error: ErrorDetail


class Health(BaseModel):
    status: str
    backend: str


def one_line(err: ValidationError) -> str:
    """The first problem pydantic found, on one line, without the input."""
    first = err.errors(include_url=False, include_input=False)[0]
    where = ".".join(
        str(part)
        for part in first["loc"]
        if "[" not in str(part)  # union tags
    )
    where = where or "the answer"
    return f"{where}: {first['msg']}".splitlines()[0]


def dump(model: BaseModel) -> dict[str, Any]:
    """``model`` as JSON-ready data, fields left unset or None omitted."""
    return model.model_dump(exclude_none=True)
