"""Safe conditions over an incident: CEL (Common Expression Language) via cel-python.

Playbook authors write ``incident.severity == "critical" && incident.count > 3``;
CEL has no I/O, no imports and no loops, so a playbook can never run code.
Never Python ``eval``. cel-python interprets in pure Python, so a condition is
bounded too: at most ``MAX_SOURCE_CHARS`` long, and an evaluation that takes
longer than ``MAX_SECONDS`` (macros nested over long lists) is stopped and
counts as false.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import celpy
from celpy import celtypes

from fireline.incident import Incident
from playbooks.budget import OutOfTime, time_budget

log = logging.getLogger(__name__)

_ENV = celpy.Environment()

# Where an evaluation may be interrupted: cel-python's own code.
_CEL_CODE = (str(Path(celpy.__file__).parent),)

MAX_SOURCE_CHARS = 4096
MAX_SECONDS = 0.5


class Expression:
    """A compiled CEL condition; ``ValueError`` at compile time names what is wrong.

    >>> Expression('incident.severity == "critical" && incident.count > 2').holds(
    ...     {"incident": {"severity": "critical", "count": 3}})
    True
    """

    def __init__(self, source: str) -> None:
        self.source = source
        if len(source) > MAX_SOURCE_CHARS:
            raise ValueError(
                f"CEL expression of {len(source):,} characters, over the limit of "
                f"{MAX_SOURCE_CHARS:,}"
            )
        try:
            self._program = _ENV.program(_ENV.compile(source))
        except celpy.CELParseError as exc:
            raise ValueError(f"not a valid CEL expression: {_first_line(exc)}") from None
        except RecursionError:
            raise ValueError("CEL expression nested too deeply") from None

    def holds(self, variables: dict[str, Any]) -> bool:
        """True only when the expression evaluates to boolean true.

        An evaluation error (a missing field, a wrong type) counts as false: a
        condition that cannot be decided must not trigger an action. So does one
        that runs out of time or recursion.
        """
        try:
            activation = {name: celpy.json_to_cel(value) for name, value in variables.items()}
            with time_budget(MAX_SECONDS, raise_in=_CEL_CODE):
                result = self._program.evaluate(activation)
        except celpy.CELEvalError:
            return False
        except OutOfTime as exc:
            log.warning("condition %r counted as false: it %s", self.source[:200], exc)
            return False
        except RecursionError:
            log.warning("condition %r counted as false: nested too deeply", self.source[:200])
            return False
        return isinstance(result, celtypes.BoolType) and bool(result)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def incident_variables(incident: Incident) -> dict[str, Any]:
    """What expressions and templates see: ``incident`` as its JSON form, plus ``notify``."""
    data = incident.model_dump(mode="json")
    data["notify"] = incident.notify
    data["subject"] = incident.subject
    return {"incident": data}


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]
