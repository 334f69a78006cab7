"""On-call niceties through a real worker: step-result replies and reminders.

A real broker and worker process, the loopback Slack stand-in and the real
slack-sdk: an incident's thread gets a reply with what the playbook's steps did,
and a critical incident nobody acknowledges is reminded in its thread (also
broadcast to the channel) until the limit.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agents.kafka.broker import EmbeddedBroker, free_port
from tests.integration.support import SlackServer, WorkerProcess, wait_for, worker_env
from tests.integration.test_incidents import TOKEN, incident_events, samples, send

pytestmark = pytest.mark.integration

CLOSED_PORT = free_port()  # nothing listens: the webhook step fails
ONCALL = f"""\
name: oncall
match:
  kinds: [latency_spike]
  transitions: [opened]
steps:
  - slack: {{}}
  - log: {{message: "noted"}}
    name: note
  - webhook: {{url: "http://127.0.0.1:{CLOSED_PORT}/hook"}}
    name: tell-the-deployer
    on_failure: continue
"""


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker, slack: SlackServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    directory = tmp_path_factory.mktemp("playbooks")
    (directory / "oncall.yaml").write_text(ONCALL)
    env = worker_env(
        broker.url,
        slack,
        directory,
        FIRELINE_API_TOKEN=TOKEN,
        FIRELINE_INCIDENTS__TICK_S="0.3",
        FIRELINE_INCIDENTS__QUIET_PERIOD_S="600",  # stays open for the reminders
        FIRELINE_INCIDENTS__SIGNAL_EXPIRY_S="600",
        FIRELINE_SLACK_REMIND_AFTER_S="1.5",
        FIRELINE_SLACK_MAX_REMINDERS="2",
        FIRELINE_SLACK_REMIND_MENTION="<!subteam^S0NCALL>",
    )
    process = WorkerProcess(env, tmp_path_factory.mktemp("worker") / "worker.log").start()
    yield process
    process.stop()


def test_steps_are_reported_in_the_thread_and_a_critical_incident_is_reminded(
    broker, worker, slack
):
    service = "unwatched-api"
    send(broker, worker, samples(service, [(200, 48.0), (25, 420.0)], seed=21), service)
    (opened,) = incident_events(broker, worker, service, 1, 30)
    assert opened["severity"] == "critical"
    wait_for(lambda: len(slack.messages("Reminder 2")) >= 1, 30, "two reminders")
    wait_for(lambda: len(slack.messages("Playbook steps:")) >= 1, 30, "the steps' reply")
    # A third would be due one interval after the second: wait for the reminder
    # pass that does so (see remind_passed) before counting.
    remind_passed(broker, worker, slack, "late-control-api", seed=23)

    posts = slack.called("chat.postMessage")
    [root] = [p for p in posts if service in p["text"] and "thread_ts" not in p]
    root_ts = next(p["thread_ts"] for p in posts if opened["id"] in p["text"] and "thread_ts" in p)
    replies = [p for p in posts if p.get("thread_ts") == root_ts]

    [steps] = [r for r in replies if r["text"].startswith("Playbook steps:")]
    lines = steps["text"].splitlines()
    assert lines[1] == ":white_check_mark: oncall/note (fireline.actions): logged at info", lines
    assert lines[2].startswith(f":x: oncall/tell-the-deployer (127.0.0.1:{CLOSED_PORT}/hook): ")
    assert len(lines) == 3, "the Slack step itself is the thread, not a result line"

    reminders = [r for r in replies if "Reminder" in r["text"]]
    assert [r["text"].split(": [")[0] for r in reminders] == [
        ":alarm_clock: <!subteam^S0NCALL> Reminder 1",
        ":alarm_clock: <!subteam^S0NCALL> Reminder 2",
    ]
    assert all(str(r["reply_broadcast"]).lower() == "true" for r in reminders)
    assert f"fireline incidents ack {opened['id']}" in reminders[0]["text"]
    assert root["channel"] == "#fireline-alerts"


def test_an_acknowledged_incident_is_not_reminded(broker, worker, slack):
    service = "watched-api"
    send(broker, worker, samples(service, [(200, 48.0), (25, 420.0)], seed=22), service)
    (opened,) = incident_events(broker, worker, service, 1, 30)

    def reminders() -> list[str]:
        return [m for m in slack.messages(opened["id"]) if "Reminder" in m]

    # The worker's view follows the incidents topic: wait until it has the incident
    # (this test read it from the topic first), then acknowledge. The answer waits
    # until the view shows the acknowledgement.
    wait_for(
        lambda: worker.request("GET", f"/incidents/{opened['id']}", token=TOKEN)[0] == 200,
        30,
        "the incident in the worker's view",
    )
    status, acked = worker.request("POST", f"/incidents/{opened['id']}/ack", {"by": "bob"}, TOKEN)
    assert (status, acked["status"]) == (200, "acknowledged")
    before = len(reminders())  # one may have been due before the acknowledgement
    remind_passed(broker, worker, slack, "ack-control-api", seed=24)
    assert len(reminders()) == before <= 1


def remind_passed(
    broker: EmbeddedBroker, worker: WorkerProcess, slack: SlackServer, control: str, seed: int
) -> None:
    """Wait until a reminder pass has run at least one interval after now (and finished).

    A control incident opened now is reminded once an interval has passed, and
    again an interval later: every pass considers every thread, so the pass of the
    control's second reminder came after any reminder due by then for another
    incident had been sent (the positive signal an absence of reminders needs).
    """
    send(broker, worker, samples(control, [(200, 48.0), (25, 420.0)], seed=seed), control)
    (opened,) = incident_events(broker, worker, control, 1, 30)
    wait_for(
        lambda: any("Reminder 2" in m for m in slack.messages(opened["id"])),
        30,
        f"the control incident {control}'s second reminder",
    )
