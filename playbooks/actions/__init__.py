"""The built-in actions; ``default_registry()`` has them all."""

from playbooks.actions import slack
from playbooks.registry import ActionRegistry


def default_registry() -> ActionRegistry:
    """A registry with every built-in action."""
    registry = ActionRegistry()
    slack.register(registry)
    return registry


__all__ = ["default_registry"]
