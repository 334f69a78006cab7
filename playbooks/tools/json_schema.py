"""``fireline playbooks schema``: a JSON Schema of playbook files, for editor completion.

Built from the pydantic models, with each step's params schema taken from the
registered action, so completion knows every action and its params.
"""

from __future__ import annotations

from typing import Any

from playbooks.registry import ActionRegistry
from playbooks.schema import Playbook, StepOptions


def playbook_schema(registry: ActionRegistry) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one playbook file."""
    schema = Playbook.model_json_schema(mode="validation")
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    options = dict(StepOptions.model_json_schema(mode="validation")["properties"])
    for name in ("timeout", "backoff"):
        options[name] = {
            "anyOf": [
                {"type": "number"},
                {"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h|d)$"},
            ],
            "description": options[name].get("description", ""),
        }
    variants = []
    for action in registry.names():
        params = registry.get(action).params_model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(params.pop("$defs", {}))
        variants.append(
            {
                "type": "object",
                "properties": {action: params, **options},
                "required": [action],
                "additionalProperties": False,
            }
        )
    steps = {
        "type": "array",
        "minItems": 1,
        "items": {"oneOf": variants},
        "description": "Ordered steps: {action_name: params} plus step options.",
    }
    schema["properties"]["steps"] = steps
    verify = defs["Verify"]["properties"]
    verify["on_unverified"] = {**steps, "description": "Steps run when the check fails."}
    verify["resolved_within"] = {
        "anyOf": [{"type": "number"}, {"type": "string"}],
        "description": "How long the incident has to resolve, e.g. 10m.",
    }
    schema["properties"]["cooldown"] = {
        "anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}],
        "description": "At most one run per incident fingerprint this often (e.g. 10m).",
    }
    defs.pop("Step", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "fireline playbook"
    return schema
