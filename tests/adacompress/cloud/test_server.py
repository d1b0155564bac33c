"""The emulated cloud over real HTTP on an ephemeral loopback port."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from adacompress.cli import main
from adacompress.cloud.clients import GoogleRestClient, RetryPolicy
from adacompress.cloud.emulated import EfficientNetLiteCloud
from adacompress.cloud.server import create_app, read_api_key, running
from adacompress.cloud.service import ServiceUnreachable
from adacompress.cloud.settings import ServeSettings
from adacompress.core.labels import imagenet_classes
from adacompress.device.zoo import shipped
from tests.helpers import jpeg_bytes, photo

ANNOTATE = "/v1/images:annotate"
LIMITS = {"max_request_bytes": 300_000, "max_image_bytes": 100_000}


@pytest.fixture(scope="module")
def lite0() -> EfficientNetLiteCloud:
    return EfficientNetLiteCloud("lite0")


@pytest.fixture(scope="module")
def url(lite0: EfficientNetLiteCloud) -> Iterator[str]:
    with running(create_app(ServeSettings(backend="lite0", **LIMITS), lite0)) as base:
        yield base


def body(*images: bytes, kind: Any = "LABEL_DETECTION", n: int = 10) -> dict:
    return {
        "requests": [
            {
                "image": {"content": base64.b64encode(data).decode()},
                "features": [{"type": kind, "maxResults": n}],
            }
            for data in images
        ]
    }


def assert_good_request_works(url: str) -> None:
    response = httpx.post(url + ANNOTATE, json=body(jpeg_bytes(photo(3))), timeout=60)
    assert response.status_code == 200
    labels = response.json()["responses"][0]["labelAnnotations"]
    assert len(labels) == 10


def test_healthz_and_a_good_request(url: str, lite0: EfficientNetLiteCloud) -> None:
    assert httpx.get(url + "/healthz").json() == {"status": "ok", "backend": "lite0"}
    images = [jpeg_bytes(photo(1)), jpeg_bytes(photo(2))]
    response = httpx.post(url + ANNOTATE, json=body(*images, kind=4, n=5), timeout=60)
    assert response.status_code == 200
    results = response.json()["responses"]
    expected = lite0.classify(images)
    wnids = [wnid for wnid, _ in imagenet_classes()]
    for result, answer in zip(results, expected, strict=True):
        labels = result["labelAnnotations"]
        assert len(labels) == 5
        assert [item["mid"] for item in labels] == [
            wnids[label.class_id] for label in answer[:5]
        ]
        assert all(0 <= item["score"] <= 1 for item in labels)
        assert set(labels[0]) == {"mid", "description", "score", "topicality"}


def too_many() -> dict:
    return body(*[jpeg_bytes(photo(1), quality=30)] * 17)


BAD_REQUESTS = {
    "not json": (b"{not json", 400, "not valid JSON"),
    "no requests": (json.dumps({"images": []}).encode(), 400, "'requests'"),
    "17 images": (json.dumps(too_many()).encode(), 400, "1 to 16"),
    "no content": (
        json.dumps({"requests": [{"image": {}, "features": []}]}).encode(),
        400,
        "content is missing",
    ),
    "no features": (
        json.dumps({"requests": [{"image": {"content": "AAAA"}}]}).encode(),
        400,
        "features is missing",
    ),
    "other feature": (
        json.dumps(body(b"xx", kind="FACE_DETECTION")).encode(),
        400,
        "only LABEL_DETECTION",
    ),
    "decoded image too large": (
        json.dumps(body(b"x" * 120_000)).encode(),
        400,
        "larger than 100000 bytes",
    ),
    "request too large": (b"x" * 400_000, 413, "request larger"),
}


@pytest.mark.parametrize("kind", list(BAD_REQUESTS))
def test_bad_requests_get_an_error_and_the_server_keeps_serving(
    url: str, kind: str
) -> None:
    payload, status, words = BAD_REQUESTS[kind]
    response = httpx.post(
        url + ANNOTATE,
        content=payload,
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == status and words in error["message"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert_good_request_works(url)


BAD_IMAGES = {
    "invalid base64": ("not base64!!", "not valid base64"),
    "not an image": (base64.b64encode(b"plain text, no picture").decode(), "image"),
    "too few pixels": (
        base64.b64encode(jpeg_bytes(photo(1, size=(20, 20)))).decode(),
        "too small",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_IMAGES))
def test_a_bad_image_gets_its_own_error_and_the_others_an_answer(
    url: str, kind: str
) -> None:
    content, words = BAD_IMAGES[kind]
    payload = body(jpeg_bytes(photo(1)))
    payload["requests"].insert(
        0, {**payload["requests"][0], "image": {"content": content}}
    )
    response = httpx.post(url + ANNOTATE, json=payload, timeout=60)
    assert response.status_code == 200
    bad, good = response.json()["responses"]
    assert bad["error"]["code"] == 3 and words in bad["error"]["message"]
    assert len(good["labelAnnotations"]) == 10
    assert_good_request_works(url)


def test_unknown_path_gets_a_google_shaped_error(url: str) -> None:
    response = httpx.get(url + "/v1/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["status"] == "NOT_FOUND"


def test_api_key(
    lite0: EfficientNetLiteCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key comes from a file or the environment (never the command line, where
    ps shows it) and is compared in constant time."""
    key_file = tmp_path / "key"
    key_file.write_text("s3cret\n")
    monkeypatch.setenv("ADACOMPRESS_SERVE_KEY", "from-env")
    app = create_app(ServeSettings(backend="lite0", api_key_file=str(key_file)), lite0)
    payload = body(jpeg_bytes(photo(1)))
    with running(app) as base:
        denied = httpx.post(base + ANNOTATE, json=payload, timeout=60)
        assert denied.status_code == 403
        assert denied.json()["error"]["status"] == "PERMISSION_DENIED"
        wrong = httpx.post(base + ANNOTATE + "?key=nope", json=payload, timeout=60)
        assert wrong.status_code == 403
        by_header = httpx.post(
            base + ANNOTATE, json=payload, headers={"x-goog-api-key": "s3cret"}
        )
        assert by_header.status_code == 200
        by_query = httpx.post(base + ANNOTATE + "?key=s3cret", json=payload, timeout=60)
        assert by_query.status_code == 200
    with running(create_app(ServeSettings(backend="lite0"), lite0)) as base:
        from_env = httpx.post(
            base + ANNOTATE, json=payload, headers={"x-goog-api-key": "from-env"}
        )
        assert from_env.status_code == 200
        assert httpx.post(base + ANNOTATE, json=payload).status_code == 403
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        create_app(ServeSettings(backend="lite0", api_key_file=str(empty)), lite0)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # would block a plain read forever
    big = tmp_path / "big"
    big.write_bytes(b"k" * 5000)
    for path, why in (
        ("/dev/zero", "not a regular file"),
        (fifo, "not a regular"),
        (big, "over 4096 bytes"),
    ):
        with pytest.raises(ValueError, match=why):
            read_api_key(ServeSettings(backend="lite0", api_key_file=str(path)))


