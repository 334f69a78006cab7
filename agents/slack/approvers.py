"""Who may approve or reject a step from Slack: an allow-list of user and user group ids.

``FIRELINE_SLACK_APPROVERS='["U0123ABCD", "S0456EFGH"]'``: user ids (``U…``,
``W…``) allow that user; user group ids (``S…``) allow the group's members, asked
of Slack (``usergroups.users.list``) and remembered for a minute. The check is on
the user id Slack signed, never on a name. An empty list lets nobody approve
from Slack (the API's approver tokens still can).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

GROUP_CACHE_S = 60.0

GroupMembers = Callable[[str], Awaitable[set[str]]]


class SlackApprovers:
    """Answers whether a Slack user id may decide approvals."""

    def __init__(
        self,
        allowed: Iterable[str],
        group_members: GroupMembers | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``group_members``: a user group's member ids (None: groups allow nobody)."""
        ids = {entry.strip() for entry in allowed if entry.strip()}
        self.users = frozenset(i for i in ids if not i.startswith("S"))
        self.groups = frozenset(i for i in ids if i.startswith("S"))
        self.group_members = group_members
        self.clock = clock
        self._cache: dict[str, tuple[float, set[str]]] = {}

    @property
    def configured(self) -> bool:
        """Whether anyone may approve from Slack."""
        return bool(self.users or self.groups)

    async def allows(self, user_id: str | None) -> bool:
        """Whether ``user_id`` is on the list, directly or through a user group."""
        if not user_id:
            return False
        if user_id in self.users:
            return True
        for group in sorted(self.groups):
            if user_id in await self._members(group):
                return True
        return False

    async def _members(self, group: str) -> set[str]:
        if self.group_members is None:
            return set()
        cached = self._cache.get(group)
        if cached is not None and self.clock() - cached[0] < GROUP_CACHE_S:
            return cached[1]
        try:
            members = await self.group_members(group)
        except (SlackClientError, OSError, TimeoutError) as exc:
            log.warning("cannot list the members of Slack user group %s: %s", group, exc)
            return cached[1] if cached is not None else set()
        self._cache[group] = (self.clock(), members)
        return members


def slack_group_members(client: AsyncWebClient) -> GroupMembers:
    """A user group's member ids through ``usergroups.users.list``."""

    async def members(group: str) -> set[str]:
        response = await client.usergroups_users_list(usergroup=group)
        users = response.get("users")
        return {str(u) for u in users} if isinstance(users, list) else set()

    return members
