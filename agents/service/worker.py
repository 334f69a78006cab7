"""``fireline run``: a thin wrapper over the Faust worker, plus fireline's HTTP server."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
import mode
from aiohttp import web
from prometheus_client import CollectorRegistry
from slack_sdk.web.async_client import AsyncWebClient

from agents.incidents.access import AccessPolicy
from agents.incidents.action_controls import ActionControls
from agents.incidents.alert_intake import AlertIntake
from agents.incidents.api import IncidentApi
from agents.incidents.view import StateTopic, ViewFollower
from agents.kafka.batching import tune_collector
from agents.kafka.broker import create_topics, missing_topics
from agents.kafka.faust_seam import check_dependencies
from agents.kafka.lag import GroupOffsets
from agents.metrics import Metrics
from agents.pipelines.ingest import REASONS
from agents.service.app import FaustPublisher, create_app, create_tables, owned_partitions, wire
from agents.service.http import HttpServer, Readiness, build_web_app
from agents.service.parts import build_engine, build_notes, build_runtime
from agents.service.runtime import Runtime
from agents.settings import Settings
from agents.slack.approvers import SlackApprovers, slack_group_members
from agents.slack.commands import SlackCommands
from agents.slack.counted_chat import CountedChat
from agents.slack.interactions import SlackInteractions
from agents.slack.socket_mode import SlackSocketMode
from playbooks.chat.pacing import ChannelPacer
from playbooks.chat.root_keeper import RootKeeper
from playbooks.chat.sinks import make_chat_sink
from playbooks.chat.threads import ThreadStore
from playbooks.context import ActionContext
from playbooks.engine import PlaybookEngine, Reload
from playbooks.http_sessions import SharedSession
from playbooks.kill_switch import KillSwitch

log = logging.getLogger(__name__)

TOPIC_CHECK_TTL_S = 5.0
# How often /metrics' consumer lag is refreshed (agents/kafka/lag.py: why by a timer),
# and its readiness gauges: less often, as the topic check opens an admin connection.
LAG_REFRESH_S = 5.0
READINESS_REFRESH_S = 15.0
LOG_FORMAT = "[%(asctime)s] %(levelname)s %(name)s: %(message)s"


class HttpService(mode.Service):
    """Runs the HTTP server for the lifetime of the worker."""

    def __init__(self, server: HttpServer, **kwargs: Any) -> None:
        self.server = server
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        """Bind before the app joins its group, so /healthz answers during start-up."""
        await self.server.start()
        log.info(
            "HTTP server on http://%s:%d (/metrics /healthz /readyz)",
            self.server.host,
            self.server.port,
        )

    async def on_stop(self) -> None:
        """Stop serving."""
        await self.server.stop()


class HttpSessionService(mode.Service):
    """Keeps the actions' shared HTTP session open for the lifetime of the worker."""

    def __init__(self, http: SharedSession, **kwargs: Any) -> None:
        self.http = http
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        """Open it before the app starts running playbooks."""
        await self.http.open()

    async def on_stop(self) -> None:
        """Close it after the app stopped (the worker stops its services in reverse)."""
        await self.http.close()


class ReadinessProbe:
    """Ready when the group is joined, the topics exist and playbooks are loaded."""

    def __init__(self, app: faust.App, settings: Settings, engine: PlaybookEngine) -> None:
        self.app = app
        self.settings = settings
        self.engine = engine
        self.assigned = False
        self._topics_checked_at = 0.0
        self._missing: list[str] | None = None
        app.on_partitions_assigned.connect(self._on_assigned)

    async def _on_assigned(self, *_: Any, **__: Any) -> None:
        self.assigned = True

    async def __call__(self) -> Readiness:
        """Run the checks (the topic check is cached for a few seconds)."""
        problems: list[str] = []
        missing = await self._missing_topics(problems)
        if missing:
            problems.append(f"missing topics: {', '.join(missing)}")
        if not self.engine.loaded:
            problems.append("no playbooks loaded")
        checks = {
            "broker": missing is not None,
            "topics": missing == [],
            "consumer_group": self.assigned and not self.app.rebalancing,
            "playbooks": self.engine.loaded,
        }
        if not checks["consumer_group"]:
            problems.append("consumer group not joined yet")
        return Readiness(checks, problems)

    async def _missing_topics(self, problems: list[str]) -> list[str] | None:
        now = time.monotonic()
        if self._missing is None or now - self._topics_checked_at > TOPIC_CHECK_TTL_S:
            try:
                self._missing = await missing_topics(
                    self.settings.bootstrap_servers, self.settings.topics.all()
                )
            except Exception as exc:  # noqa: BLE001 - any failure means "not connected", reported below
                self._missing = None
                problems.append(f"broker {self.settings.bootstrap_servers} unreachable: {exc!r}")
            self._topics_checked_at = now
        return self._missing


