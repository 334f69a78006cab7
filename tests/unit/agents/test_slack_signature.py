"""Slack request signatures are checked like Slack documents them."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from agents.slack.signature import slack_signature, verify_slack_request
from fireline.errors import ApiError

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BODY = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
NOW = 1795255200


def test_slack_signature__is_v0_hmac_sha256_of_v0_timestamp_body():
    digest = hmac.new(SECRET.encode(), f"v0:{NOW}:".encode() + BODY, hashlib.sha256).hexdigest()
    assert slack_signature(SECRET, str(NOW), BODY) == f"v0={digest}"


def test_verify__accepts_a_fresh_well_signed_request():
    signature = slack_signature(SECRET, str(NOW), BODY)
    verify_slack_request(SECRET, str(NOW), signature, BODY, now=NOW + 299)


@pytest.mark.parametrize(
    ("timestamp", "signature", "body", "message"),
    [
        (None, "v0=x", BODY, "missing"),
        (str(NOW), None, BODY, "missing"),
        ("yesterday", "v0=x", BODY, "not a number"),
        (str(NOW - 301), slack_signature(SECRET, str(NOW - 301), BODY), BODY, "stale"),
        (str(NOW + 301), slack_signature(SECRET, str(NOW + 301), BODY), BODY, "stale"),
        (str(NOW), slack_signature("other-secret", str(NOW), BODY), BODY, "bad Slack signature"),
        (str(NOW), slack_signature(SECRET, str(NOW), BODY), BODY + b"x", "bad Slack signature"),
        (str(NOW), slack_signature(SECRET, str(NOW - 1), BODY), BODY, "bad Slack signature"),
    ],
)
def test_verify__rejects_unsigned_badly_signed_or_stale(timestamp, signature, body, message):
    with pytest.raises(ApiError, match=message) as err:
        verify_slack_request(SECRET, timestamp, signature, body, now=NOW)
    assert err.value.status == 401
