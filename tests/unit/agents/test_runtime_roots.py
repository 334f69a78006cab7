"""The runtime keeps an incident's chat roots true on every event, with the shipped playbooks."""

from __future__ import annotations

import io
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from agents.incidents.desk import IncidentDesk, MemoryStateTable
from agents.incidents.manager import IncidentManager
from agents.incidents.view import IncidentView
from agents.metrics import Metrics
from agents.pipelines.metric_pipeline import MetricPipeline
from agents.pipelines.prediction_pipeline import PredictionPipeline
from agents.service.runtime import OutRecord, Runtime
from agents.settings import SHIPPED_PLAYBOOKS, Settings
from agents.slack.thread_notes import ThreadNotes
from fireline.incident import Incident, Resolution, Signal, Status, Transition
from playbooks.actions import default_registry
from playbooks.chat.root_keeper import RootKeeper
from playbooks.chat.sinks import ConsoleSink
from playbooks.chat.threads import ThreadStore
from playbooks.context import ActionContext
from playbooks.engine import PlaybookEngine
from tests.factories import make_incident


class Recorded:
    """A publisher that keeps what it was given, per topic."""

    def __init__(self) -> None:
        self.records: dict[str, list[OutRecord]] = {}

    async def publish(self, topic: str, records: Sequence[OutRecord]) -> None:
        self.records.setdefault(topic, []).extend(records)


async def on_incident(worker: Runtime, value: bytes, where: str) -> None:
    """The incident event, then the action requests it made, as their owner gets them."""
    await worker.on_incident(value, where)
    assert isinstance(worker.publisher, Recorded)
    requests = worker.publisher.records.pop(worker.settings.topics.action_requests, [])
    for _, request, _ in requests:
        await worker.on_action_request(request, 0, where)


def runtime(out: io.StringIO) -> Runtime:
    settings = Settings()
    chat, threads = ConsoleSink(out), ThreadStore()
    context = ActionContext(chat=chat, threads=threads, default_channel="#oncall")
    notes = ThreadNotes(chat, threads, "#oncall")
    engine = PlaybookEngine(default_registry(), context, notifier=notes)
    engine.load(SHIPPED_PLAYBOOKS)
    view = IncidentView()
    policy = settings.incidents
    return Runtime(
        settings,
        Metrics.create(CollectorRegistry()),
        engine,
        Recorded(),
        view=view,
        desk=IncidentDesk(IncidentManager(policy), MemoryStateTable(), view),
        notes=notes,
        roots=RootKeeper(chat, threads),
        pipeline=MetricPipeline(settings.detection),
        predictions=PredictionPipeline(refresh_s=policy.signal_refresh_s),
    )


def event(incident: Incident, transition: Transition, revision: int, **changes: object) -> bytes:
    update = {"transition": transition, "revision": revision, **changes}
    return incident.model_copy(update=update).model_dump_json().encode()


async def test_on_incident__rewrites_the_root_where_no_shipped_playbook_matches():
    out = io.StringIO()
    worker = runtime(out)
    opened = make_incident()  # a latency spike: latency-spike-alert matches opened, resolved
    await on_incident(worker, opened.model_dump_json().encode(), "here")
    assert out.getvalue().count("[console chat → #oncall]") == 1, "the root"
    acked = {"status": Status.ACKNOWLEDGED, "acknowledged_by": "alice"}
    await on_incident(worker, event(opened, Transition.ACKNOWLEDGED, 2, **acked), "here")
    await on_incident(worker, event(opened, Transition.ACKNOWLEDGED, 2, **acked), "again")
    assert out.getvalue().count(", update console-1]") == 1, "once, though delivered twice"
    assert "[CRITICAL: ACKNOWLEDGED]" in out.getvalue()


async def test_on_incident__keeps_the_root_of_a_flapping_incident_that_notifies_nobody():
    out = io.StringIO()
    worker = runtime(out)
    opened = make_incident()
    await on_incident(worker, opened.model_dump_json().encode(), "here")
    resolved = {"status": Status.RESOLVED, "resolution": Resolution.RECOVERED, "flapping": True}
    await on_incident(worker, event(opened, Transition.RESOLVED, 3, **resolved), "here")
    printed = out.getvalue()
    assert printed.count(", update console-1]") == 1 and "[RESOLVED]" in printed
    assert printed.count("[console chat → #oncall") == 2, (
        "no reply: a flapping event notifies nobody"
    )


async def test_on_incident__the_console_shows_a_resolution_once_and_the_roots_new_status():
    out = io.StringIO()
    worker = runtime(out)
    signal = Signal(
        detector="LatencySpike",
        series="latency_ms{service=fraud-api}",
        selector='latency_ms{service="fraud-api"}',
        observed=250.0,
        baseline=50.0,
        score=0.9,
        at=1795255200.0,
        fingerprint="f",
    )
    back = signal.model_copy(update={"observed": 51.0, "cleared": True, "at": 1795255230.0})
    opened = make_incident(signals=[signal])
    await on_incident(worker, opened.model_dump_json().encode(), "here")
    resolved = {
        "status": Status.RESOLVED,
        "resolution": Resolution.RECOVERED,
        "signals": [signal, back],
    }
    await on_incident(worker, event(opened, Transition.RESOLVED, 2, **resolved), "here")
    frames = [f.strip("\n") for f in out.getvalue().split("─" * 72) if f.strip()]
    root, reply, update = frames
    assert root.startswith("[console chat → #oncall]\n")
    assert reply.startswith(
        "[console chat → #oncall, thread console-1]\n:white_check_mark: [RESOLVED]"
    )
    assert (
        'latency_ms{service="fraud-api"}: back to 51.0 vs normal 50.0; 250.0 when detected, '
        "detector LatencySpike"
    ) in reply.splitlines()
    assert update.splitlines() == [
        "[console chat → #oncall, update console-1]",
        ":white_check_mark: [RESOLVED] latency_ms of fraud-api is 5x its baseline after 60 s",
    ]
