"""The Slack sink against a loopback server that misbehaves the ways real ones do."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from fireline.errors import ActionError
from playbooks.chat.blocks import SlackMessage
from playbooks.chat.sinks import SlackSink, make_chat_sink
from tests.unit.playbooks.test_pacing import FakeTime, pacer


@pytest.fixture
async def server() -> AsyncIterator[Callable[[web.Response], str]]:
    """Serve one canned response for every call; yields a function that sets it."""
    state: dict[str, web.Response | int] = {"calls": 0}

    async def handler(request: web.Request) -> web.StreamResponse:
        state["calls"] = int(state["calls"]) + 1
        canned = state["response"]
        assert isinstance(canned, web.Response)
        return web.Response(
            body=canned.body, status=canned.status, content_type=canned.content_type
        )

    app = web.Application()
    app.router.add_post("/api/{method}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]

    def respond(response: web.Response) -> str:
        state["response"] = response
        return f"http://127.0.0.1:{port}/api/"

    yield respond
    await runner.cleanup()


def sink(base_url: str) -> SlackSink:
    made = make_chat_sink("xoxb-test", base_url)
    assert isinstance(made, SlackSink)
    return made


async def test_slack_sink__posts_and_returns_the_message_ts(server):
    url = server(web.json_response({"ok": True, "ts": "1795255200.000100"}))
    assert await sink(url).post("#oncall", "hello") == "1795255200.000100"


async def test_slack_sink__api_error_names_the_error(server):
    url = server(web.json_response({"ok": False, "error": "channel_not_found"}))
    with pytest.raises(
        ActionError, match=r"^Slack rejected chat.postMessage to #nope: channel_not_found$"
    ):
        await sink(url).post("#nope", "hello")


async def test_slack_sink__proxy_error_page_is_an_action_error(server):
    url = server(
        web.Response(status=502, text="<html>Bad Gateway</html>", content_type="text/html")
    )
    with pytest.raises(
        ActionError, match=r"^Slack rejected chat.postMessage to #oncall: HTTP 502$"
    ):
        await sink(url).post("#oncall", "hello")


async def test_slack_sink__broken_json_is_an_action_error(server):
    url = server(web.Response(status=200, text="{not json", content_type="application/json"))
    with pytest.raises(ActionError, match=r"^Slack rejected chat.postMessage to #oncall: "):
        await sink(url).post("#oncall", "hello")


async def test_slack_sink__a_429_is_retried_after_its_retry_after():
    """Slack's rate limit: HTTP 429 with Retry-After; the sink waits and tries again."""
    import time

    calls: list[float] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"}
            )
        return web.json_response({"ok": True, "channel": "C1", "ts": "1.000100"})

    app = web.Application()
    app.router.add_post("/api/{method}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        sink = make_chat_sink("xoxb-test", f"http://127.0.0.1:{runner.addresses[0][1]}/api/")
        assert isinstance(sink, SlackSink)
        ref = await sink.post("#oncall", "hello")
    finally:
        await runner.cleanup()
    assert "1.000100" in str(ref)
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.95  # it honoured Retry-After: 1


async def test_slack_sink__waits_for_each_channels_pacer_before_calling(server):
    url = server(web.json_response({"ok": True, "ts": "1.0"}))  # no id: names are the keys
    fake = FakeTime()
    made = make_chat_sink("xoxb-test", url, pacer=pacer(fake, rate=2.0, burst=1))
    for channel in ("#a", "#a", "#b", "#a"):
        await made.send(channel, SlackMessage("hello"))
    assert fake.sleeps == [0.5, 0.5], "the second and fourth post into #a waited; #b did not"


async def test_slack_sink__a_channel_named_or_by_id_is_one_bucket(server):
    url = server(web.json_response({"ok": True, "channel": "C1", "ts": "1.0"}))
    fake = FakeTime()
    made = make_chat_sink("xoxb-test", url, pacer=pacer(fake, rate=1.0, burst=1))
    await made.send("#a", SlackMessage("root"))  # Slack answers with the id C1
    ref = await made.send("#a", SlackMessage("reply"))  # by name, now known as C1
    await made.update(ref, SlackMessage("rewritten"))  # by id: the same bucket, so it waits
    assert ref.channel == "C1" and fake.sleeps == [1.0]
