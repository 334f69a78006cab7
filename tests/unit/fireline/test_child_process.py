"""Jobs inline until the child has started, in the child after; a job's error reaches the caller."""

from __future__ import annotations

import os

import pytest

from fireline.child_process import ChildProcess, InlineUntilStarted


@pytest.fixture
def child():
    process = ChildProcess("test")
    yield process
    process.close()


def test_jobs_run_in_the_caller_until_the_child_has_started_then_in_the_child(child):
    jobs = InlineUntilStarted(child)
    assert jobs.submit(os.getpid).result() == os.getpid()  # no child yet: here
    assert not child.pids
    child.start().result(timeout=60)  # type: ignore[union-attr]  # submitted on start
    assert child.started
    assert jobs.submit(os.getpid).result(timeout=60) == child.pids[0] != os.getpid()


def test_a_job_that_fails_inline_fails_its_future_as_in_the_child(child):
    with pytest.raises(ValueError, match="invalid literal"):
        InlineUntilStarted(child).submit(int, "x").result()
    child.start().result(timeout=60)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="invalid literal"):
        InlineUntilStarted(child).submit(int, "x").result(timeout=60)


def test_a_terminated_child_is_gone_and_the_next_job_starts_another(child):
    child.start().result(timeout=60)  # type: ignore[union-attr]
    [pid] = child.pids
    child.terminate()
    assert not os.path.exists(f"/proc/{pid}")  # ended and reaped
    assert child.submit(os.getpid).result(timeout=60) not in (pid, os.getpid())
