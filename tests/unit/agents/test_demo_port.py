"""`fireline demo` checks the worker's HTTP port before starting anything."""

from __future__ import annotations

import re
import socket

from agents.cli.demo import http_port_problem
from agents.kafka.broker import free_port


def test_http_port_problem__a_free_port_or_any_port_is_fine():
    assert http_port_problem("127.0.0.1", free_port()) is None
    assert http_port_problem("0.0.0.0", 0) is None


def test_http_port_problem__a_busy_port_names_the_setting_and_a_free_one():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        problem = http_port_problem("127.0.0.1", port)
        assert problem is not None
        found = re.fullmatch(
            rf"port {port} is already in use \(another fireline\?\); "
            r"set FIRELINE_HTTP_PORT to a free port, e\.g\. FIRELINE_HTTP_PORT=(\d+)",
            problem,
        )
        assert found, problem
        suggested = int(found.group(1))
        assert suggested > port
        assert http_port_problem("127.0.0.1", suggested) is None


def test_http_port_problem__an_address_this_host_lacks_names_the_host_setting():
    port = free_port()
    assert http_port_problem("192.0.2.1", port) == (  # TEST-NET-1: never local
        f"cannot listen on 192.0.2.1:{port} (Cannot assign requested address); "
        "check FIRELINE_HTTP_HOST"
    )