def test_injected_faults(lite0: EfficientNetLiteCloud) -> None:
    payload = body(jpeg_bytes(photo(1)))
    throttled = ServeSettings(backend="lite0", throttled=1.0, retry_after=7)
    with running(create_app(throttled, lite0)) as base:
        response = httpx.post(base + ANNOTATE, json=payload)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"
        assert response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    with running(create_app(ServeSettings(unavailable=1.0), lite0)) as base:
        response = httpx.post(base + ANNOTATE, json=payload)
        assert response.status_code == 503
        assert response.json()["error"]["status"] == "UNAVAILABLE"
        assert httpx.get(base + "/healthz").status_code == 200  # faults: annotate only
    with running(create_app(ServeSettings(dropped=1.0), lite0)) as base:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(base + ANNOTATE, json=payload)
        with pytest.raises(httpx.RemoteProtocolError):  # and it keeps accepting
            httpx.post(base + ANNOTATE, json=payload)


def evaluate_report(backend: str, images: Path, tmp_path: Path, name: str) -> dict:
    out = tmp_path / f"{name}.json"
    argv = ["--quiet", "evaluate", "--backend", backend, "--images", str(images)]
    argv += ["--agent", str(shipped("lite0", "paper").file), "--json", str(out)]
    argv += ["--cache", str(tmp_path / f"{name}.sqlite"), "--plot", str(out) + ".png"]
    assert main(argv) == 0
    return json.loads(out.read_text())


