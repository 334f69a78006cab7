"""Loopback HTTP stand-ins for a deployer and a webhook receiver, counting every request.

Each path answers as its ``Fault`` says: 200, a 5xx, a 429 with Retry-After, or
no answer before the caller's timeout. Runs in a thread, like the workers it
serves are other processes.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Fault:
    """How a path answers: ``status`` (with ``Retry-After`` if set) after ``delay_s``."""

    status: int = 200
    retry_after: str | None = None
    delay_s: float = 0.0


OK = Fault()


@dataclass(frozen=True)
class Request:
    path: str
    body: dict[str, Any]
    at: float  # time.monotonic() when it arrived
    idempotency_key: str | None = None


@dataclass
class HttpStandIn:
    """Records every request; ``faults[path]`` picks each path's answer (default 200)."""

    faults: dict[str, Fault] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    httpd: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def received(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def per_incident(self, path: str, key: str = "incident_id") -> Counter[str]:
        """How many requests to ``path`` named each incident (by ``key`` of the JSON body)."""
        return Counter(str(r.body.get(key) or r.body.get("id")) for r in self.received(path))

    def effects_per_incident(self, path: str, key: str = "incident_id") -> Counter[str]:
        """How many times ``path`` acted for each incident, honouring ``Idempotency-Key``.

        Like a receiver that honours the header: a request whose key it has seen
        before does not act again. Requests without a key act each time.
        """
        seen: set[str] = set()
        acted: Counter[str] = Counter()
        for request in self.received(path):
            if request.idempotency_key is not None:
                if request.idempotency_key in seen:
                    continue
                seen.add(request.idempotency_key)
            acted[str(request.body.get(key) or request.body.get("id"))] += 1
        return acted

    def start(self) -> HttpStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"unparsed": raw.decode(errors="replace")}
                with stand_in.lock:
                    stand_in.requests.append(
                        Request(
                            self.path,
                            body,
                            time.monotonic(),
                            self.headers.get("Idempotency-Key"),
                        )
                    )
                    fault = stand_in.faults.get(self.path, OK)
                if fault.delay_s:
                    time.sleep(fault.delay_s)
                data = json.dumps({"ok": fault.status < 400}).encode()
                try:
                    self.send_response(fault.status)
                    if fault.retry_after is not None:
                        self.send_header("Retry-After", fault.retry_after)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the caller gave up (its timeout) before the answer

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
