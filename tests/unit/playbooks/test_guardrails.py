"""The pure guardrail logic: counters, admission, deadlines, the kill switch fold."""

from __future__ import annotations

from playbooks.guardrails import (
    HOUR_S,
    Deadline,
    GuardState,
    add_deadline,
    admit_run,
    admit_target,
    drop_deadlines,
    due_deadlines,
)
from playbooks.kill_switch import ALL, KillSwitch, Pause
from tests.factories import make_incident


def test_admit_run__cooldown_per_fingerprint_then_free_again():
    held, state = admit_run(GuardState(), "f", 1000.0, cooldown=600, max_runs_per_hour=None)
    assert held is None
    assert (
        admit_run(state, "f", 1599.0, 600, None)[0] == "cooldown: ran for this fingerprint 599s ago"
    )
    assert admit_run(state, "other", 1001.0, 600, None)[0] is None
    assert admit_run(state, "f", 1600.0, 600, None)[0] is None


def test_admit_run__a_held_run_changes_nothing():
    _, state = admit_run(GuardState(), "f", 1000.0, cooldown=600, max_runs_per_hour=None)
    held, after = admit_run(state, "f", 1100.0, cooldown=600, max_runs_per_hour=None)
    assert held is not None and after == state


def test_admit_run__hourly_limit_counts_the_last_hour_only():
    state = GuardState()
    for now in (0.0, 10.0):
        held, state = admit_run(state, f"f{now}", now, cooldown=None, max_runs_per_hour=2)
        assert held is None
    assert admit_run(state, "g", 20.0, None, 2)[0] == "rate limit: 2 runs in the last hour"
    held, state = admit_run(state, "g", HOUR_S + 0.5, None, 2)
    assert held is None and state.runs == [10.0, HOUR_S + 0.5]


def test_admit_target__per_target_and_pruned():
    _, state = admit_target(GuardState(), "webhook:a", 0.0, limit=1)
    assert admit_target(state, "webhook:a", 1.0, 1)[0] is not None
    held, state = admit_target(state, "webhook:b", 2.0, 1)
    assert held is None and set(state.target_runs) == {"webhook:a", "webhook:b"}
    _, later = admit_target(state, "webhook:c", HOUR_S + 5.0, 1)
    assert set(later.target_runs) == {"webhook:c"}  # the old ones aged out


def deadline(due: float = 100.0, revision: int = 1) -> Deadline:
    return Deadline(due=due, incident=make_incident(revision=revision), ran_at=0.0)


def test_deadlines__scheduled_once_due_in_order_dropped_when_handled():
    state = add_deadline(GuardState(), deadline(due=200.0, revision=2))
    state = add_deadline(state, deadline(due=100.0))
    state = add_deadline(state, deadline(due=100.0))  # a redelivery schedules nothing new
    assert len(state.deadlines) == 2
    assert due_deadlines(state, 99.0) == []
    assert [d.due for d in due_deadlines(state, 500.0)] == [100.0, 200.0]
    first = due_deadlines(state, 500.0)[0]
    assert [d.due for d in drop_deadlines(state, {first.id}).deadlines] == [200.0]


def test_state__round_trips_and_an_unreadable_one_starts_afresh(caplog):
    _, state = admit_run(GuardState(), "f", 1.0, cooldown=60, max_runs_per_hour=3)
    state = add_deadline(state.with_admitted("inc|1", 1.0), deadline())
    assert GuardState.decode(state.encode()) == state
    assert GuardState.decode(b"\x80pickle?") == GuardState()
    assert "unreadable guardrail state" in caplog.text
    assert GuardState.decode(b'{"runs": [1.0], "added_later": 1}').runs == [1.0]


def test_kill_switch__latest_record_per_scope_wins():
    switch = KillSwitch()

    def record(scope: str, paused: bool, by: str = "ann", reason: str = "") -> bytes:
        pause = Pause(scope=scope, paused=paused, by=by, at=1.0, reason=reason)
        return pause.model_dump_json().encode()

    switch.apply(ALL.encode(), record(ALL, True, reason="deploy freeze"))
    assert switch.held("any") == "paused: all actions paused by ann: deploy freeze"
    switch.apply(ALL.encode(), record(ALL, False, by="bob"))
    assert switch.held("any") is None
    switch.apply(b"rollback", record("rollback", True))
    assert switch.held("rollback") == "paused: playbook rollback paused by ann"
    assert switch.held("page") is None
    switch.apply(b"rollback", b"")  # a tombstone forgets the scope
    switch.apply(b"x", b"not json")  # skipped, logged
    assert switch.held("rollback") is None and set(switch.switches) == {ALL}
