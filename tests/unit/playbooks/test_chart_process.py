"""Charts drawn in a child process: the same PNG as in-process, errors carried back, a dead child replaced."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from fireline.errors import ChartError
from fireline.incident import Evidence
from playbooks.chat.chart import render_chart
from playbooks.chat.chart_process import ChartProcess
from tests.unit.orphans import assert_child_exits_with_killed_worker
from tests.unit.playbooks.test_evidence_chart import T0, evidence


@pytest.fixture
def charts():
    process = ChartProcess()
    yield process
    process.close()


def child_pids(process: ChartProcess) -> list[int]:
    pool = process._pool
    return list(pool._processes) if pool is not None and pool._processes else []  # type: ignore[attr-defined]


def test_a_chart_drawn_in_the_child_is_the_png_drawn_in_process(charts):
    png = asyncio.run(charts.render(evidence(), "latency_ms of fraud-api"))
    assert png == render_chart(evidence(), "latency_ms of fraud-api")
    assert child_pids(charts) and os.getpid() not in child_pids(charts)


def test_a_chart_error_in_the_child_reaches_the_caller_with_its_message(charts):
    empty = Evidence(series="x", baseline=1.0, detected_at=T0)
    with pytest.raises(ChartError, match="no evidence points for x"):
        asyncio.run(charts.render(empty))


def test_a_killed_child_fails_its_chart_and_the_next_chart_gets_a_new_child(charts):
    asyncio.run(charts.render(evidence()))
    [pid] = child_pids(charts)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ChartError, match="the chart process ended"):
        asyncio.run(charts.render(evidence()))
    assert asyncio.run(charts.render(evidence())).startswith(b"\x89PNG")
    assert child_pids(charts) and pid not in child_pids(charts)


def test_the_child_exits_when_its_worker_is_killed():
    code = (
        "import asyncio, os, signal\n"
        "from playbooks.chat.chart_process import CHARTS\n"
        "from tests.unit.playbooks.test_evidence_chart import evidence\n"
        "asyncio.run(CHARTS.render(evidence()))\n"
        "print(*CHARTS._pool._processes, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert_child_exits_with_killed_worker(code, "chart process")
