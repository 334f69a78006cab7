"""A time budget for code fireline runs on an author's behalf (templates, CEL conditions).

Both are interpreted in pure Python in the worker's own thread, so a runaway
one would stall every playbook. :func:`time_budget` installs a trace function
for the duration of one render or evaluation: every Python call made there (and
every line of code compiled from a Jinja template, whose loops may make no call
at all) checks the clock, and once the budget is spent the code in progress is
interrupted with :class:`OutOfTime`, raised only in the interpreter's own code
(``raise_in``): never in a callback that happens to run meanwhile (a weakref's,
the garbage collector's), which could only swallow it. Outside such a block
nothing is traced.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

# The file name Jinja gives the Python code it compiles a template into.
TEMPLATE_CODE = "<template>"


class OutOfTime(BaseException):
    """The budget is spent. A BaseException, so no ``except Exception`` on the way swallows it."""


TraceFunction = Any  # sys.settrace's callable type is private to typeshed


@contextmanager
def time_budget(
    seconds: float,
    line_files: frozenset[str] = frozenset(),
    line_check: Callable[[FrameType], None] | None = None,
    raise_in: tuple[str, ...] = ("",),
) -> Iterator[None]:
    """Raise :class:`OutOfTime` inside the block once it has run ``seconds``.

    ``line_files``: code files whose every line checks too (not just their calls),
    and runs ``line_check`` on its frame (which may raise to stop the code).
    ``raise_in``: prefixes of the code files where it may be raised.
    A tracer already installed (a debugger, coverage) is put back afterwards.
    """
    deadline = time.monotonic() + seconds

    def on_line(frame: FrameType, event: str, arg: Any) -> TraceFunction:
        if time.monotonic() > deadline:
            raise OutOfTime(f"took more than {seconds:g} s")
        if line_check is not None:
            line_check(frame)
        return on_line

    def on_call(frame: FrameType, event: str, arg: Any) -> TraceFunction:
        code = frame.f_code.co_filename
        if time.monotonic() > deadline and code.startswith(raise_in):
            raise OutOfTime(f"took more than {seconds:g} s")
        return on_line if code in line_files else None

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        yield
    finally:
        sys.settrace(previous)
