"""The one rooted error hierarchy of fireline.

::

    FirelineError
     ├── ConfigError (ValueError)          a setting is missing or malformed
     ├── DependencyMissingError (ImportError)  an optional extra is not installed
 ├── DependencyMismatchError           an installed dependency is not the pinned version
     ├── BrokerError                       the Kafka broker is unreachable or refused
     ├── EventError (ValueError)           a consumed event breaks its contract
     ├── DetectorError (ValueError)        a detector was built or fed wrongly
     ├── StateFormatError (ValueError)     saved detector state cannot be written or read back
     ├── PlaybookValidationError (ValueError)  a playbook file is invalid
     ├── ActionError                       an action could not be carried out
     ├── IncidentStateError (ValueError)   an incident cannot make that change
     └── ApiError                          the incident API refused or is unreachable

Messages say what was expected, what was received and how to fix it.
"""

from __future__ import annotations


class FirelineError(Exception):
    """Root of every error fireline raises on purpose."""


class ConfigError(FirelineError, ValueError):
    """A setting is missing or has the wrong form."""


class DependencyMissingError(FirelineError, ImportError):
    """An optional dependency (an extra) is needed but not installed."""


class DependencyMismatchError(FirelineError):
    """An installed dependency differs from the pinned version fireline relies on."""


class BrokerError(FirelineError):
    """The Kafka broker could not be reached, started or used."""


class EventError(FirelineError, ValueError):
    """A consumed event does not satisfy its contract.

    ``reason`` is a short machine label (used as a metric label value) and the
    message is the human-readable detail that goes to the dead-letter topic.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class DetectorError(FirelineError, ValueError):
    """A detector was constructed with bad parameters or fed bad input."""


class StateFormatError(FirelineError, ValueError):
    """Detector state cannot be saved in, or read back from, fireline's state format."""


class PlaybookValidationError(FirelineError, ValueError):
    """One or more playbook files are invalid; ``problems`` lists each with its place."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class ActionError(FirelineError):
    """An action failed against its outbound system."""


class ChartError(FirelineError, ValueError):
    """An evidence chart cannot be drawn (no points, or the renderer failed)."""


class IncidentStateError(FirelineError, ValueError):
    """An incident cannot make the requested change, e.g. acknowledging a resolved one."""


class ApiError(FirelineError):
    """The incident API refused a request or could not be reached; carries the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)
