"""Every log line the test suite made, scanned for the secret values it configured.

The integration fixtures give fireline distinctive secrets (Slack tokens, the
signing secret, API and Alertmanager tokens, webhook secrets). ``LOGS`` learns
them from each worker's environment as the worker starts (``WorkerProcess``)
and from the variables a test sets in this process, and remembers each worker's
log file; the session's end scans those files and this process's own log
(tests/conftest.py) and fails the run on any secret found.

Only values the suite itself set count: a variable whose value is the one this
process started with (the machine's own environment) is never read.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Names of variables that hold a secret (or, ending in _FILE, a file holding one).
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|SIGNING|API_KEY|PRIVATE_KEY", re.IGNORECASE)
#: Shorter values would match by chance; the fixtures' secrets are all longer.
MIN_SECRET_LENGTH = 8


@dataclass(frozen=True)
class Finding:
    """A secret seen in a log line (the secret itself is never repeated in full)."""

    path: Path
    line: int
    secret: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: a configured secret ({mask(self.secret)}) was logged"


def mask(secret: str) -> str:
    """The first four characters and the length: enough to tell which one, not to use it.

    >>> mask("xoxb-test-token-never-logged")
    'xoxb… (28 chars)'
    """
    return f"{secret[:4]}… ({len(secret)} chars)"


def secret_values(env: Mapping[str, str], baseline: Mapping[str, str]) -> set[str]:
    """The secret values ``env`` configures that ``baseline`` (the starting env) does not have.

    >>> sorted(secret_values(
    ...     {"FIRELINE_API_TOKEN": "api-token-123", "HOME": "/root", "GH_TOKEN": "ambient-1234",
    ...      "FL_SECRET": "short", "FIRELINE_WEBHOOK_SECRET_ENV": "FL_HOOK_SECRET"},
    ...     baseline={"GH_TOKEN": "ambient-1234"}))
    ['api-token-123']
    """
    found = set()
    for name, value in env.items():
        if not SECRET_NAME.search(name) or baseline.get(name) == value:
            continue
        if name.upper().endswith("_ENV"):
            continue  # the name of a variable, not a secret
        if name.upper().endswith("_FILE"):
            try:
                value = Path(value).read_text(encoding="utf-8").strip()
            except OSError:
                continue
        if len(value) >= MIN_SECRET_LENGTH:
            found.add(value)
    return found


def scan(paths: Iterable[Path], secrets: Iterable[str]) -> list[Finding]:
    """Every (file, line, secret) where a line of one of ``paths`` holds one of ``secrets``."""
    wanted = sorted(set(secrets))
    findings = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            findings += [Finding(path, number, s) for s in wanted if s in line]
    return findings


@dataclass
class LogWatch:
    """The log files to scan and the secrets to look for, gathered during a session."""

    baseline: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    paths: list[Path] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, log_path: Path, env: Mapping[str, str]) -> None:
        """Scan ``log_path`` at the end, for the secrets in ``env`` among others."""
        found = secret_values(env, self.baseline)
        with self.lock:
            if log_path not in self.paths:
                self.paths.append(log_path)
            self.secrets |= found

    def learn(self, env: Mapping[str, str]) -> None:
        """Look for the secrets ``env`` (e.g. this process's, during a test) configures too."""
        found = secret_values(env, self.baseline)
        with self.lock:
            self.secrets |= found

    def findings(self) -> list[Finding]:
        with self.lock:
            return scan(list(self.paths), set(self.secrets))


#: The session's watch (one pytest process).
LOGS = LogWatch()
