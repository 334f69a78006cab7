"""``POST /webhooks/alertmanager``: Prometheus alerts in, detections out.

Alertmanager's webhook receiver posts each notification here with
``Authorization: Bearer <alertmanager token>`` (its ``http_config.authorization``).
Every alert becomes a detection (:mod:`agents.incidents.alertmanager`) published
to ``fireline.detections`` keyed by its subject, like a detector's alarm, and the
answer comes once the broker has them all. Alertmanager retries a 5xx and never a
4xx, so the answers are chosen to lose nothing: a broker outage is a 503 (try
again), a refused payload a 400 naming what was wrong, after publishing every good
alert it carried.
"""

from __future__ import annotations

import logging

from aiohttp import StreamReader, web

from agents.incidents.alertmanager import read_payload
from agents.incidents.api import bearer_denied, error
from agents.service.runtime import OutRecord, Publisher
from fireline.detections import Detection, DetectionInput
from fireline.errors import BrokerError, EventError

log = logging.getLogger(__name__)

ROUTE = "/webhooks/alertmanager"
# A notification carries every alert of its group; big groups are legitimate, and a
# refused one is not retried. Alertmanager's max_alerts keeps them under this.
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024


class AlertIntake:
    """The Alertmanager webhook endpoint."""

    def __init__(
        self,
        publisher: Publisher,
        detections_topic: str,
        token: str | None,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        self.publisher = publisher
        self.detections_topic = detections_topic
        self.token = token
        self.max_payload_bytes = max_payload_bytes

    def add_routes(self, app: web.Application) -> None:
        """Register the route on ``app``."""
        app.router.add_post(ROUTE, self.receive)

    async def receive(self, request: web.Request) -> web.Response:
        """Publish the payload's alerts as detections; 200 with how many."""
        denied = bearer_denied(
            request,
            self.token,
            disabled="the Alertmanager intake is disabled: set FIRELINE_ALERTMANAGER_TOKEN "
            "(or alertmanager_token_file)",
            label="Alertmanager token",
        )
        if denied is not None:
            return denied
        body = await _read_at_most(request.content, self.max_payload_bytes)
        if body is None:
            return error(
                413,
                f"payload larger than {self.max_payload_bytes} bytes: "
                "set max_alerts on the webhook receiver, or group alerts more finely",
            )
        try:
            intake = read_payload(body)
        except EventError as exc:
            return error(400, str(exc))
        try:
            await self._publish(intake.detections)
        except BrokerError as exc:
            log.error("alertmanager: cannot publish %d alerts: %s", len(intake.detections), exc)
            return error(503, "cannot reach the Kafka broker; Alertmanager will retry")
        firing = sum(not d.cleared for d in intake.detections)
        log.info(
            "alertmanager: %d firing, %d resolved, %d refused",
            firing,
            len(intake.detections) - firing,
            len(intake.problems),
        )
        if intake.truncated:
            log.warning("alertmanager left out %d alerts (max_alerts)", intake.truncated)
        accepted = len(intake.detections)
        if intake.problems:
            problems = "; ".join(intake.problems)
            return web.json_response(
                {
                    "error": f"{len(intake.problems)} alert(s) refused: {problems}",
                    "accepted": accepted,
                },
                status=400,
            )
        return web.json_response({"accepted": accepted})

    async def _publish(self, detections: list[Detection]) -> None:
        if not detections:
            return
        records: list[OutRecord] = [
            (d.subject_key.encode(), DetectionInput(detection=d).model_dump_json().encode(), {})
            for d in detections
        ]
        await self.publisher.publish(self.detections_topic, records)


async def _read_at_most(content: StreamReader, limit: int) -> bytes | None:
    """The whole body, or None once it exceeds ``limit`` (the app's own cap is 1 MiB)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
