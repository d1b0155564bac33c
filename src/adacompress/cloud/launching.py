"""Launching ``adacompress serve``: one process or ``--workers N`` on one listening
socket, or a loopback server in a thread for tests and benchmarks."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict

from fastapi import FastAPI

from adacompress.cloud.app import connection_limits, create_app, read_api_key
from adacompress.cloud.connections import (
    ACCEPT_BACKLOG,
    ConnectionLimits,
    GuardedConfig,
    fit_open_file_limit,
    quiet_floods,
)
from adacompress.cloud.faults import QuietDrops
from adacompress.cloud.settings import ServeSettings
from basekit.memory import return_large_buffers

CONFIG_ENV = "ADACOMPRESS_SERVE_CONFIG"
"""How ``--workers N`` hands the settings to each worker process."""


def bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: an ephemeral port), not yet listening.

    Raises:
        OSError: the address cannot be bound (one line naming it).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {err.strerror}") from None
    return sock


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
    if not any(isinstance(f, QuietDrops) for f in errors.filters):
        errors.addFilter(QuietDrops())
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
    sock = bound_socket(settings.host, settings.port)
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
        "adacompress.cloud.launching:app_from_env",
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
    sock = bound_socket(host, port)
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