def add_timers(app: faust.App, settings: Settings, runtime: Runtime) -> None:
    """The worker's periodic duties: reminders, gauges, playbook reloads."""
    metrics, engine = runtime.metrics, runtime.engine

    @app.timer(settings.incidents.tick_s)
    async def remind_unacknowledged() -> None:
        if app.rebalancing:  # the assignment is about to change: old and new owner both remind
            return
        owned = owned_partitions(app, settings.topics.incidents)
        await runtime.remind_unacknowledged(time.time(), owned)

    @app.timer(settings.incidents.tick_s)
    async def report_incident_gauges() -> None:
        for severity, count in runtime.view.open_by_severity().items():
            metrics.incidents_open.labels(severity).set(count)
        now = time.time()
        metrics.silences_active.set(sum(s.active(now) for s in runtime.view.silence_list()))

    @app.timer(settings.playbooks_poll_s)
    async def reload_playbooks() -> None:
        reload = engine.reload_if_changed(settings.playbooks_dir)
        if reload is Reload.LOADED:
            metrics.playbooks_loaded.set(len(engine.playbooks))
            metrics.playbooks_rejected.set(0)
        elif reload is Reload.REJECTED and engine.loaded:
            metrics.playbook_reload_errors.inc()  # once per rejected change
            metrics.playbooks_rejected.set(1)  # until a change loads


def add_approval_expiry(app: faust.App, settings: Settings, runtime: Runtime) -> None:
    """Reject, on the owning worker, the approvals nobody decided within their time."""

    @app.timer(settings.incidents.tick_s)
    async def expire_approvals() -> None:
        if app.rebalancing:  # the assignment is about to change: the new owner will
            return
        owned = owned_partitions(app, settings.topics.incidents)
        await runtime.expire_approvals(time.time(), owned)


def add_health_reports(app: faust.App, runtime: Runtime, probe: ReadinessProbe) -> None:
    """Refresh what /metrics reports of the worker's own health: consumer lag and readiness."""
    metrics, topics = runtime.metrics, runtime.settings.topics
    consumed = [
        *runtime.handlers(),
        topics.detections,
        topics.incidents,
        topics.approvals,
        topics.action_requests,
    ]
    offsets = GroupOffsets(app, consumed, timeout_s=LAG_REFRESH_S)

    @app.timer(LAG_REFRESH_S)
    async def refresh_consumer_lag() -> None:
        if not app.rebalancing:  # the assignment is changing: ask again after it
            await metrics.consumer_lag.refresh(offsets)

    @app.timer(READINESS_REFRESH_S)
    async def report_readiness() -> None:
        report = await probe()
        metrics.ready.set(report.ready)
        for check, passed in report.checks.items():
            metrics.readiness_checks.labels(check).set(passed)