def test_evaluate_over_http_with_faults_equals_in_process(
    imagenet_dir: Path, tmp_path: Path, lite0: EfficientNetLiteCloud
) -> None:
    listing = tmp_path / "images.txt"
    paths = sorted(imagenet_dir.glob("*.JPEG"))[::200]
    listing.write_text("\n".join(str(p.resolve()) for p in paths))
    local = evaluate_report("lite0", listing, tmp_path, "local")
    faults = ServeSettings(
        backend="lite0",
        unavailable=0.2,
        throttled=0.1,
        dropped=0.05,
        retry_after=0,
        seed=1,  # a seed under which each kind of fault happens in this short run
    )
    app = create_app(faults, lite0)
    with running(app) as base:
        remote = evaluate_report(base, listing, tmp_path, "remote")
    assert all(n > 0 for n in app.state.faults.values()), app.state.faults
    assert remote["backend"] == base and local["backend"] == "lite0"
    assert remote["skipped"] == local["skipped"] == []
    assert remote["n_images"] == local["n_images"] == len(paths)
    assert remote["service_calls"] == local["service_calls"]
    for key in ("agent", "fixed", "oracle", "reference_bytes"):
        assert remote[key] == local[key], key


def test_serve_command_runs_a_real_server() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "adacompress", "serve"]  # lite0 by default
    command += ["--port", str(port), "--min-pixels", "5000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert f"serving lite0 on {base}" in process.stdout.readline()
        # Printed only once it listens: the first try connects.
        assert httpx.get(base + "/healthz", timeout=60).status_code == 200
        small = jpeg_bytes(photo(1, size=(60, 60)))
        response = httpx.post(base + ANNOTATE, json=body(small), timeout=60)
        assert "too small" in response.json()["responses"][0]["error"]["message"]
        assert_good_request_works(base)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_refuses_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--throttled", "1.5"]) == 2
    assert "fault shares" in capsys.readouterr().err


def test_client_retries_timeouts_then_reports_them(
    lite0: EfficientNetLiteCloud,
) -> None:
    slow = create_app(ServeSettings(backend="lite0", latency=1.0), lite0)
    retry = RetryPolicy(max_attempts=2, base_delay=0.01, seed=0)
    with running(slow) as base:
        client = GoogleRestClient(base, timeout=0.2, retry=retry)
        start = time.monotonic()
        with pytest.raises(ServiceUnreachable, match=r"timed out.*within 0.2 s"):
            client.classify([jpeg_bytes(photo(1))])
        assert time.monotonic() - start < 1.0  # the timeout bounds the call
        patient = GoogleRestClient(base, timeout=30, retry=retry)
        assert len(patient.classify([jpeg_bytes(photo(1))])[0]) == 10


# --- hostile requests ---------------------------------------------------------------


def raw_post(base: str, content: bytes) -> httpx.Response:
    return httpx.post(
        base + ANNOTATE,
        content=content,
        timeout=60,
        headers={"content-type": "application/json"},
    )


@pytest.mark.parametrize(
    "content",
    [
        b'{"requests": [\xff\xfe]}',  # not UTF-8
        b"[" * 50_000 + b"]" * 50_000,  # nested too deep for the parser
    ],
    ids=["not-utf8", "deep-nesting"],
)
def test_undecodable_bodies_are_400_json(url: str, content: bytes) -> None:
    response = raw_post(url, content)
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_non_ascii_base64_is_that_images_error(url: str) -> None:
    payload = body(jpeg_bytes(photo(1)))
    payload["requests"].append(
        {"image": {"content": "ÿÿ=="}, "features": [{"type": "LABEL_DETECTION"}]}
    )
    response = httpx.post(url + ANNOTATE, json=payload, timeout=60)
    assert response.status_code == 200
    first, second = response.json()["responses"]
    assert "labelAnnotations" in first
    assert "base64" in second["error"]["message"]


def blank_png(side: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (side, side)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def test_a_request_of_many_large_pictures_is_refused_before_decoding(
    lite0: EfficientNetLiteCloud,
) -> None:
    big = blank_png(3000)  # 9 MP, a few kB compressed
    settings = ServeSettings(backend="lite0", max_request_pixels=20_000_000)
    with running(create_app(settings, lite0)) as base:
        started = time.monotonic()
        response = httpx.post(base + ANNOTATE, json=body(big, big, big), timeout=60)
        assert response.status_code == 413
        assert "pixels" in response.json()["error"]["message"]
        assert time.monotonic() - started < 5  # refused from the headers
        assert_good_request_works(base)


def test_too_many_requests_at_once_get_503_and_the_loop_stays_free(
    lite0: EfficientNetLiteCloud,
) -> None:
    """While one request is inside (decoding or classifying), the event loop still
    answers; past ``max_concurrent`` requests get 503 with Retry-After."""
    settings = ServeSettings(backend="lite0", max_concurrent=1, latency=2.0)
    payload = body(jpeg_bytes(photo(1)))
    with running(create_app(settings, lite0)) as base:
        first: dict[str, httpx.Response] = {}
        thread = threading.Thread(
            target=lambda: first.update(
                r=httpx.post(base + ANNOTATE, json=payload, timeout=60)
            ),
        )
        thread.start()
        time.sleep(0.5)
        assert httpx.get(base + "/healthz", timeout=5).status_code == 200
        busy = httpx.post(base + ANNOTATE, json=payload, timeout=60)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        thread.join()
        assert first["r"].status_code == 200


def test_slow_senders_do_not_stop_other_clients(lite0: EfficientNetLiteCloud) -> None:
    """More slow senders than compute slots (headers, a 1000-byte length, 4 bytes)
    hold only their own connections, and get 408 once they fall behind the pace
    (the grace, for 4 bytes), not at the 30 s limit."""
    settings = ServeSettings(backend="lite0", max_concurrent=2)
    with running(create_app(settings, lite0)) as base:
        host, port = base.removeprefix("http://").split(":")
        slow = []
        for _ in range(4):
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.sendall(
                b"POST /v1/images:annotate HTTP/1.1\r\nHost: x\r\n"
                b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"re'
            )
            slow.append(sock)
        start = time.monotonic()
        assert_good_request_works(base)
        replies = [sock.recv(4096).decode() for sock in slow]
        assert all(reply.startswith("HTTP/1.1 408") for reply in replies)
        assert time.monotonic() - start < 5.0
        for sock in slow:
            sock.close()


def test_a_slow_body_times_out_with_408(lite0: EfficientNetLiteCloud) -> None:
    settings = ServeSettings(backend="lite0", body_timeout=0.5)
    with running(create_app(settings, lite0)) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/images:annotate HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
            )
            reply = sock.recv(4096).decode()
        assert reply.startswith("HTTP/1.1 408")
        assert_good_request_works(base)


# --- memory ---------------------------------------------------------------------


def sixteen_bit_png(side: int) -> bytes:
    """A small file that decodes to ``side``² 16-bit pixels."""
    ramp = (np.arange(side, dtype=np.uint32) * 65535 // side).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(np.tile(ramp, (side, 1))).save(buffer, "PNG")
    return buffer.getvalue()


def test_an_image_over_pillows_bomb_limit_is_called_too_large(
    lite0: EfficientNetLiteCloud,
) -> None:
    buffer = io.BytesIO()
    Image.new("1", (14_000, 13_000)).save(buffer, "PNG")  # 182 MP, a few KB
    with running(create_app(ServeSettings(backend="lite0"), lite0)) as base:
        response = httpx.post(base + ANNOTATE, json=body(buffer.getvalue()), timeout=60)
    message = response.json()["responses"][0]["error"]["message"]
    assert "too large" in message and "base64" not in message


def test_a_request_that_cannot_be_decoded_within_the_budget_gets_413(
    lite0: EfficientNetLiteCloud,
) -> None:
    settings = ServeSettings(backend="lite0", decode_budget_mb=5)
    with running(create_app(settings, lite0)) as base:
        big = sixteen_bit_png(1000)  # 1 MP at 10 bytes a pixel, plus RGB
        response = httpx.post(base + ANNOTATE, json=body(big), timeout=60)
        assert response.status_code == 413
        assert "decodes at once" in response.json()["error"]["message"]
        assert_good_request_works(base)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux /proc")
def test_four_huge_16_bit_pngs_at_once_stay_under_a_gigabyte() -> None:
    """36-megapixel 16-bit PNGs of a few hundred KB, four at once, and truncated
    JPEGs claiming 5656² (``benchmarks/serve_memory.py``): the decode budget lets
    them through one at a time, and a real service stays under 1 GB."""
    script = Path(__file__).resolve().parents[3] / "benchmarks" / "serve_memory.py"
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    for attack in json.loads(done.stdout).values():
        assert attack["codes"] == [200] * 4
        assert attack["peak_mb"] < 1024
