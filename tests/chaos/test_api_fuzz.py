"""schemathesis against a real worker, from the OpenAPI description it serves.

Every operation gets valid and invalid requests (bodies, queries, path ids),
with an admin token (and valid ones without a token): no answer is a 5xx,
every error is a JSON object with an ``error`` string, and every answer is one
the description allows (status code, content type). About 230 requests.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from agents.kafka.broker import EmbeddedBroker
from tests.integration.support import WorkerProcess, worker_env

pytestmark = pytest.mark.integration

ADMIN = "fuzz-admin-token"
EXAMPLES = {"admin": 8, "anonymous": 3}  # per operation and generation mode


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    env = worker_env(
        broker.url,
        None,
        FIRELINE_API_TOKEN=ADMIN,
        FIRELINE_SLACK_SIGNING_SECRET="fuzz-signing-secret",
        FIRELINE_ALERTMANAGER_TOKEN="fuzz-alertmanager-token",
    )
    process = WorkerProcess(env, Path(tmp_path_factory.mktemp("worker")) / "worker.log").start()
    yield process
    process.stop()


def served_description(worker: WorkerProcess) -> dict[str, Any]:
    url = f"http://127.0.0.1:{worker.port}/openapi.json"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


CHECKS: list[CheckFunction] = [status_code_conformance, content_type_conformance]


def fuzz(
    operation: Any,
    mode: GenerationMode,
    who: str,
    base_url: str,
    seen: dict[int, int],
    failures: list[str],
) -> None:
    """``EXAMPLES`` requests to one operation; 5xx answers are collected in ``failures``."""
    headers = {"Authorization": f"Bearer {ADMIN}"} if who == "admin" else {}

    @settings(
        max_examples=EXAMPLES[who],
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=15)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        where = f"{case.method} {case.formatted_path} ({who}, {mode.value})"
        if response.status_code >= 500:
            failures.append(f"{where}: {response.status_code} {response.text[:200]}")
        if response.status_code >= 400:
            body = response.json()
            assert isinstance(body, dict) and isinstance(body.get("error"), str), (
                where,
                response.text[:200],
            )
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # no parameter or body to make invalid


def test_api__no_5xx_and_every_error_is_json(worker):
    base_url = f"http://127.0.0.1:{worker.port}"
    schema = schemathesis.openapi.from_dict(served_description(worker))
    seen: dict[int, int] = {}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, "admin", base_url, seen, failures)
        fuzz(operation, GenerationMode.POSITIVE, "anonymous", base_url, seen, failures)
    print(f"schemathesis: {sum(seen.values())} requests, by status {dict(sorted(seen.items()))}")
    assert failures == []
    assert sum(seen.values()) > 150 and any(code < 300 for code in seen)
