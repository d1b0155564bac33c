"""Remote-service clients, offline: loopback HTTP servers and botocore's Stubber."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from adacompress.cloud.backends import get_backend
from adacompress.cloud.clients import (
    GoogleRestClient,
    RekognitionClient,
    RetryPolicy,
    TokenBucket,
    Transient,
)
from adacompress.cloud.clients.google_rest import MAX_RESPONSE_BYTES, batches
from adacompress.cloud.clients.rekognition import check_upload, make_client
from adacompress.cloud.clients.retry import parse_retry_after
from adacompress.cloud.service import CircuitBreaker, ServiceError, ServiceUnreachable
from adacompress.core.labels import name_class_id
from adacompress.core.limits import UploadLimits
from adacompress.device.actions import Action
from adacompress.device.codec import encode
from tests.helpers import decoded_size, jpeg_bytes, photo

Reply = tuple[int, dict[str, str], bytes]


@contextmanager
def scripted_server(
    replies: list[Reply] | Callable[[bytes], Reply],
) -> Iterator[tuple[str, list[dict]]]:
    """A loopback HTTP server answering POSTs with ``replies`` in turn (the last
    repeats), or with ``replies(request body)``; yields its URL and the requests it
    saw (headers and JSON body)."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            raw = self.rfile.read(length)
            seen.append({"headers": dict(self.headers), "path": self.path, "raw": raw})
            status, headers, payload = (
                replies(raw)
                if callable(replies)
                else replies[min(len(seen), len(replies)) - 1]
            )
            self.send_response(status)
            for key, value in {"content-type": "application/json", **headers}.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def fast_retry(attempts: int = 4) -> RetryPolicy:
    return RetryPolicy(max_attempts=attempts, base_delay=0.01, max_delay=0.05, seed=0)


GOOGLE_ANSWER = {
    "responses": [
        {
            "labelAnnotations": [
                {"mid": "/m/01yrx", "description": "Cat", "score": 0.97},
                {"mid": "/m/0jbk", "description": "Animal", "score": 0.99},
                {"mid": "n02123045", "description": "tabby", "score": 0.5},
            ]
        }
    ]
}


def error_body(code: int, status: str, message: str) -> bytes:
    return json.dumps(
        {"error": {"code": code, "message": message, "status": status}}
    ).encode()


# --- retry policy and token bucket -------------------------------------------------


def flaky(failures: list[Exception], value: str = "ok") -> Callable[[], str]:
    def send() -> str:
        if failures:
            raise failures.pop(0)
        return value

    return send


def test_retry_backoff_is_full_jitter_and_honours_retry_after() -> None:
    waits: list[float] = []
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=3.0, seed=1)
    policy.sleep = waits.append
    failures: list[Exception] = [Transient("503"), Transient("503"), Transient("503")]
    failures.append(Transient("429", retry_after=2.5))
    assert policy.call(flaky(failures), what="x") == "ok"
    assert len(waits) == 4
    for attempt, wait in enumerate(waits[:3]):
        assert 0.0 <= wait <= min(3.0, 2**attempt)
    assert waits[3] == 2.5


def test_retry_gives_up_with_an_error_after_the_last_attempt() -> None:
    waits: list[float] = []
    policy = RetryPolicy(max_attempts=3, seed=0, sleep=waits.append)
    with pytest.raises(ServiceError, match=r"after 3 attempt\(s\).*last straw"):
        policy.call(
            flaky([Transient("a"), Transient("b"), Transient("last straw")]), what="x"
        )
    assert len(waits) == 2


def test_retry_respects_the_total_time() -> None:
    now = [0.0]
    policy = RetryPolicy(max_attempts=10, total_timeout=5.0, seed=0)
    policy.clock = lambda: now[0]
    policy.sleep = lambda s: now.__setitem__(0, now[0] + s)
    failures: list[Exception] = [Transient("slow down", retry_after=3.0)] * 3
    with pytest.raises(ServiceError, match="time limit"):
        policy.call(flaky(failures), what="x")
    assert now[0] == 3.0  # one wait taken, the second would pass 5 s


