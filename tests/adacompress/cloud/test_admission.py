"""Request bodies are admitted as their bytes arrive: a declared length holds
nothing, one address cannot take the whole budget, and a body must keep pace."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from adacompress.cloud.admission import BodyBudget, BodyPace
from adacompress.cloud.emulated import EfficientNetLiteCloud
from adacompress.cloud.server import create_app, running
from adacompress.cloud.settings import ServeSettings
from tests.adacompress.cloud.test_server import ANNOTATE, body
from tests.helpers import jpeg_bytes, photo

HEAD = (
    b"POST /v1/images:annotate HTTP/1.1\r\n"
    b"Host: x\r\nContent-Type: application/json\r\n"
)


@pytest.fixture(scope="module")
def lite0() -> EfficientNetLiteCloud:
    return EfficientNetLiteCloud("lite0")


def connect(base: str, source: str = "127.0.0.1") -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), 10, (source, 0))


def read_reply(sock: socket.socket) -> str:
    """One whole HTTP answer from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536) or b"\r\n\r\n"
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return (head + b"\r\n\r\n" + rest).decode()


def good_request(base: str, source: str = "127.0.0.1") -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=60) as client:
        return client.post(base + ANNOTATE, json=body(jpeg_bytes(photo(3))))


def test_the_budget_counts_each_address_and_all() -> None:
    budget = BodyBudget(total=100, per_client=60)
    assert budget.take("a", 60) is None
    assert "this address" in (budget.take("a", 1) or "")
    assert budget.take("b", 40) is None
    assert "too many request bodies" in (budget.take("c", 1) or "")
    budget.give("a", 60)
    assert budget.take("c", 50) is None and budget.used == 90


def test_a_body_must_start_within_the_grace_then_keep_pace() -> None:
    pace = BodyPace(grace=2.0, min_rate=1000, limit=30.0)
    assert pace.due(0) == 2.0
    assert pace.due(5000) == 7.0  # 5,000 bytes buy 5 s more
    assert pace.due(10**9) == 30.0


@pytest.mark.parametrize("framing", ["declared 32 MB", "chunked"])
def test_four_slow_huge_bodies_do_not_stop_a_fifth_client(
    lite0: EfficientNetLiteCloud, framing: str
) -> None:
    """Issue 31, HIGH 3: four sockets that declare 32 MB (or send chunks) and send
    one byte held the whole 4 x 32 MB budget, and everyone else got 503."""
    opening = {
        "declared 32 MB": b"Content-Length: 33554432\r\n\r\n{",
        "chunked": b"Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n",
    }[framing]
    with running(create_app(ServeSettings(backend="lite0"), lite0)) as base:
        slow = [connect(base) for _ in range(4)]
        for sock in slow:
            sock.sendall(HEAD + opening)
        time.sleep(0.3)  # the four are reading before the fifth comes
        start = time.monotonic()
        response = good_request(base)
        assert response.status_code == 200, response.text
        assert time.monotonic() - start < 5.0
        for sock in slow:
            sock.close()


def test_one_address_holds_at_most_one_largest_body(
    lite0: EfficientNetLiteCloud,
) -> None:
    settings = ServeSettings(
        backend="lite0", max_request_bytes=300_000, body_grace=60, min_body_rate=1
    )
    with running(create_app(settings, lite0)) as base:
        first = connect(base)
        first.sendall(HEAD + b"Content-Length: 300000\r\n\r\n" + b" " * 250_000)
        time.sleep(0.5)  # read by the service before the second comes
        second = connect(base)
        second.sendall(HEAD + b"Content-Length: 100000\r\n\r\n" + b" " * 100_000)
        reply = read_reply(second)
        assert reply.startswith("HTTP/1.1 503") and "this address" in reply
        assert good_request(base, source="127.0.0.2").status_code == 200
        first.close()
        second.close()


@pytest.fixture()
def stalled_body(lite0: EfficientNetLiteCloud) -> Iterator[str]:
    settings = ServeSettings(backend="lite0", body_grace=0.5, min_body_rate=1000)
    with running(create_app(settings, lite0)) as base:
        yield base


def test_a_body_that_falls_behind_gets_408_and_its_bytes_back(
    stalled_body: str,
) -> None:
    with connect(stalled_body) as sock:
        sock.sendall(HEAD + b"Content-Length: 100000\r\n\r\n" + b" " * 600)
        reply = read_reply(sock)  # 600 bytes buy 0.6 s after the grace
    assert reply.startswith("HTTP/1.1 408") and "too slow" in reply
    assert good_request(stalled_body).status_code == 200
