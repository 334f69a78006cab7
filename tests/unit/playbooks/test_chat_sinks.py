"""The console sink and the thread store."""

from __future__ import annotations

import io
from dataclasses import replace

from playbooks.chat.blocks import Links, SlackMessage
from playbooks.chat.sinks import ConsoleSink, MessageRef
from playbooks.chat.threads import ThreadRoot, ThreadStore


async def test_console_sink__prints_roots_replies_and_updates_with_their_text():
    out = io.StringIO()
    sink = ConsoleSink(out)
    root = await sink.send("#oncall", SlackMessage("root text", [{"type": "divider"}]))
    reply = await sink.send("#oncall", SlackMessage("reply text"), thread_ts=root.ts)
    await sink.update(root, SlackMessage("resolved text"))
    assert (root, reply) == (MessageRef("#oncall", "console-1"), MessageRef("#oncall", "console-2"))
    printed = out.getvalue()
    assert "[console chat → #oncall]\nroot text\n" in printed
    assert "[console chat → #oncall, thread console-1]\nreply text\n" in printed
    assert "[console chat → #oncall, update console-1]\nresolved text\n" in printed
    assert await sink.post("#x", "plain") == "console-3"


async def test_console_sink__a_rewrite_shows_its_new_first_line_once_printed_whole_before():
    out = io.StringIO()
    sink = ConsoleSink(out)
    root = await sink.send("#oncall", SlackMessage("[OPEN] spike\nSubject: fraud\nIncident 1"))
    await sink.update(root, SlackMessage("[RESOLVED] spike\nSubject: fraud\nIncident 1"))
    assert out.getvalue().endswith(
        "[console chat → #oncall, update console-1]\n[RESOLVED] spike\n" + "─" * 72 + "\n"
    )
    unseen = MessageRef("#oncall", "1795255200.000100")  # posted before a restart
    await sink.update(unseen, SlackMessage("[RESOLVED] spike\nSubject: fraud"))
    assert out.getvalue().endswith(
        "update 1795255200.000100]\n[RESOLVED] spike\nSubject: fraud\n" + "─" * 72 + "\n"
    )


def root(channel: str, ts: str, at: float, thread_ts: str | None = None) -> ThreadRoot:
    return ThreadRoot(channel, MessageRef(f"C{channel}", ts), thread_ts or ts, at)


async def test_thread_store__per_incident_and_channel_bounded_oldest_first():
    store = ThreadStore(limit=2)
    await store.remember("inc-1", root("#a", "1.0", 1.0))
    await store.remember("inc-1", root("#b", "2.0", 2.0))
    assert store.get("inc-1", "#a") == root("#a", "1.0", 1.0)
    assert store.any_thread("inc-1") == MessageRef("C#b", "2.0")
    await store.remember("inc-2", root("#a", "3.0", 3.0))
    await store.remember("inc-3", root("#a", "4.0", 4.0))
    assert len(store) == 2 and store.get("inc-1", "#a") is None
    assert store.any_thread("inc-9") is None


async def test_thread_store__publishes_every_change_and_a_replay_restores_it():
    published: list[tuple[bytes, bytes]] = []

    async def publish(key: bytes, value: bytes) -> None:
        published.append((key, value))

    store = ThreadStore(publish=publish)
    joined = root("#a", "5.0", 2.0, thread_ts="1.0")
    await store.remember("inc-1", root("#b", "1.0", 1.0))
    await store.remember("inc-1", joined)
    await store.reminded("inc-1", joined, now=9.0)
    assert [k for k, _ in published] == [b"inc-1"] * 3
    replica = ThreadStore(replayed=True)
    assert not replica.loaded
    for key, value in published:
        replica.apply(key, value)
    replica.mark_loaded()
    assert await replica.wait_loaded(0.01)
    restored = replica.get("inc-1", "#a")
    assert restored is not None and restored.joined and restored.thread == MessageRef("C#a", "1.0")
    assert (restored.reminders, restored.nudged_at, restored.last_nudged_at) == (1, 9.0, 9.0)
    assert replica.roots_of("inc-1") == store.roots_of("inc-1")


