"""Pruning the playbook-steps table (pure logic over an in-memory table)."""

from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import ValidationError

from agents.settings import Settings, Topics
from playbooks.engine import MemoryMap
from playbooks.step_retention import ACTION_REQUEST_RETENTION_S, sweep
from playbooks.steps import Outcome, StepState
from tests.unit.playbooks.test_engine import BASIC, engine_for, incident

DAY = 24 * 3600.0
WEEK = 7 * DAY


def everything(playbook: str) -> bool:
    return True


def test_records_the_engine_writes_are_stamped_and_pruned_after_retention(tmp_path):
    engine, calls = engine_for(tmp_path, BASIC)
    before = time.time()
    asyncio.run(engine.handle(incident(), 1000.0))
    (key,) = engine.done.all_keys()
    written = StepState.decode(engine.done.get(key) or b"")
    assert written.outcome is Outcome.OK and written.at is not None and written.at >= before

    assert sweep(engine.done, everything, written.at + WEEK - 1, WEEK).pruned == 0
    assert asyncio.run(engine.handle(incident(), 1000.0)) == []  # still idempotent
    assert sweep(engine.done, everything, written.at + WEEK + 1, WEEK).pruned == 1
    assert list(engine.done.all_keys()) == [] and calls == ["Latency spike on fraud-api in prod"]


def test_only_the_owned_playbooks_records_go_and_a_waiting_step_stays():
    done = MemoryMap()
    done[b"inc-1|1|rollback|0"] = StepState(outcome=Outcome.OK, at=0.0).encode()
    done[b"inc-1|1|page|0"] = StepState(outcome=Outcome.OK, at=0.0).encode()
    done[b"inc-2|1|rollback|1"] = StepState(outcome=Outcome.PENDING_APPROVAL, at=0.0).encode()

    result = sweep(done, lambda playbook: playbook == "rollback", WEEK * 2, WEEK)

    assert result.pruned == 1
    assert set(done) == {b"inc-1|1|page|0", b"inc-2|1|rollback|1"}


def test_records_from_before_timestamps_age_from_the_first_sweep():
    done = MemoryMap()
    done[b"inc-1|1|page|0"] = b'{"outcome":"ok"}'

    first = sweep(done, everything, 5000.0, WEEK)
    assert (first.pruned, first.stamped) == (0, 1)
    assert StepState.decode(done[b"inc-1|1|page|0"]).at == 5000.0
    assert sweep(done, everything, 5000.0 + WEEK + 1, WEEK).pruned == 1


def test_a_sweep_prunes_at_most_its_limit():
    done = MemoryMap()
    for n in range(10):
        done[f"inc-{n}|1|page|0".encode()] = StepState(outcome=Outcome.OK, at=0.0).encode()
    assert sweep(done, everything, WEEK * 2, WEEK, limit=4).pruned == 4
    assert len(done) == 6


def test_retention_must_outlast_the_action_requests_topic():
    retention_ms = Topics().configs()[Topics().action_requests]["retention.ms"]
    assert int(retention_ms) == ACTION_REQUEST_RETENTION_S * 1000
    with pytest.raises(ValidationError, match="step_retention_s"):
        Settings(step_retention_s=ACTION_REQUEST_RETENTION_S)
    assert Settings().step_retention_s == WEEK
