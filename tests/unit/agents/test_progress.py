"""The progress bar: drawn in place on its stream, throttled, silent when not wanted."""

from __future__ import annotations

import io

from agents.cli.progress import Progress, progress_wanted


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress__redraws_in_place_at_most_every_interval():
    clock, out = Clock(), io.StringIO()
    progress = Progress("replay", 10, "rows", out, delay_s=0.0, interval_s=1.0, clock=clock)
    progress.advance(2)
    clock.now += 0.5
    progress.advance(2)  # too soon: not drawn
    clock.now += 0.5
    progress.advance(1)
    progress.close()
    frames = out.getvalue().split("\r")[1:]
    assert frames == [
        "replay [#####-------------------]  20% 2/10 rows",  # no time passed: no estimate
        "replay [############------------]  50% 5/10 rows, 0:01 left",
        "replay [############------------]  50% 5/10 rows, 0:01 left\n",
    ]


def test_progress__a_shorter_line_blanks_the_end_of_the_longer_one():
    clock, out = Clock(), io.StringIO()
    progress = Progress("r", 2_000_000, "bytes", out, delay_s=0.0, interval_s=0.0, clock=clock)
    clock.now += 65.0
    progress.advance(1_000_000)
    progress.advance(1_000_000)
    progress.close()
    first, second, final = out.getvalue().split("\r")[1:]
    assert first == "r [############------------]  50% 1.0/2.0 MB, 1:05 left"
    assert second == "r [########################] 100% 2.0/2.0 MB".ljust(len(first))
    assert final.rstrip() == "r [########################] 100% 2.0/2.0 MB"


def test_progress__a_run_shorter_than_the_delay_prints_nothing():
    clock, out = Clock(), io.StringIO()
    progress = Progress("replay", 3, "rows", out, delay_s=1.0, clock=clock)
    assert list(progress.track("abc")) == ["a", "b", "c"]
    progress.close()
    assert out.getvalue() == ""
    clock.now += 2.0
    Progress("replay", 3, "rows", out, delay_s=1.0, clock=lambda: 0.0).close()
    assert out.getvalue() == ""


def test_progress__without_a_stream_it_only_counts():
    progress = Progress("replay", 3, "rows", None, delay_s=0.0)
    assert list(progress.track([1, 2, 3])) == [1, 2, 3]
    progress.close()
    assert progress.done == 3


def test_progress_wanted__asked_wins_else_only_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert progress_wanted(None, Terminal()) is True
    assert progress_wanted(None, io.StringIO()) is False
    assert progress_wanted(True, io.StringIO()) is True
    assert progress_wanted(False, Terminal()) is False
