"""Series written as PromQL selectors, so a message names what an engineer can paste.

A metric event ``{"name": "latency_ms", "labels": {"model": "fraud"}}`` is the
series ``latency_ms{model="fraud"}`` in the Prometheus it came from. fireline's
own series keys (``latency_ms{model=fraud}``) stay as they are: detectors are
checkpointed and incidents fingerprinted by them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def selector(name: str, labels: Mapping[str, str]) -> str:
    r"""``name{label="value",…}``, labels sorted, quoted and escaped as PromQL reads them.

    A name Prometheus would not accept bare goes in quotes, as Prometheus 3 reads it.

    >>> selector("latency_ms", {"service": "fraud-api", "model": "fraud"})
    'latency_ms{model="fraud",service="fraud-api"}'
    >>> selector("latency_ms", {})
    'latency_ms'
    >>> print(selector("http.latency", {"path": 'say "hi"'}))
    {"http.latency",path="say \"hi\""}
    """
    matchers = [f"{_name(k, _LABEL_NAME)}={_quoted(v)}" for k, v in sorted(labels.items())]
    if _METRIC_NAME.match(name):
        return f"{name}{{{','.join(matchers)}}}" if matchers else name
    return "{" + ",".join([_quoted(name), *matchers]) + "}"


def _name(name: str, valid: re.Pattern[str]) -> str:
    return name if valid.match(name) else _quoted(name)


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
