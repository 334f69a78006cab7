"""Helpers for integration tests: a Slack-compatible server, a worker process, Kafka I/O.

The Slack stand-in is a real HTTP server on loopback speaking the Web API's JSON
shape; Kafka I/O uses confluent-kafka (librdkafka), an independent client, so the
tests do not only check fireline against its own client library.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from agents.kafka.broker import free_port
from tests.chaos.secret_scan import LOGS

SLACK_TOKEN = "xoxb-test-token-never-logged"


@dataclass
class SlackCall:
    method: str
    authorization: str | None
    body: dict[str, Any]


@dataclass
class SlackServer:
    """Records Web API calls and answers like Slack does."""

    calls: list[SlackCall] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    httpd: ThreadingHTTPServer | None = None
    disconnect: bool = False  # drop every connection without answering, like a dead proxy
    issued: float = 0.0  # the last ts handed out
    uploads: dict[str, bytes] = field(default_factory=dict)  # file id → bytes (files_upload_v2)
    fail_uploads: bool = False  # answer the upload URL with a 500
    outage: int = 0  # answer every Web API call with this HTTP status (e.g. 503, 429)
    retry_after: str | None = None  # with the outage's answers (a 429 storm)
    # Top-level messages per channel id, oldest first (conversations.history): (ts, metadata).
    history: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/api/"

    def next_ts(self) -> str:
        """A fresh message ts, unique even for calls in the same microsecond."""
        with self.lock:
            self.issued = max(self.issued + 0.000001, time.time())
            return f"{self.issued:.6f}"

    def called(self, method: str) -> list[dict[str, Any]]:
        """The bodies of the calls of ``method``, in order."""
        with self.lock:
            return [c.body for c in self.calls if c.method == method]

    def messages(self, containing: str = "") -> list[str]:
        with self.lock:
            return [
                str(c.body.get("text", ""))
                for c in self.calls
                if c.method == "chat.postMessage" and containing in str(c.body.get("text", ""))
            ]

    def reply(self, method: str, body: dict[str, Any], ok: bool) -> dict[str, Any]:
        """Slack's answer to ``method``: a posted message, an upload URL, a completed upload."""
        if not ok:
            return {"ok": False, "error": "invalid_auth"}
        if method == "files.getUploadURLExternal":
            file_id = f"F{len(self.calls):08d}"
            port = self.httpd.server_address[1] if self.httpd else 0
            url = f"http://127.0.0.1:{port}/upload/{file_id}"
            return {"ok": True, "upload_url": url, "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = json.loads(str(body.get("files", "[]")))
            if any(f["id"] not in self.uploads for f in files):
                return {"ok": False, "error": "file_not_uploaded"}
            return {"ok": True, "files": [{"id": f["id"]} for f in files]}
        if method == "conversations.history":
            return self.channel_history(body)
        channel, ts = channel_id(body.get("channel")), self.next_ts()
        if method == "chat.postMessage" and not body.get("thread_ts"):
            with self.lock:
                self.history.setdefault(channel, []).append((ts, body.get("metadata")))
        return {"ok": True, "channel": channel, "ts": ts}

    def channel_history(self, query: dict[str, Any]) -> dict[str, Any]:
        """The channel's latest top-level messages, newest first; metadata only when asked."""
        with self.lock:
            posted = list(self.history.get(channel_id(query.get("channel")), []))
        with_metadata = str(query.get("include_all_metadata", "")).lower() in ("1", "true")
        messages = []
        for ts, metadata in reversed(posted[-int(query.get("limit") or 100) :]):
            message: dict[str, Any] = {"type": "message", "ts": ts}
            if with_metadata and metadata:
                message["metadata"] = metadata
            messages.append(message)
        return {"ok": True, "messages": messages, "has_more": False}

    def interrupted(self, handler: BaseHTTPRequestHandler) -> bool:
        """Drop the connection (``disconnect``) or refuse the call (``outage``); or not."""
        if self.disconnect:
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return True
        if not self.outage:
            return False
        error = "ratelimited" if self.outage == 429 else "service_unavailable"
        data = json.dumps({"ok": False, "error": error}).encode()
        handler.send_response(self.outage)
        if self.retry_after is not None:
            handler.send_header("Retry-After", self.retry_after)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        return True

    def start(self) -> SlackServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # conversations.history: its arguments in the query
                path, _, query = self.path.partition("?")
                self.call(path.removeprefix("/api/"), dict(parse_qsl(query)))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                path, _, query = self.path.partition("?")
                if path.startswith("/upload/"):  # files_upload_v2's step 2: the bytes
                    self.upload(path.removeprefix("/upload/"), raw)
                    return
                json_body = self.headers.get("Content-Type", "").startswith("application/json")
                self.call(path.removeprefix("/api/"), _request_body(raw, query, json_body))

            def call(self, method: str, body: dict[str, Any]) -> None:
                with server.lock:
                    server.calls.append(SlackCall(method, self.headers.get("Authorization"), body))
                if server.interrupted(self):
                    return
                ok = self.headers.get("Authorization") == f"Bearer {SLACK_TOKEN}"
                reply = server.reply(method, body, ok)
                self.answer(200, json.dumps(reply).encode(), "application/json; charset=utf-8")

            def upload(self, file_id: str, raw: bytes) -> None:
                with server.lock:
                    server.calls.append(SlackCall("upload", None, {"file_id": file_id}))
                    if server.fail_uploads:
                        status = 500
                    else:
                        server.uploads[file_id] = raw
                        status = 200
                self.answer(status, b"OK", "text/plain")

            def answer(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()


class SocketModeServer:
    """Slack's Socket Mode side on loopback: ``apps.connections.open`` and the websocket.

    Like Slack, it hands out a websocket URL only for the app-level token, with a
    single-use ticket, greets each connection with ``hello`` and expects every
    envelope it sends to be acknowledged with ``{"envelope_id": ...}``. Runs its own
    event loop in a thread.
    """

    def __init__(self, app_token: str) -> None:
        self.app_token = app_token
        self.opens: list[str | None] = []  # the Authorization header of each open
        self.tickets: list[str] = []  # the ticket of each handshake
        self.fail_handshakes = 0  # answer this many handshakes 503 (their tickets are spent)
        self.acks: list[dict[str, Any]] = []
        self.sockets: list[web.WebSocketResponse] = []
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def start(self) -> SocketModeServer:
        async def open_connection(request: web.Request) -> web.Response:
            authorization = request.headers.get("Authorization")
            with self.lock:
                self.opens.append(authorization)
            if authorization != f"Bearer {self.app_token}":
                return web.json_response({"ok": False, "error": "invalid_auth"})
            ticket = uuid.uuid4().hex
            url = f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id=A0TEST"
            return web.json_response({"ok": True, "url": url})

        async def link(request: web.Request) -> web.StreamResponse:
            ticket = request.query.get("ticket", "")
            with self.lock:
                spent = ticket in self.tickets
                self.tickets.append(ticket)
                fail = self.fail_handshakes > 0
                self.fail_handshakes -= fail
            if spent:
                return web.Response(status=403, text="ticket already used")
            if fail:
                return web.Response(status=503, text="try again")
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "applink-test", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": "A0TEST"},
                }
            )
            with self.lock:
                self.sockets.append(ws)
            try:
                async for message in ws:
                    if message.type == web.WSMsgType.TEXT:
                        with self.lock:
                            self.acks.append(json.loads(message.data))
            finally:
                with self.lock:
                    self.sockets.remove(ws)
            return ws

        app = web.Application()
        app.router.add_post("/api/apps.connections.open", open_connection)
        app.router.add_get("/link/", link)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def serve() -> None:
            self.runner = web.AppRunner(app)
            await self.runner.setup()
            await web.SockSite(self.runner, sock).start()

        self.call(serve())
        return self

    def call(self, coro: Any) -> Any:
        """Run ``coro`` on the server's loop and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def connections(self) -> int:
        with self.lock:
            return len(self.sockets)

    def send(self, envelope: dict[str, Any]) -> None:
        """Send ``envelope`` over the newest connection, as Slack picks one of them."""
        with self.lock:
            ws = self.sockets[-1]
        self.call(ws.send_json(envelope))

    def press(self, action_id: str, username: str) -> str:
        """Send an ``interactive`` envelope: ``username`` pressed the button ``action_id``."""
        envelope_id = str(uuid.uuid4())
        payload = {
            "type": "block_actions",
            "user": {"id": "U0TEST", "username": username, "name": username, "team_id": "T0"},
            "api_app_id": "A0TEST",
            "container": {"type": "message", "channel_id": "C0TEST", "is_ephemeral": False},
            "trigger_id": "1.2.3",
            "channel": {"id": "C0TEST", "name": "fireline-alerts"},
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "buttons",
                    "type": "button",
                    "value": action_id.split(":", 1)[1],
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        self.send(
            {
                "envelope_id": envelope_id,
                "type": "interactive",
                "accepts_response_payload": False,
                "payload": payload,
            }
        )
        return envelope_id

    def acked(self, envelope_id: str) -> bool:
        with self.lock:
            return {"envelope_id": envelope_id} in self.acks

    def stop(self) -> None:
        async def shutdown() -> None:
            for ws in list(self.sockets):
                await ws.close()
            if self.runner is not None:
                await self.runner.cleanup()

        if self.loop is not None and self.thread is not None:
            self.call(shutdown())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


def _request_body(raw: bytes, query: str, json_body: bool) -> dict[str, Any]:
    """A Web API call's arguments: its JSON or form body over its query (some methods use both)."""
    body = json.loads(raw or b"{}") if json_body else dict(parse_qsl(raw.decode()))
    return {**dict(parse_qsl(query)), **body}