async def test_thread_store__an_older_record_never_undoes_a_newer_one():
    published: list[bytes] = []

    async def publish(key: bytes, value: bytes) -> None:
        published.append(value)

    store = ThreadStore(publish=publish)
    first = root("#a", "1.0", 1.0)
    await store.remember("inc-1", first)
    await store.reminded("inc-1", first, now=5.0)
    await store.reminded("inc-1", first, now=5.0)  # same clock, stale root: counts on the held one
    for value in published:  # the follower's echo of every record, late
        store.apply(b"inc-1", value)
    held = store.get("inc-1", "#a")
    assert held is not None and held.reminders == 2


async def test_thread_store__a_tombstone_forgets_the_incident():
    store = ThreadStore()
    await store.remember("inc-1", root("#a", "1.0", 1.0))
    store.apply(b"inc-1", None)
    assert store.get("inc-1", "#a") is None and len(store) == 0


def test_thread_store__a_malformed_record_is_skipped_and_logged(caplog):
    store = ThreadStore()
    store.apply(b"inc-1", b'{"incident_id": "inc-1"}')
    store.apply(b"inc-1", b"not json")
    huge = b'{"incident_id":"inc-1","version":1e400,"roots":[]}'  # OverflowError, not ValueError
    store.apply(b"inc-1", huge)
    assert len(store) == 0 and caplog.text.count("malformed") == 3


async def test_thread_store__a_failed_publish_keeps_the_root_in_memory(caplog):
    async def publish(key: bytes, value: bytes) -> None:
        raise ConnectionError("broker gone")

    store = ThreadStore(publish=publish)
    await store.remember("inc-1", root("#a", "1.0", 1.0))
    assert store.get("inc-1", "#a") is not None
    assert "could not record the chat thread of inc-1" in caplog.text


async def test_thread_store__waits_for_its_replay_once(caplog):
    store = ThreadStore(replayed=True)
    assert not await store.wait_loaded(0.01)
    assert "not replayed within" in caplog.text
    assert await store.wait_loaded(0.0), "a second caller does not wait again"


async def test_thread_store__approval_messages_survive_a_replay_until_forgotten():
    published: list[tuple[bytes, bytes]] = []

    async def publish(key: bytes, value: bytes) -> None:
        published.append((key, value))

    store = ThreadStore(publish=publish)
    await store.remember("inc-1", root("#a", "1.0", 1.0))
    await store.remember_approval("inc-1", "apr-1", MessageRef("C#a", "1.5"))
    replica = ThreadStore()
    for key, value in published:
        replica.apply(key, value)
    assert replica.approval_message("inc-1", "apr-1") == MessageRef("C#a", "1.5")
    assert replica.get("inc-1", "#a") == root("#a", "1.0", 1.0), "the roots stay"
    await store.forget_approval("inc-1", "apr-1")
    replica.apply(*published[-1])
    assert replica.approval_message("inc-1", "apr-1") is None
    assert store.approval_message("inc-2", "apr-1") is None


async def test_thread_store__what_a_root_shows_survives_a_replay():
    published: list[tuple[bytes, bytes]] = []

    async def publish(key: bytes, value: bytes) -> None:
        published.append((key, value))

    store = ThreadStore(publish=publish)
    posted = ThreadRoot(
        "#a", MessageRef("C#a", "1.0"), "1.0", 1.0, links=Links("https://wiki/rb", None)
    )
    await store.remember("inc-1", posted)
    await store.shown("inc-1", "#a", 3)
    await store.shown("inc-1", "#a", 2)  # an older revision never lowers it
    await store.shown("inc-1", "#b", 3)  # no root there: nothing to record
    replica = ThreadStore()
    for key, value in published:
        replica.apply(key, value)
    assert replica.get("inc-1", "#a") == replace(posted, shown_revision=3)
    assert replica.get("inc-1", "#b") is None and len(published) == 2


def test_thread_store__a_record_from_before_shown_revision_and_links_still_loads():
    store = ThreadStore()
    old = (
        b'{"incident_id":"inc-1","version":4,"roots":[{"channel":"#a","ref":'
        b'{"channel":"C1","ts":"1.0"},"thread_ts":"1.0","posted_at":1.0,"nudged_at":null,'
        b'"reminders":2}],"approvals":{}}'
    )
    store.apply(b"inc-1", old)
    assert store.get("inc-1", "#a") == ThreadRoot(
        "#a", MessageRef("C1", "1.0"), "1.0", 1.0, reminders=2, shown_revision=0, links=Links()
    )
