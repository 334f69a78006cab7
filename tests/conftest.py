"""Shared fixtures: the embedded broker for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agents.kafka.broker import EmbeddedBroker, free_port


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A real Kafka-protocol broker (Tansu) on a free port, stopped after the session."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(free_port(), log_file=log) as running:
        yield running
