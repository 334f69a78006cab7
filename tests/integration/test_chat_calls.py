"""fireline_chat_calls_total: each Slack call counted by outcome, against loopback servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from agents.kafka.broker import free_port
from agents.metrics import Metrics
from agents.slack.counted_chat import CountedChat
from fireline.errors import ActionError
from playbooks.chat.blocks import SlackMessage
from playbooks.chat.sinks import MessageRef, make_chat_sink

pytestmark = pytest.mark.integration


@pytest.fixture
async def slack() -> AsyncIterator[Callable[[web.Response], str]]:
    """A Web API stand-in answering every call with one canned response; yields its setter."""
    canned: list[web.Response] = []

    async def handler(_: web.Request) -> web.Response:
        reply = canned[-1]
        return web.Response(body=reply.body, status=reply.status, content_type=reply.content_type)

    app = web.Application()
    app.router.add_post("/api/{method}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]

    def answer(response: web.Response) -> str:
        canned.append(response)
        return f"http://127.0.0.1:{port}/api/"

    yield answer
    await runner.cleanup()


def counted(base_url: str) -> tuple[CountedChat, Metrics]:
    metrics = Metrics.create(CollectorRegistry())
    return CountedChat(make_chat_sink("xoxb-test", base_url), metrics.chat_calls), metrics


def calls(metrics: Metrics, method: str, outcome: str) -> float | None:
    return metrics.registry.get_sample_value(
        "fireline_chat_calls_total", {"method": method, "outcome": outcome}
    )


async def test_chat_calls__every_series_starts_at_zero():
    _, metrics = counted("http://127.0.0.1:1/api/")
    for method in ("chat.postMessage", "chat.update", "files.upload"):
        for outcome in ("ok", "rejected", "unreachable", "failed"):
            assert calls(metrics, method, outcome) == 0


async def test_chat_calls__a_delivered_post_and_update_count_as_ok(slack):
    chat, metrics = counted(slack(web.json_response({"ok": True, "channel": "C1", "ts": "1.0"})))
    ref = await chat.send("#oncall", SlackMessage("hello"))
    await chat.update(ref, SlackMessage("hello again"))
    assert await chat.post("#oncall", "plain") == "1.0"
    assert calls(metrics, "chat.postMessage", "ok") == 2
    assert calls(metrics, "chat.update", "ok") == 1


async def test_chat_calls__an_api_error_counts_as_rejected_and_still_raises(slack):
    chat, metrics = counted(slack(web.json_response({"ok": False, "error": "invalid_auth"})))
    with pytest.raises(ActionError, match="invalid_auth"):
        await chat.update(MessageRef("C1", "1.0"), SlackMessage("x"))
    assert calls(metrics, "chat.update", "rejected") == 1
    assert calls(metrics, "chat.update", "unreachable") == 0


async def test_chat_calls__a_proxys_502_counts_as_unreachable(slack):
    chat, metrics = counted(slack(web.Response(status=502, text="Bad Gateway")))
    with pytest.raises(ActionError, match="HTTP 502"):
        await chat.post("#oncall", "hello")
    assert calls(metrics, "chat.postMessage", "unreachable") == 1


async def test_chat_calls__a_refused_connection_counts_as_unreachable():
    chat, metrics = counted(f"http://127.0.0.1:{free_port()}/api/")  # nothing listens there
    with pytest.raises(ActionError, match="Slack unreachable"):
        await chat.send("#oncall", SlackMessage("hello"))
    assert calls(metrics, "chat.postMessage", "unreachable") == 1
    assert calls(metrics, "chat.postMessage", "ok") == 0
