"""The root keeper: which events rewrite a root, once, across redeliveries and restarts."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from fireline.errors import ActionError
from fireline.incident import Incident, Resolution, Status, Transition
from playbooks.chat.blocks import Links, SlackMessage
from playbooks.chat.root_keeper import ROOT_TRANSITIONS, RootKeeper, needs_rewrite
from playbooks.chat.sinks import ConsoleSink, MessageRef
from playbooks.chat.threads import ThreadRoot, ThreadStore
from tests.factories import make_incident

OPENED = make_incident()
ROOT = ThreadRoot("#oncall", MessageRef("C1", "1.0"), "1.0", 1.0, shown_revision=1)


def event(transition: Transition, revision: int, **changes: object) -> Incident:
    return OPENED.model_copy(update={"transition": transition, "revision": revision, **changes})


ACKED = event(Transition.ACKNOWLEDGED, 3, status=Status.ACKNOWLEDGED, acknowledged_by="alice")
RESOLVED = event(
    Transition.RESOLVED, 4, status=Status.RESOLVED, resolution=Resolution.MANUAL, resolved_by="bob"
)


@pytest.mark.parametrize("transition", sorted(ROOT_TRANSITIONS))
def test_needs_rewrite__a_status_or_severity_transition_newer_than_the_root_shows(transition):
    assert needs_rewrite(ROOT, event(transition, 2))
    assert not needs_rewrite(ROOT, event(transition, 1)), "the revision it shows"
    assert not needs_rewrite(replace(ROOT, shown_revision=5), event(transition, 3)), "older"


@pytest.mark.parametrize("transition", [Transition.OPENED, Transition.UPDATED])
def test_needs_rewrite__not_for_what_the_root_does_not_show(transition):
    assert not needs_rewrite(ROOT, event(transition, 2))


def test_needs_rewrite__a_record_from_before_the_field_is_behind_any_transition():
    legacy = replace(ROOT, shown_revision=0)
    assert needs_rewrite(legacy, event(Transition.RESOLVED, 1))


class Console:
    """A console sink whose printout says which messages were rewritten."""

    def __init__(self) -> None:
        self.out = io.StringIO()
        self.sink = ConsoleSink(self.out)

    def updates(self) -> list[str]:
        """The refs of every update, in order (``C1 1.0``)."""
        lines = self.out.getvalue().splitlines()
        heads = [line for line in lines if ", update " in line]
        return [
            h.removeprefix("[console chat → ").rstrip("]").replace(", update", "") for h in heads
        ]


class Refusing(ConsoleSink):
    """Slack refusing every rewrite."""

    async def update(self, ref: MessageRef, message: SlackMessage) -> None:
        raise ActionError(f"Slack rejected chat.update to {ref.channel}: message_not_found")


async def store_with_roots(publish=None) -> ThreadStore:
    store = ThreadStore(publish=publish)
    await store.remember(OPENED.id, ROOT)
    await store.remember(
        OPENED.id, ThreadRoot("#ml", MessageRef("C2", "2.0"), "2.0", 2.0, shown_revision=1)
    )
    return store


async def test_keep__rewrites_every_channels_root_once_per_transition():
    console, store = Console(), await store_with_roots()
    keeper = RootKeeper(console.sink, store)
    assert await keeper.keep(ACKED) == 2
    assert console.updates() == ["C1 1.0", "C2 2.0"]
    assert [r.shown_revision for r in store.roots_of(OPENED.id)] == [3, 3]
    assert await keeper.keep(ACKED) == 0, "a redelivery"
    assert await keeper.keep(event(Transition.UPDATED, 4, count=2)) == 0
    assert await keeper.keep(RESOLVED) == 2
    assert await keeper.keep(ACKED) == 0, "a late echo of an older transition"
    assert len(console.updates()) == 4


async def test_keep__a_restarted_or_second_worker_finds_the_roots_current():
    published: list[tuple[bytes, bytes]] = []

    async def publish(key: bytes, value: bytes) -> None:
        published.append((key, value))

    first = Console()
    assert await RootKeeper(first.sink, await store_with_roots(publish)).keep(ACKED) == 2
    replayed = ThreadStore(replayed=True)
    for key, value in published:
        replayed.apply(key, value)
    replayed.mark_loaded()
    second = Console()
    keeper = RootKeeper(second.sink, replayed)
    assert await keeper.keep(ACKED) == 0, "the same event, redelivered to the new owner"
    assert await keeper.keep(RESOLVED) == 2
    assert second.updates() == ["C1 1.0", "C2 2.0"]


async def test_keep__the_rewrite_keeps_the_links_the_root_was_posted_with():
    console, store = Console(), ThreadStore()
    await store.remember(OPENED.id, replace(ROOT, links=Links("https://wiki/rb", None)))
    assert await RootKeeper(console.sink, store).keep(RESOLVED) == 1
    assert "Runbook: https://wiki/rb" in console.out.getvalue()


async def test_keep__a_refused_rewrite_is_logged_and_the_next_transition_tries_again(caplog):
    store = await store_with_roots()
    assert await RootKeeper(Refusing(io.StringIO()), store).keep(ACKED) == 0
    assert f"could not update the root message of {OPENED.id} in #oncall" in caplog.text
    assert [r.shown_revision for r in store.roots_of(OPENED.id)] == [1, 1], "nothing recorded"
    console = Console()
    assert await RootKeeper(console.sink, store).keep(RESOLVED) == 2


async def test_keep_root__only_the_channel_asked_and_raises_when_refused():
    console, store = Console(), await store_with_roots()
    keeper = RootKeeper(console.sink, store)
    assert await keeper.keep_root(ACKED, "#ml")
    assert not await keeper.keep_root(ACKED, "#ml")
    assert not await keeper.keep_root(ACKED, "#nowhere")
    assert console.updates() == ["C2 2.0"]
    assert await keeper.keep(ACKED) == 1, "the other channel's root is still behind"
    with pytest.raises(ActionError, match="message_not_found"):
        await RootKeeper(Refusing(io.StringIO()), store).keep_root(RESOLVED, "#oncall")


async def test_keep__without_a_chat_sink_or_roots_does_nothing():
    assert await RootKeeper(None, await store_with_roots()).keep(ACKED) == 0
    assert await RootKeeper(Console().sink, ThreadStore()).keep(ACKED) == 0
