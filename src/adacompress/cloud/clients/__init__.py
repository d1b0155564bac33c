"""Clients of remote vision services: one ``Service`` interface, ranked 0-1 labels.

- :class:`GoogleRestClient`: Google Vision-shaped REST (``http://HOST:PORT`` for the
  emulator ``adacompress serve``, ``https://vision.googleapis.com`` for the real API).
- :class:`RekognitionClient`: AWS Rekognition ``detect_labels`` (``rekognition``).
"""

from adacompress.cloud.clients.google_rest import GoogleRestClient
from adacompress.cloud.clients.rekognition import RekognitionClient
from adacompress.cloud.clients.retry import RetryPolicy, TokenBucket, Transient

__all__ = [
    "GoogleRestClient",
    "RekognitionClient",
    "RetryPolicy",
    "TokenBucket",
    "Transient",
]