def channel_id(channel: Any) -> Any:
    """Slack answers with the channel's id even when a name was given: ``#ops`` → ``C…``."""
    if isinstance(channel, str) and channel.startswith("#"):
        return "C" + channel.encode().hex()[:10].upper()
    return channel


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def topic_env(app_id: str) -> dict[str, str]:
    """Per-test topic names, so tests sharing one broker never see each other's events."""
    return {
        "FIRELINE_APP_ID": app_id,
        "FIRELINE_TOPICS__PREDICTIONS": f"{app_id}.predictions",
        "FIRELINE_TOPICS__LABELS": f"{app_id}.labels",
        "FIRELINE_TOPICS__METRICS": f"{app_id}.metrics",
        "FIRELINE_TOPICS__INCIDENTS": f"{app_id}.incidents",
        "FIRELINE_TOPICS__ACTIONS": f"{app_id}.actions",
        "FIRELINE_TOPICS__DEAD_LETTER": f"{app_id}.dead-letter",
        "FIRELINE_TOPICS__DETECTIONS": f"{app_id}.detections",
        "FIRELINE_TOPICS__SILENCES": f"{app_id}.silences",
        "FIRELINE_TOPICS__APPROVALS": f"{app_id}.approvals",
        "FIRELINE_TOPICS__CHAT_THREADS": f"{app_id}.chat-threads",
        "FIRELINE_TOPICS__ACTION_REQUESTS": f"{app_id}.action-requests",
        "FIRELINE_TOPICS__ACTION_CONTROLS": f"{app_id}.action-controls",
    }


