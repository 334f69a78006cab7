"""The evidence chart is a real PNG of the points, or a ChartError."""

from __future__ import annotations

import struct

import pytest

from fireline.errors import ChartError
from fireline.incident import Evidence, EvidencePoint
from playbooks.chat.chart import PNG_MAGIC, render_chart

T0 = 1795255200.0


def evidence(n: int = 60) -> Evidence:
    points = [EvidencePoint(at=T0 + i, value=50.0 if i < n - 5 else 400.0) for i in range(n)]
    return Evidence(
        series="latency_ms{service=fraud-api}", baseline=50.0, detected_at=T0 + n - 3, points=points
    )


def test_render_chart__is_a_png_of_the_configured_size():
    png = render_chart(evidence(), "latency_ms of fraud-api")
    assert png.startswith(PNG_MAGIC)
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert (width, height) == (800, 320)


def test_render_chart__different_evidence_draws_a_different_picture():
    assert render_chart(evidence(60)) != render_chart(evidence(30))


def test_render_chart__a_single_point_still_draws():
    assert render_chart(evidence(1)).startswith(PNG_MAGIC)


def test_render_chart__no_points_is_a_chart_error():
    empty = Evidence(series="x", baseline=1.0, detected_at=T0)
    with pytest.raises(ChartError, match="no evidence points for x"):
        render_chart(empty)
