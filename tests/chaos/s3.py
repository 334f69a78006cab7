"""A loopback S3-compatible server (moto's) for the broker's durable storage."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3

from agents.kafka.broker import free_port
from agents.kafka.processes import stop_process_group
from tests.integration.support import wait_for

REGION = "us-east-1"


@contextmanager
def s3_server(bucket: str, log_path: Path) -> Iterator[dict[str, str]]:
    """Run ``moto_server`` on a free port with ``bucket`` created; yield the AWS_* variables.

    They are what Tansu's ``s3://`` storage engine reads: the endpoint, plain HTTP
    allowed (loopback), dummy credentials and a region.
    """
    port = free_port()
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    env = {
        "AWS_ENDPOINT": f"http://127.0.0.1:{port}",
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "fireline-chaos",
        "AWS_SECRET_ACCESS_KEY": "fireline-chaos",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }
    try:
        client = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT"],
            region_name=REGION,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )

        def created() -> bool:
            assert process.poll() is None, log_path.read_text(errors="replace")
            try:
                client.create_bucket(Bucket=bucket)
            except Exception:  # noqa: BLE001 - not listening yet
                return False
            return True

        wait_for(created, 30, f"moto_server on port {port}")
        yield env
    finally:
        stop_process_group(process, 5)


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set ``values`` in this process's environment (inherited by the broker) for a while."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
