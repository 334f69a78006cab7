r"""Event data is data, never markup: escape producer strings for where they land.

Label values, model and feature names, categorical values and series names come
from whoever writes to the input topics. In Slack mrkdwn ``<!channel>`` pings a
channel and ``<https://evil.example|Open runbook>`` is a link with any title, so
every such string is escaped before it joins a message; the text fireline or a
playbook author writes around it stays markup. Slack asks for exactly three
entities (``&amp;``, ``&lt;``, ``&gt;``) and decodes them in every text field,
mrkdwn and plain_text alike.

>>> mrkdwn("<!channel> <https://evil.example|Open runbook> & co")
'&lt;!channel&gt; &lt;https://evil.example|Open runbook&gt; &amp; co'
>>> print(chart_text("cost $5 to $10"))
cost \$5 to \$10
"""

from __future__ import annotations

from typing import Any

_MRKDWN = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})

CHART_TITLE_CHARS = 200  # a longer title would only be cut by the figure


def mrkdwn(text: Any) -> str:
    """``text`` as literal characters in a Slack text field (mrkdwn or plain_text).

    ``None`` is an empty string.
    """
    return "" if text is None else str(text).translate(_MRKDWN)


def chart_text(text: str) -> str:
    """``text`` as a literal matplotlib title or label: ``$`` would start mathtext."""
    return text[:CHART_TITLE_CHARS].replace("$", r"\$")