@dataclass
class WorkerProcess:
    """A real `fireline run` process."""

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return int(self.env["FIRELINE_HTTP_PORT"])

    def topic(self, name: str) -> str:
        return self.env[f"FIRELINE_TOPICS__{name.upper()}"]

    def command(self) -> list[str]:
        return [sys.executable, "-m", "agents.cli.main", "run", "--loglevel", "info"]

    def start(self, ready_timeout_s: float = 60.0) -> WorkerProcess:
        for attempt in range(3):
            logged = self.log_path.stat().st_size if self.log_path.exists() else 0
            self.launch()
            try:
                self.wait_ready(ready_timeout_s)
                return self
            except AssertionError:
                lost_port = "address already in use" in self.log()[logged:]
                if attempt == 2 or not lost_port:
                    raise
            # Its HTTP port was taken between free_port() and the bind (another test's
            # connection got it as an ephemeral port): the same worker on a fresh port.
            self.env = {**self.env, "FIRELINE_HTTP_PORT": str(free_port())}
        return self

    def launch(self) -> WorkerProcess:
        """Start the process without waiting for it to be ready."""
        LOGS.watch(self.log_path, self.env)  # scanned for its secrets when the session ends
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it until it exits
        self.process = subprocess.Popen(
            self.command(),
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        wait_for(
            lambda: self.get("/readyz")[0] == 200,
            timeout_s,
            f"worker ready; log:\n{self.log()}",
        )

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        """Call the worker's API; return the status and the decoded JSON body."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method
        )
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=15) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"worker exited with {self.process.returncode}:\n{self.log()}"
                ) from None
            return 0, ""

    def metric(self, name: str, **labels: str) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        _, text = self.get("/metrics")
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
                raise AssertionError(
                    f"worker ignored {sig!r} for {timeout_s}s:\n{self.log()}"
                ) from None
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def worker_env(
    broker_url: str, slack: SlackServer | None, playbooks_dir: Path | None = None, **extra: str
) -> dict[str, str]:
    """A worker's environment; without ``slack``, no bot token (the console sink)."""
    app_id = unique("it")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FIRELINE_")},
        **topic_env(app_id),
        "FIRELINE_BROKER_URL": broker_url,
        "FIRELINE_DATA_DIR": str(Path(tempfile.gettempdir()) / "fireline-tests"),
        "FIRELINE_HTTP_HOST": "127.0.0.1",
        "FIRELINE_HTTP_PORT": str(free_port()),
        "FIRELINE_PARTITIONS": "2",
        "FIRELINE_PLAYBOOKS_POLL_S": "0.5",
        "FIRELINE_WORKER__SESSION_TIMEOUT_S": "3",
        "FIRELINE_WORKER__HEARTBEAT_INTERVAL_S": "0.5",
        "FIRELINE_WORKER__REBALANCE_TIMEOUT_S": "3",
        "FIRELINE_WORKER__COMMIT_INTERVAL_S": "0.5",
    }
    if slack is not None:
        env["FIRELINE_SLACK_TOKEN"] = SLACK_TOKEN
        env["FIRELINE_SLACK_BASE_URL"] = slack.base_url
    env.update(extra)
    if playbooks_dir is not None:
        env["FIRELINE_PLAYBOOKS_DIR"] = str(playbooks_dir)
    return env


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def produce(
    bootstrap: str, topic: str, values: Iterable[bytes], key: bytes | None = None, **config: Any
) -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **config})
    count = 0
    for value in values:
        producer.produce(topic, value=value, key=key)
        producer.poll(0)
        count += 1
    remaining = producer.flush(15)
    producer.close()
    assert remaining == 0, f"{remaining} messages not delivered to {topic}"
    return count


