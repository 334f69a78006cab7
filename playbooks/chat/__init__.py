"""Outbound chat: sinks (Slack, console), thread roots, pacing, Block Kit messages, evidence charts and texts."""