def test_other_errors_are_not_retried() -> None:
    calls = []

    def send() -> str:
        calls.append(1)
        raise ServiceError("refused")

    with pytest.raises(ServiceError, match="refused"):
        fast_retry().call(send, what="x")
    assert len(calls) == 1


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after(formatdate(1000.0 + 10, usegmt=True), now=1000.0) == 10.0


def test_token_bucket_spaces_requests() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(10.0, 2, sleep=sleep, clock=lambda: now[0])
    for _ in range(4):
        bucket.acquire()
    assert waits == pytest.approx([0.1, 0.1])


# --- Google-shaped REST client -----------------------------------------------------


def test_get_backend_builds_remote_clients() -> None:
    breaker = get_backend("http://127.0.0.1:9/", timeout=5.0, max_failures=2)
    assert isinstance(breaker, CircuitBreaker) and breaker.max_failures == 2
    client = breaker.service
    assert isinstance(client, GoogleRestClient)
    assert client.name == breaker.name == "http://127.0.0.1:9"
    assert client.url == "http://127.0.0.1:9/v1/images:annotate"
    assert client.retry.total_timeout == 5.0
    aws = get_backend("rekognition")
    assert isinstance(aws, CircuitBreaker)
    assert isinstance(aws.service, RekognitionClient)
    assert aws.limits == RekognitionClient.limits
    with pytest.raises(ValueError, match="known: .*rekognition, http"):
        get_backend("nope")


def test_google_client_retries_then_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "k123")
    replies: list[Reply] = [
        (503, {}, error_body(503, "UNAVAILABLE", "busy")),
        (429, {"Retry-After": "0"}, error_body(429, "RESOURCE_EXHAUSTED", "quota")),
        (200, {}, json.dumps(GOOGLE_ANSWER).encode()),
    ]
    with scripted_server(replies) as (url, seen):
        client = GoogleRestClient(url, retry=fast_retry())
        [answer] = client.classify([jpeg_bytes(photo(1))])
    assert len(seen) == 3
    assert seen[0]["path"] == "/v1/images:annotate"
    assert seen[0]["headers"]["x-goog-api-key"] == "k123"
    request = json.loads(seen[0]["raw"])["requests"][0]
    assert request["features"] == [{"type": "LABEL_DETECTION", "maxResults": 10}]
    assert [label.name for label in answer] == ["Animal", "Cat", "tabby"]
    assert answer[0].class_id == name_class_id("animal")
    assert answer[2].class_id == 281  # wnid n02123045 -> ImageNet index
    assert answer[0].score == 0.99


def test_google_client_fails_loudly() -> None:
    busy: list[Reply] = [(503, {}, error_body(503, "UNAVAILABLE", "busy"))]
    with scripted_server(busy) as (url, seen):
        with pytest.raises(ServiceError, match=r"after 3 attempt\(s\).*UNAVAILABLE"):
            GoogleRestClient(url, retry=fast_retry(3)).classify([b"x"])
    assert len(seen) == 3
    denied: list[Reply] = [(403, {}, error_body(403, "PERMISSION_DENIED", "no key"))]
    with scripted_server(denied) as (url, seen):
        with pytest.raises(ServiceError, match="HTTP 403 PERMISSION_DENIED: no key"):
            GoogleRestClient(url, retry=fast_retry()).classify([b"x"])
    assert len(seen) == 1  # not retried
    per_image = {"responses": [{"error": {"code": 3, "message": "Bad image data"}}]}
    with scripted_server([(200, {}, json.dumps(per_image).encode())]) as (url, _):
        with pytest.raises(ServiceError, match="refused image 0: Bad image data"):
            GoogleRestClient(url, retry=fast_retry()).classify([b"x"])
    short = {"responses": []}
    with scripted_server([(200, {}, json.dumps(short).encode())]) as (url, _):
        with pytest.raises(ServiceError, match="answered 0 of 1"):
            GoogleRestClient(url, retry=fast_retry()).classify([b"x"])