def consume(
    bootstrap: str,
    topic: str,
    expected: int,
    timeout_s: float = 30.0,
    where: Callable[[Any], bool] = lambda message: True,
) -> list[Any]:
    """Read ``topic`` from the start until ``expected`` messages satisfying ``where`` arrive."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique("reader"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    # Assign every partition from the start: no group join (which on Tansu takes half
    # of librdkafka's 45 s session timeout).
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = metadata.topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    messages: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None and where(message):
                messages.append(message)
    finally:
        consumer.close()
    return messages


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The log end offset of each partition of ``topic`` (the next offset to be written)."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("ends")})
    try:
        partitions = reader.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
    finally:
        reader.close()


#: Lines of a worker's log that a failed wait_processed quotes.
LOG_TAIL_LINES = 60


def wait_processed(
    bootstrap: str, worker: WorkerProcess, *names: str, timeout_s: float = 30.0
) -> None:
    """Wait until ``worker``'s group has committed past every record now in each topic.

    ``names`` are the worker's topic names (``metrics``, ``detections``, ...), in
    the order records flow: each topic's end is read only once the topics before it
    are processed, so the records their processing wrote are counted. A worker
    publishes what an event causes before acknowledging it, so once this returns,
    everything those records cause has happened: what has not happened by then
    will not (the positive signal before an absence check).
    """
    group = worker.env["FIRELINE_APP_ID"]
    reader = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        for name in names:
            topic = worker.topic(name)
            ends = {p: end for p, end in end_offsets(bootstrap, topic).items() if end > 0}
            done: dict[int, int] = {}  # the group's committed offsets, as last asked

            def caught_up(
                topic: str = topic, ends: dict[int, int] = ends, done: dict[int, int] = done
            ) -> bool:
                asked = [TopicPartition(topic, p) for p in ends]
                done.update({tp.partition: tp.offset for tp in reader.committed(asked, timeout=10)})
                return all(done[p] >= end for p, end in ends.items())

            try:
                wait_for(caught_up, timeout_s, f"{group} to commit past {ends} of {topic}")
            except AssertionError as failure:
                # What the group did commit (negative: nothing) and the worker's last
                # words, in the report itself: the log's tmp_path may be gone by then.
                tail = "\n".join(worker.log().splitlines()[-LOG_TAIL_LINES:])
                raise AssertionError(
                    f"{failure}; committed: {done}; the end of {worker.log_path}:\n{tail}"
                ) from None
    finally:
        reader.close()


def metric_event(ts: float, value: float, service: str, name: str = "latency_ms") -> bytes:
    """A sample of ``service``, which serves model ``<service>-model`` (its own incident group)."""
    labels = {"service": service, "model": f"{service}-model", "model_version": "7"}
    return json.dumps({"timestamp": ts, "name": name, "value": value, "labels": labels}).encode()


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline or text in environ:
            found.append(f"{entry.name}: {cmdline}")
    return found
