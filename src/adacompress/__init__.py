"""AdaCompress: before a photo goes to a cloud vision service, choose how hard to
compress it -- image by image, learned from the service's own answers (Li et al.,
ACM MM 2019, arXiv 1909.08148).

Examples:
    >>> import adacompress
    >>> compressor = adacompress.load("lite0")       # a shipped agent, or a path
    >>> upload = compressor.compress("cat.jpg")      # a path, PIL image or bytes
    >>> upload.data, upload.action, upload.mime      # the bytes to send, and why
    >>> answer = adacompress.service("lite0").classify([upload.data])[0]

Names are imported when first used, so ``import adacompress`` (and the command
line's ``--help``) stays fast. (``adacompress.cloud`` is the cloud-side subpackage;
``adacompress.service(name)`` is how to get a service.)
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.4.0"

_EXPORTS = {
    "Action": "adacompress.device.actions",
    "Compressor": "adacompress.device.compressor",
    "Upload": "adacompress.device.compressor",
    "UploadLimits": "adacompress.core.limits",
    "Label": "adacompress.core.labels",
    "Answer": "adacompress.core.labels",
    "Service": "adacompress.cloud.service",
    "ServiceError": "adacompress.cloud.service",
    "ImageError": "basekit.images",
    "PolicySettings": "adacompress.device.policies.settings",
    "TrainSettings": "adacompress.learning.settings",
    "EvaluateSettings": "adacompress.learning.settings",
    "TRAIN_PRESETS": "adacompress.learning.presets",
    "train": "adacompress.learning.train",
    "evaluate": "adacompress.learning.evaluate",
    "shipped_agents": "adacompress.device.zoo",
    "backend_names": "adacompress.cloud.backends",
    "configure_threads": "basekit.threads",
}

__all__ = [
    "TRAIN_PRESETS",
    "Action",
    "Answer",
    "Compressor",
    "EvaluateSettings",
    "ImageError",
    "Label",
    "PolicySettings",
    "Service",
    "ServiceError",
    "TrainSettings",
    "Upload",
    "UploadLimits",
    "__version__",
    "backend_names",
    "configure_threads",
    "evaluate",
    "load",
    "service",
    "shipped_agents",
    "train",
]

if TYPE_CHECKING:
    from adacompress.cloud.backends import backend_names
    from adacompress.cloud.service import Service, ServiceError
    from adacompress.core.labels import Answer, Label
    from adacompress.core.limits import UploadLimits
    from adacompress.device.actions import Action
    from adacompress.device.compressor import Compressor, Upload
    from adacompress.device.policies.settings import PolicySettings
    from adacompress.device.zoo import shipped_agents
    from adacompress.learning.evaluate import evaluate
    from adacompress.learning.presets import TRAIN_PRESETS
    from adacompress.learning.settings import EvaluateSettings, TrainSettings
    from adacompress.learning.train import train
    from basekit.images import ImageError


def load(
    agent: str | Path = "lite0",
    *,
    actions: str | None = None,
    limits: UploadLimits | None = None,
) -> Compressor:
    """A shipped agent by name (``"lite1-scale-quality"``; a backend's name alone,
    ``"lite0"``, is its default agent, ``actions="paper"`` its paper-action one) or an
    agent file by path, ready to compress.

    ``limits`` are what the receiving service accepts (default: none; for a real
    service pass ``adacompress.service(name).limits``).

    Raises:
        ValueError: unknown name or unreadable file (one line).
    """
    from adacompress.core.limits import NO_LIMITS
    from adacompress.device.compressor import Compressor

    return Compressor.load(agent, actions=actions, limits=limits or NO_LIMITS)


def service(name: str = "lite0") -> Service:
    """A vision service by name: ``lite0``/``lite1``/``lite2`` (emulated, in this
    process), ``rekognition`` (AWS), or the ``http(s)://`` URL of a Google
    Vision-shaped service. ``.classify([bytes, ...])`` answers each upload with its
    ranked labels.

    Raises:
        ValueError: unknown name (one line, listing the known ones).
    """
    from adacompress.cloud.backends import get_backend

    return get_backend(name)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'adacompress' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
