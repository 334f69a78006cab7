"""Shared fixtures: the embedded broker for the whole session; the secret scan of every log."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from agents.kafka.broker import EmbeddedBroker, free_port
from tests.chaos.secret_scan import LOGS, mask


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A real Kafka-protocol broker (Tansu) on a free port, stopped after the session."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(free_port(), log_file=log) as running:
        yield running


@pytest.fixture(scope="session", autouse=True)
def in_process_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every log record emitted in this process, into a file the secret scan reads."""
    path = tmp_path_factory.mktemp("logs") / "pytest-process.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    LOGS.watch(path, {})
    yield
    logging.getLogger().removeHandler(handler)
    handler.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Learn the secrets a test sets in this process (e.g. a webhook secret for an action)."""
    try:
        return (yield)
    finally:
        LOGS.learn(os.environ)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a log line of this session holds a configured secret."""
    findings = LOGS.findings()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")
        secrets = ", ".join(sorted(mask(s) for s in LOGS.secrets)) or "none"
        reporter.write_line(
            f"secret scan: {len(LOGS.paths)} log file(s), {len(LOGS.secrets)} secret(s) "
            f"[{secrets}], {len(findings)} found"
        )
        for finding in findings:
            reporter.write_line(f"secret scan: {finding}", red=True)
    if findings:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
