"""Detections applied once each, in order, whether handed over in-process or consumed.

The real IncidentDesk and IncidentManager over an in-memory state table; the
publisher records what it was given (or fails, as a crash before the broker's ack).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from agents.incidents.desk import IncidentDesk, MemoryStateTable
from agents.incidents.manager import IncidentManager, SubjectState
from agents.service.incident_inputs import HandedInput, IncidentInputs, Written
from fireline.detections import CommandInput, DetectionInput
from fireline.errors import BrokerError
from fireline.incident import Incident, Transition
from tests.unit.agents.test_incidents import POLICY, detection

KEY = b"model:fraud"
TICK = b'{"type": "tick"}'
NOW = 1_800_000_000.0


class Published:
    """The incident events each publish call carried; ``fail`` makes the next call fail."""

    def __init__(self) -> None:
        self.events: list[Incident] = []
        self.fail = False

    async def __call__(self, incidents: Sequence[Incident]) -> None:
        if self.fail:
            raise BrokerError("the broker is gone")
        self.events.extend(incidents)


def raised(at: float = NOW) -> bytes:
    return DetectionInput(detection=detection(at)).model_dump_json().encode()


def inputs(table: MemoryStateTable, published: Published, owned: bool = True) -> IncidentInputs:
    desk = IncidentDesk(IncidentManager(POLICY), table, _NoSilences(), clock=lambda: NOW)
    return IncidentInputs(desk, published, owns=lambda _: owned)


class _NoSilences:
    def silence_list(self) -> list:
        return []


def state(table: MemoryStateTable) -> SubjectState:
    return SubjectState.model_validate_json(table[KEY])


async def test_a_handed_over_detection_is_applied_once_when_the_consumer_reaches_it():
    table, published = MemoryStateTable(), Published()
    desk = inputs(table, published)
    await desk.consumed(None, b'{"type": "tick"}', 0, 10)  # the consumer is at offset 10

    handed = await desk.hand_over([HandedInput(Written(0, 11), KEY, raised())])
    assert [e.transition for e in handed] == [Transition.OPENED]
    assert desk.handed_over == 1
    assert state(table).applied == 11

    assert await desk.consumed(KEY, raised(), 0, 11) == []  # fetched back: skipped
    assert [e.transition for e in published.events] == [Transition.OPENED]
    assert state(table).tracked[0].incident.count == 1


async def test_a_detection_behind_unapplied_records_waits_for_the_consumer_in_order():
    table, published = MemoryStateTable(), Published()
    desk = inputs(table, published)
    await desk.consumed(None, b'{"type": "tick"}', 0, 10)
    # Offset 11 (someone's command, say) is not applied yet: 12 must not jump it.
    assert await desk.hand_over([HandedInput(Written(0, 12), KEY, raised())]) == []
    assert desk.handed_over == 0 and KEY not in table

    assert await desk.consumed(None, b'{"type": "tick"}', 0, 11) == []
    (opened,) = await desk.consumed(KEY, raised(), 0, 12)
    assert opened.transition is Transition.OPENED


async def test_nothing_is_handed_over_for_a_partition_the_worker_does_not_own():
    table, published = MemoryStateTable(), Published()
    desk = inputs(table, published, owned=False)
    await desk.consumed(None, b'{"type": "tick"}', 0, 10)
    assert await desk.hand_over([HandedInput(Written(0, 11), KEY, raised())]) == []
    assert published.events == []


async def test_nothing_is_handed_over_before_the_consumer_applied_a_record_of_the_partition():
    table, published = MemoryStateTable(), Published()
    desk = inputs(table, published)
    assert await desk.hand_over([HandedInput(Written(0, 0), KEY, raised())]) == []


async def test_a_record_redelivered_after_a_rebalance_or_restart_is_not_applied_twice():
    table, published = MemoryStateTable(), Published()
    first = inputs(table, published)
    await first.consumed(None, b'{"type": "tick"}', 0, 10)
    await first.hand_over([HandedInput(Written(0, 11), KEY, raised())])
    await first.forget()  # revoked before the consumer reached offset 11: not committed

    # The next owner (same table, restored from the changelog) reads 11 again.
    again = inputs(table, published)
    assert await again.consumed(KEY, raised(), 0, 11) == []
    assert len(published.events) == 1
    assert state(table).tracked[0].incident.count == 1
    # The record after it still applies.
    command = CommandInput(
        command="acknowledge", incident_id=published.events[0].id, by="alice"
    ).model_dump_json()
    (acked,) = await again.consumed(KEY, command.encode(), 0, 12)
    assert acked.transition is Transition.ACKNOWLEDGED


async def test_events_are_published_before_the_state_is_stored():
    table, published = MemoryStateTable(), Published()
    desk = inputs(table, published)
    published.fail = True  # the worker dies before the broker acknowledged the events
    with pytest.raises(BrokerError):
        await desk.consumed(KEY, raised(), 0, 0)
    assert KEY not in table  # so the redelivered record is applied again...

    published.fail = False
    restarted = inputs(table, published)
    (opened,) = await restarted.consumed(KEY, raised(), 0, 0)
    assert opened.transition is Transition.OPENED  # ...and its event is not lost
    assert state(table).applied == 0


async def test_handed_over_ticks_keep_the_hand_off_going_while_the_consumer_lags():
    table, published = MemoryStateTable(), Published()
    desk = inputs(table, published)
    await desk.consumed(None, TICK, 0, 10)
    await desk.hand_over([HandedInput(Written(0, 11), None, TICK)])  # this worker's tick
    (opened,) = await desk.hand_over([HandedInput(Written(0, 12), KEY, raised())])
    assert opened.transition is Transition.OPENED
    for offset, key, value in ((11, None, TICK), (12, KEY, raised())):  # fetched back later
        assert await desk.consumed(key, value, 0, offset) == []
    assert desk.handed_over == 2


async def test_a_subjects_record_in_another_partition_is_not_taken_for_one_applied_already():
    """Offsets order one partition: a command a foreign partitioner sent elsewhere still applies."""
    table, published = MemoryStateTable(), Published()
    desk = inputs(table, published)
    (opened,) = await desk.consumed(KEY, raised(), 0, 40)
    escalate = CommandInput(command="escalate", incident_id=opened.id, by="a test")
    escalated = await desk.consumed(KEY, escalate.model_dump_json().encode(), 1, 3)
    assert [e.transition for e in escalated] == [Transition.ESCALATED]
    assert (state(table).applied, state(table).applied_partition) == (3, 1)
    assert await desk.consumed(KEY, escalate.model_dump_json().encode(), 1, 3) == []  # redelivered
