"""The console sink and the thread store."""

from __future__ import annotations

import io

from playbooks.actions.chat import ConsoleSink, MessageRef
from playbooks.actions.threads import ThreadStore
from playbooks.slack_blocks import SlackMessage


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


def test_thread_store__per_incident_and_channel_bounded_oldest_first():
    store = ThreadStore(limit=2)
    store.put("inc-1", "#a", MessageRef("C1", "1.0"))
    store.put("inc-1", "#b", MessageRef("C2", "2.0"))
    assert store.get("inc-1", "#a") == MessageRef("C1", "1.0")
    assert store.any_root("inc-1") == MessageRef("C2", "2.0")
    store.put("inc-2", "#a", MessageRef("C1", "3.0"))
    assert len(store) == 2 and store.get("inc-1", "#a") is None
    assert store.any_root("inc-3") is None
