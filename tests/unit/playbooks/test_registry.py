import pytest

from fireline.incident import Incident
from playbooks.context import ActionContext
from playbooks.registry import ActionParams, ActionRegistry, ActionResult


class EchoParams(ActionParams):
    text: str = "hi"


def test_registry__registers_typed_action_and_lists_names():
    registry = ActionRegistry()

    @registry.action("echo")
    async def echo(incident: Incident, params: EchoParams, context: ActionContext) -> ActionResult:
        return ActionResult("echo", ok=True, detail=params.text)

    assert registry.names() == ["echo"]
    assert registry.get("echo").params_model is EchoParams


def test_registry__rejects_sync_function():
    registry = ActionRegistry()
    with pytest.raises(TypeError, match=r"action .x.: .*must be an async function"):

        @registry.action("x")
        def x(incident: Incident, params: EchoParams, context: ActionContext) -> ActionResult:
            raise AssertionError


def test_registry__rejects_wrong_arity():
    registry = ActionRegistry()
    with pytest.raises(
        TypeError, match=r"action 'x': expected \(incident, params, context\), got \(incident\)"
    ):

        @registry.action("x")
        async def x(incident: Incident) -> ActionResult:
            raise AssertionError


def test_registry__rejects_untyped_params():
    registry = ActionRegistry()
    with pytest.raises(
        TypeError, match="action 'x': annotate params with an ActionParams subclass"
    ):

        @registry.action("x")
        async def x(incident: Incident, params: dict, context: ActionContext) -> ActionResult:
            raise AssertionError


def test_registry__rejects_duplicate_and_reports_unknown():
    registry = ActionRegistry()

    @registry.action("echo")
    async def echo(incident: Incident, params: EchoParams, context: ActionContext) -> ActionResult:
        raise AssertionError

    with pytest.raises(ValueError, match="action 'echo' is already registered"):
        registry.action("echo")(echo)
    with pytest.raises(KeyError, match="unknown action 'nope'; known actions: echo"):
        registry.get("nope")
