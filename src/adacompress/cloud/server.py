"""The emulated cloud as a real HTTP service: ``adacompress serve``.

Speaks Google Vision's ``POST /v1/images:annotate`` JSON, so one client
(:class:`~adacompress.cloud.clients.google_rest.GoogleRestClient`) serves this
emulator and the real API. Up to 16 images a request run as one model batch.

Where each part lives:

- :mod:`.wire`: the wire format (requests, answers, error bodies);
- :mod:`.admission`: what the service takes in at once (bodies, decoded pixels);
- :mod:`.faults`: seeded fault injection (429, 503, dropped connections);
- :mod:`.app`: ``create_app``, a request traced from its key to its answer;
- :mod:`.launching`: ``serve`` (one process or ``--workers N``) and ``running``
  (a loopback server in a thread, for tests and benchmarks);
- :mod:`.connections`: the HTTP protocol's timeouts and connection caps.
"""

from __future__ import annotations

from adacompress.cloud.app import create_app, read_api_key
from adacompress.cloud.launching import quiet_logs, running, serve

__all__ = ["create_app", "quiet_logs", "read_api_key", "running", "serve"]
