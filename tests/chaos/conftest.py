"""Fixtures of the chaos suite (the embedded broker is the session's, tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.support import SlackServer


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackServer]:
    """A loopback Slack Web API stand-in, one per test module (its calls are per module)."""
    server = SlackServer().start()
    yield server
    server.stop()