def build_worker(
    settings: Settings, loop: asyncio.AbstractEventLoop, loglevel: str = "info"
) -> faust.Worker:
    """Everything ``fireline run`` starts, ready to execute."""
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    app = create_app(settings)
    publisher = FaustPublisher(app)
    tables = create_tables(app, settings)

    async def publish_thread(key: bytes, value: bytes) -> None:
        await publisher.publish(settings.topics.chat_threads, [(key, value, {})])

    # Roots survive restarts: published to the threads topic, followed back in below.
    threads = ThreadStore(publish=publish_thread, replayed=True)
    pacer = ChannelPacer(settings.slack_channel_rate_per_s, settings.slack_channel_burst)
    chat = CountedChat(
        make_chat_sink(settings.slack_secret(), settings.slack_base_url, pacer=pacer),
        metrics.chat_calls,
    )
    notes = build_notes(settings, chat, threads)
    http = SharedSession()
    context = ActionContext(
        chat=chat,
        events=publisher,
        threads=threads,
        default_channel=settings.slack_channel,
        dashboard_url=settings.slack_dashboard_url,
        http=http,
    )
    kill_switch = KillSwitch()  # folded from the controls topic below, by every worker
    engine = build_engine(settings, metrics, context, tables, notes, kill_switch)
    roots = RootKeeper(chat, threads)  # keeps every root fireline posted true

    def owns_detections(partition: int) -> bool:
        if app.rebalancing:
            return False
        return partition in owned_partitions(app, settings.topics.detections)

    runtime = build_runtime(
        settings, metrics, engine, publisher, notes, roots, tables, owns_detections
    )
    metrics.start_at_zero(runtime.handlers(), REASONS, engine.registry.names())
    wire(app, runtime)
    add_timers(app, settings, runtime)
    add_approval_expiry(app, settings, runtime)
    probe = ReadinessProbe(app, settings, engine)
    add_health_reports(app, runtime, probe)

    access = AccessPolicy.from_tokens(settings.api_tokens_path, settings.api_secret())
    api = IncidentApi(
        runtime.view,
        runtime.publisher,
        settings.topics,
        access,
        approval_ttl_s=settings.approval_ttl_s,
    )
    slack_approvers = approvers(settings)
    buttons = SlackInteractions(api, settings.slack_signing_key(), approvers=slack_approvers)
    alerts = AlertIntake(
        runtime.publisher, settings.topics.detections, settings.alertmanager_secret()
    )
    controls = ActionControls(
        kill_switch,
        runtime.view,
        runtime.publisher,
        settings.topics,
        lambda: [p.name for p in engine.playbooks],
        access,
    )
    commands = SlackCommands(controls, settings.slack_signing_key(), approvers=slack_approvers)

    def add_routes(web_app: web.Application) -> None:
        api.add_routes(web_app)
        buttons.add_routes(web_app)
        alerts.add_routes(web_app)
        controls.add_routes(web_app)
        commands.add_routes(web_app)

    server = HttpServer(
        build_web_app(registry, probe, add_routes, details_for=access.lets_read),
        settings.http_host,
        settings.http_port,
    )
    follower = ViewFollower(
        runtime.view,
        settings.bootstrap_servers,
        settings.topics.incidents,
        settings.topics.silences,
        settings.topics.approvals,
        state_topics=[
            StateTopic(settings.topics.chat_threads, threads.apply, threads.mark_loaded),
            StateTopic(settings.topics.action_controls, kill_switch.apply, kill_switch.mark_loaded),
        ],
    )
    worker = faust.Worker(
        app,
        HttpService(server),
        HttpSessionService(http),
        follower,
        *socket_mode(settings, buttons),
        loop=loop,
        loglevel=loglevel,
        quiet=True,
        redirect_stdouts=False,  # the console chat sink prints to stdout on purpose
        logging_config={
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": LOG_FORMAT}},
            "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
            "root": {"handlers": ["stderr"], "level": loglevel.upper()},
            # Faust logs every rebalance step at INFO; keep them for --loglevel debug.
            "loggers": {
                "faust": {"level": "WARNING" if loglevel.upper() == "INFO" else loglevel.upper()}
            },
        },
    )
    worker.spinner = None  # its cursor escapes garble logs and the demo output
    return worker


def approvers(settings: Settings) -> SlackApprovers:
    """Who may approve from Slack; user groups are asked of Slack with the bot token."""
    token = settings.slack_secret()
    members = None
    if token:
        members = slack_group_members(AsyncWebClient(token=token, base_url=settings.slack_base_url))
    return SlackApprovers(settings.slack_approvers, members)


def socket_mode(settings: Settings, buttons: SlackInteractions) -> list[mode.Service]:
    """Slack Socket Mode, when an app-level token is set (buttons without a public URL)."""
    app_token = settings.slack_app_secret()
    if app_token is None:
        return []
    return [SlackSocketMode(buttons, app_token, settings.slack_base_url)]


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Create the topics, then run the worker until SIGTERM/SIGINT (commits on the way out)."""
    check_dependencies()  # refuse a Faust it was not written for before touching the broker
    tune_collector()  # the hot path allocates many short-lived objects (agents/kafka/batching.py)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(
        create_topics(
            settings.bootstrap_servers,
            settings.topics.all(),
            settings.partitions,
            configs=settings.topics.configs(),
        )
    )
    build_worker(settings, loop, loglevel).execute_from_commandline()
