"""The built-in actions; ``default_registry()`` has them all."""

from playbooks.actions import kafka, log, pagerduty, retrain, rollback, slack, webhook
from playbooks.registry import ActionRegistry


def default_registry() -> ActionRegistry:
    """A registry with every built-in action."""
    registry = ActionRegistry()
    for module in (slack, webhook, pagerduty, kafka, log, rollback, retrain):
        module.register(registry)
    return registry


__all__ = ["default_registry"]