def test_google_client_unreachable() -> None:
    with scripted_server([]) as (url, _):
        pass  # the port is closed again
    with pytest.raises(ServiceError, match="connection failed"):
        GoogleRestClient(url, retry=fast_retry(2)).classify([b"x"])


# --- Rekognition -------------------------------------------------------------------


def stubbed() -> tuple[RekognitionClient, Stubber]:
    client = boto3.client(
        "rekognition",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    return RekognitionClient(client), Stubber(client)


def test_rekognition_parameters_and_parsing() -> None:
    cloud, stubber = stubbed()
    data = jpeg_bytes(photo(1))
    labels = [{"Name": "Cat", "Confidence": 91.5}, {"Name": "Pet", "Confidence": 99.0}]
    stubber.add_response(
        "detect_labels",
        {"Labels": labels},
        expected_params={"Image": {"Bytes": data}, "MaxLabels": 10},
    )
    with stubber:
        [answer] = cloud.classify([data])
    stubber.assert_no_pending_responses()
    assert [(label.name, label.score) for label in answer] == [
        ("Pet", 0.99),
        ("Cat", 0.915),
    ]
    assert answer[1].class_id == name_class_id("cat")


def test_rekognition_modelled_error() -> None:
    cloud, stubber = stubbed()
    stubber.add_client_error(
        "detect_labels",
        service_error_code="InvalidImageFormatException",
        service_message="Request has invalid image format",
        http_status_code=400,
    )
    with stubber, pytest.raises(ServiceError, match="InvalidImageFormatException"):
        cloud.classify([jpeg_bytes(photo(1))])


def test_rekognition_refuses_before_sending() -> None:
    cloud, stubber = stubbed()
    with stubber:  # no responses queued: any call would fail the stubber
        with pytest.raises(ServiceError, match="under 80 px"):
            cloud.classify([jpeg_bytes(photo(1, size=(79, 200)))])
        with pytest.raises(ServiceError, match="over 5 MB"):
            cloud.classify([b"\xff" * (5 * 1024 * 1024 + 1)])
        with pytest.raises(ServiceError, match="not an image"):
            cloud.classify([b"hello"])
        webp = encode(photo(1, size=(200, 150)), Action(50, 1.0, "webp"))
        with pytest.raises(ServiceError, match="only JPEG and PNG"):
            cloud.classify([webp])


def test_encoding_for_rekognition_never_trips_its_guards() -> None:
    """What the device sends to Rekognition passes its checks, however small the
    action's downscale: the environment applies the client's limits."""
    cloud, stubber = stubbed()
    assert cloud.limits == UploadLimits(80, 5 * 1024 * 1024, frozenset({"jpeg", "png"}))
    data = encode(photo(1, size=(200, 150)), Action(5, 0.25), cloud.limits)
    check_upload(data)  # 50x38 would be refused; this is 107x80
    assert decoded_size(data) == (107, 80)


def test_google_requests_stay_under_the_request_cap() -> None:
    sizes = [len(b) for b in batches([b"x" * 3_000_000] * 5, 8, 10_000_000)]
    assert sizes == [2, 2, 1]
    assert [len(b) for b in batches([b"x"] * 17, 8, 10_000_000)] == [8, 8, 1]
    assert batches([], 8, 10_000_000) == []


def test_rekognition_standard_retries_on_loopback() -> None:
    throttled = (
        400,
        {"x-amzn-ErrorType": "ThrottlingException"},
        json.dumps(
            {"__type": "ThrottlingException", "message": "Rate exceeded"}
        ).encode(),
    )
    ok = json.dumps({"Labels": [{"Name": "Cat", "Confidence": 80.0}]}).encode()
    creds = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    with scripted_server([(503, {}, b"{}"), throttled, (200, {}, ok)]) as (url, seen):
        cloud = RekognitionClient(
            make_client(endpoint_url=url, max_attempts=3, **creds)
        )
        [answer] = cloud.classify([jpeg_bytes(photo(1))])
    assert len(seen) == 3 and answer[0].name == "Cat" and answer[0].score == 0.8
    assert seen[0]["headers"]["X-Amz-Target"] == "RekognitionService.DetectLabels"
    with scripted_server([(503, {}, b"{}")]) as (url, seen):
        cloud = RekognitionClient(
            make_client(endpoint_url=url, max_attempts=2, **creds)
        )
        with pytest.raises(ServiceError, match="rekognition"):
            cloud.classify([jpeg_bytes(photo(1))])
    assert len(seen) == 2  # botocore's attempts only, no second retry layer


@pytest.mark.parametrize(
    "answer",
    [
        {
            "responses": [
                {"labelAnnotations": [{"description": "Cat", "score": "high"}]}
            ]
        },
        {"responses": [{"labelAnnotations": "none"}]},
        {"responses": None},
        {"responses": ["not an object"]},
        {"responses": [{"labelAnnotations": [{"description": None, "score": 0.5}]}]},
    ],
    ids=["score-text", "labels-text", "responses-null", "response-text", "no-name"],
)
def test_a_200_answer_of_the_wrong_shape_is_a_service_error(answer: dict) -> None:
    with scripted_server([(200, {}, json.dumps(answer).encode())]) as (url, _):
        client = GoogleRestClient(url, retry=fast_retry())
        with pytest.raises(ServiceError, match="malformed|answered"):
            client.classify([jpeg_bytes(photo(1))])
    empty = {"responses": [{"labelAnnotations": None}]}  # Google: no labels found
    with scripted_server([(200, {}, json.dumps(empty).encode())]) as (url, _):
        assert GoogleRestClient(url).classify([jpeg_bytes(photo(1))]) == [[]]


def test_evaluate_goes_on_past_malformed_answers(tmp_path: Path) -> None:
    from adacompress.cli import main

    bad = {"labelAnnotations": [{"description": "x", "score": "hi"}]}

    def reply(raw: bytes) -> Reply:
        count = len(json.loads(raw)["requests"])
        return 200, {}, json.dumps({"responses": [bad] * count}).encode()

    folder = tmp_path / "in"
    folder.mkdir()
    photo(1).save(folder / "a.png")
    report = tmp_path / "r.json"
    with scripted_server(reply) as (url, _):
        args = [
            "--quiet",
            "evaluate",
            "--backend",
            url,
            "--agent",
            "lite0",
            "--images",
            str(folder),
            "--json",
            str(report),
        ]
        assert main(args) == 1
    result = json.loads(report.read_text())
    assert result["n_images"] == 0 and "malformed" in result["skipped"][0]["error"]


# --- hostile answers -----------------------------------------------------------


@contextmanager
def dripping_server(length: int, every: float) -> Iterator[str]:
    """Answers 200 with headers at once, then one byte of the body each ``every`` s."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(length))
            self.end_headers()
            try:
                for _ in range(length):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(every)
            except OSError:  # the client hung up
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_dripped_answer_ends_at_the_deadline_and_counts_as_a_failure() -> None:
    with dripping_server(1000, every=0.1) as url:
        guarded = CircuitBreaker(GoogleRestClient(url, timeout=1.0), max_failures=3)
        start = time.monotonic()
        with pytest.raises(ServiceUnreachable, match="timed out"):
            guarded.classify([jpeg_bytes(photo(1))])
        assert time.monotonic() - start < 2.0  # the deadline plus a second
    assert guarded.failures == 1


def test_an_answer_nested_too_deep_is_a_malformed_answer() -> None:
    deep = b'{"responses": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with scripted_server([(200, {}, deep)]) as (url, _):
        with pytest.raises(ServiceError, match="malformed"):
            GoogleRestClient(url, retry=fast_retry()).classify([jpeg_bytes(photo(1))])


def test_an_oversized_answer_is_refused() -> None:
    huge = b" " * (MAX_RESPONSE_BYTES + 1)
    with scripted_server([(200, {}, huge)]) as (url, _):
        with pytest.raises(ServiceError, match="refused unread"):
            GoogleRestClient(url, retry=fast_retry()).classify([jpeg_bytes(photo(1))])
