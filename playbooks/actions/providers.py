"""Per-provider params checks for actions with a ``provider`` (rollback, retrain).

One params model per action keeps the registry's one-model-per-action rule; this
check keeps it as strict as separate models would be: a param another provider
uses is an error naming the provider, not silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet

from pydantic import BaseModel


def check_provider_fields(
    params: BaseModel,
    provider: str,
    allowed: Mapping[str, AbstractSet[str]],
    required: Mapping[str, AbstractSet[str]],
) -> None:
    """Raise ValueError for params ``provider`` does not take, or required ones left out."""
    given = params.model_fields_set - {"provider"}
    stray = sorted(given - allowed[provider])
    if stray:
        raise ValueError(
            f"{', '.join(stray)} not used by provider {provider}; "
            f"it takes: {', '.join(sorted(allowed[provider])) or 'nothing else'}"
        )
    missing = sorted(required.get(provider, set()) - given)
    if missing:
        raise ValueError(f"provider {provider} needs {', '.join(missing)}")
