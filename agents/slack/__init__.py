"""Slack inbound: button presses over HTTP or Socket Mode, request signatures, and the notes fireline keeps in threads."""
