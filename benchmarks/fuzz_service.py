"""A fuzzing campaign against ``adacompress serve``, generated from its own OpenAPI
schema (schemathesis), with and without the API key.

    python benchmarks/fuzz_service.py [--examples 2500] [--seed 0]
        [--json out/fuzz_service.json]

A real ``adacompress serve`` on 127.0.0.1 (requiring a key); every operation of its
schema, ``--examples`` generated requests each with the key and as many without
(or with a wrong one, as generated), each from schema-valid and from schema-invalid
data (schemathesis's positive and negative modes). Every answer is checked: no 5xx;
every error a JSON body in the service's error shape; every answer conforming to
the schema (status codes, content type, body: schemathesis's checks). Reports the
requests by operation, mode and status class, each kind of failure with an example,
and the server's resident and peak memory at the end (Linux). Exit status 1 if
anything failed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Err

from _common import add_smoke, memory_mb, smoke_path
from served import serving

KEY = "fuzz-key"


def error_shape(body: Any) -> bool:
    """Whether ``body`` is the service's error: ``{"error": {code, message,
    status}}``."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return False
    error = body["error"]
    return (
        isinstance(error.get("code"), int)
        and isinstance(error.get("message"), str)
        and isinstance(error.get("status"), str)
    )


def operations(schema: Any) -> list[Any]:
    """Every operation of the schema; a part the schema cannot describe stops the
    campaign (nothing would test it)."""
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        found.append(result.ok())
    return found


def campaign(base: str, examples: int, seed_base: int) -> dict[str, Any]:
    """Send the generated requests; count them and what failed."""
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    counts: Counter[str] = Counter()
    failures: dict[str, str] = {}

    def fail(kind: str, example: str) -> None:
        counts[f"failed: {kind}"] += 1
        failures.setdefault(kind, example[:1500])

    def fuzz(operation: Any, mode: GenerationMode, keyed: bool, run_seed: int) -> None:
        @seed(run_seed)
        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],
        )
        def send(case: Any) -> None:
            headers = {"x-goog-api-key": KEY} if keyed else None
            try:
                response = case.call(base_url=base, headers=headers, timeout=60)
            except Exception as err:  # the client could not send it at all
                counts["not sendable"] += 1
                failures.setdefault("not sendable", repr(err)[:300])
                return
            counts["requests"] += 1
            counts[
                f"{operation.label} {mode.value} {response.status_code // 100}xx"
            ] += 1
            if response.status_code >= 500:
                fail("5xx", f"{response.status_code} {response.text}")
            if response.status_code >= 400:
                try:
                    body = response.json()
                except ValueError:
                    body = None
                if not error_shape(body):
                    fail("error not in the service's shape", response.text)
            try:
                case.validate_response(response)
            except (Exception, BaseExceptionGroup) as err:  # schemathesis's checks
                fail("schema", str(err))

        try:
            send()
        except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
            counts[f"{operation.label} {mode.value}: nothing to generate"] += 1

    runs = [
        (operation, mode, keyed)
        for operation in operations(schema)
        for mode in GenerationMode
        for keyed in (True, False)
    ]
    for index, (operation, mode, keyed) in enumerate(runs):
        fuzz(operation, mode, keyed, seed_base + index)
    return {"counts": dict(sorted(counts.items())), "failures": failures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("out/fuzz_service.json"))
    add_smoke(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.examples, args.json = 2, smoke_path(args.json)
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp, "key")
        key_file.write_text(KEY)
        with serving("--api-key-file", str(key_file)) as (base, server):
            start = time.monotonic()
            report = campaign(base, args.examples, args.seed)
            report["seconds"] = round(time.monotonic() - start, 1)
            report["server_memory_mb"] = memory_mb(server.pid)
            report["server_alive"] = server.poll() is None
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    failed = any(k.startswith("failed") for k in report["counts"])
    return 1 if failed or not report["server_alive"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
