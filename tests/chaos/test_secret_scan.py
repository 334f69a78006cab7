"""The secret scan can fail: a planted secret is found, with where, and never shown in full."""

from __future__ import annotations

from tests.chaos.secret_scan import LogWatch, scan

PLANTED = "xoxb-planted-secret-for-the-scanner"


def test_a_secret_written_to_a_watched_log_is_found_with_its_file_and_line(tmp_path):
    log = tmp_path / "worker.log"
    log.write_text(f"[..] INFO start\n[..] DEBUG calling Slack with Bearer {PLANTED}\n")
    watch = LogWatch(baseline={})
    watch.watch(log, {"FIRELINE_SLACK_TOKEN": PLANTED})

    findings = watch.findings()

    assert [(f.path, f.line) for f in findings] == [(log, 2)]
    assert PLANTED not in str(findings[0])
    assert str(findings[0]).endswith("a configured secret (xoxb… (35 chars)) was logged")


def test_a_secret_from_a_token_file_is_looked_for_too(tmp_path):
    token_file = tmp_path / "api-token"
    token_file.write_text("api-token-from-a-file\n")
    log = tmp_path / "worker.log"
    log.write_text("rejected api-token-from-a-file\n")
    watch = LogWatch(baseline={})
    watch.watch(log, {"FIRELINE_API_TOKEN_FILE": str(token_file)})

    assert len(watch.findings()) == 1


def test_clean_logs_and_the_machine_s_own_variables_give_nothing(tmp_path):
    log = tmp_path / "worker.log"
    log.write_text("ambient-value-1234 is in the log but the suite did not set it\n")
    watch = LogWatch(baseline={"GH_TOKEN": "ambient-value-1234"})
    watch.watch(log, {"GH_TOKEN": "ambient-value-1234", "FIRELINE_API_TOKEN": PLANTED})

    assert watch.findings() == []
    assert scan([tmp_path / "missing.log"], [PLANTED]) == []
