"""Seed an MLflow tracking server with a registered model for fireline's rollback playbook.

docker-compose runs this once MLflow is healthy. The model gets versions 1..N,
each registered from its own run (no artifacts: nothing is served from them),
and the alias points at the newest, so the ``prediction-drift-rollback``
playbook has a champion to move back. Only what is missing is added: a second
run leaves the registry as it is, including an alias a rollback has moved since.

Standard library only, so it runs in MLflow's own image; MLflow's REST API 2.0::

    python seed.py --url http://mlflow:5000 --model fraud --versions 2 --alias champion
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

API = "/api/2.0/mlflow/"
DEFAULT_EXPERIMENT = "0"  # every tracking server has it


class SeedError(Exception):
    """The tracking server refused a call or never answered; the message says which."""

    def __init__(self, message: str, error_code: str = "") -> None:
        super().__init__(message)
        self.error_code = error_code


class MlflowRest:
    """The few REST calls the seed needs."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One REST call; an error answer raises SeedError with MLflow's own message."""
        url = f"{self.url}{API}{path}"
        data = None
        if method == "GET" and body:
            url += "?" + urllib.parse.urlencode(body)
        elif body is not None:
            data = json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return dict(json.loads(response.read() or b"{}"))
        except urllib.error.HTTPError as exc:
            code, message = _mlflow_error(exc)
            raise SeedError(f"{method} {path}: {message}", code) from None
        except (OSError, ValueError) as exc:
            raise SeedError(f"{method} {path}: {exc}") from None

    def wait_until_up(self, timeout_s: float) -> None:
        """Poll ``/health`` until it answers; SeedError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5):
                    return
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise SeedError(
                        f"MLflow at {self.url} did not answer within {timeout_s:.0f} s: {exc}"
                    ) from None
            time.sleep(1.0)


def _mlflow_error(exc: urllib.error.HTTPError) -> tuple[str, str]:
    """MLflow's error code and a message naming it, or the bare HTTP status."""
    try:
        answer = json.loads(exc.read())
        return answer["error_code"], f"HTTP {exc.code} {answer['error_code']}: {answer['message']}"
    except (ValueError, KeyError, TypeError):
        return "", f"HTTP {exc.code} {exc.reason}"


def seed(mlflow: MlflowRest, model: str, versions: int, alias: str) -> list[str]:
    """Make ``model`` have at least ``versions`` versions and ``alias``; say what was done."""
    done: list[str] = []
    try:
        registered = mlflow.call("GET", "registered-models/get", {"name": model})
    except SeedError as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        registered = mlflow.call(
            "POST",
            "registered-models/create",
            {"name": model, "description": "Seeded for the fireline demo (deploy/mlflow/seed.py)."},
        )
        done.append(f"created registered model {model}")
    aliases = {a["alias"]: a["version"] for a in registered["registered_model"].get("aliases", [])}
    found = mlflow.call(
        "GET", "model-versions/search", {"filter": f"name='{model}'", "max_results": 1000}
    )
    existing = [int(v["version"]) for v in found.get("model_versions", [])]
    for number in range(len(existing) + 1, versions + 1):
        existing.append(_register_version(mlflow, model, number))
        done.append(f"registered {model} v{existing[-1]}")
    if alias in aliases:  # a rollback may have moved it: leave it where it is
        done.append(f"{model}@{alias} already points at v{aliases[alias]}")
    else:
        newest = max(existing)
        mlflow.call(
            "POST",
            "registered-models/alias",
            {"name": model, "alias": alias, "version": str(newest)},
        )
        done.append(f"{model}@{alias} → v{newest}")
    return done


def _register_version(mlflow: MlflowRest, model: str, number: int) -> int:
    """A finished run standing for one training, and a model version registered from it."""
    run = mlflow.call(
        "POST",
        "runs/create",
        {
            "experiment_id": DEFAULT_EXPERIMENT,
            "run_name": f"{model} v{number} (seed)",
            "start_time": int(time.time() * 1000),
        },
    )["run"]["info"]
    mlflow.call(
        "POST",
        "runs/update",
        {"run_id": run["run_id"], "status": "FINISHED", "end_time": int(time.time() * 1000)},
    )
    created = mlflow.call(
        "POST",
        "model-versions/create",
        {
            "name": model,
            "source": f"runs:/{run['run_id']}/model",
            "run_id": run["run_id"],
            "description": "Seeded: a registry entry without artifacts.",
        },
    )
    return int(created["model_version"]["version"])


def main(argv: list[str] | None = None) -> int:
    """Seed, print one line per change; exit 1 with one line on stderr when MLflow refuses."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="tracking server, e.g. http://mlflow:5000")
    parser.add_argument("--model", default="fraud", help="registered model name (fraud)")
    parser.add_argument("--versions", type=int, default=2, help="versions it has at least (2)")
    parser.add_argument("--alias", default="champion", help="alias on the newest (champion)")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for MLflow")
    args = parser.parse_args(argv)
    if args.versions < 1:
        parser.error(f"--versions must be at least 1, got {args.versions}")
    mlflow = MlflowRest(args.url)
    try:
        mlflow.wait_until_up(args.wait)
        for line in seed(mlflow, args.model, args.versions, args.alias):
            print(f"mlflow seed: {line}", flush=True)
    except SeedError as exc:
        print(f"mlflow seed: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
