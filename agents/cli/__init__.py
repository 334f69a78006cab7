"""The ``fireline`` command and its subcommands (run, demo, simulate, replay, playbooks, incidents)."""

from agents.cli.main import main

__all__ = ["main"]
