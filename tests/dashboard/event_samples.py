"""Events made from their own fields, the least each needs: one of every type in the catalogue,
so a type added later is covered by the tests that use these without editing them."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

from longshot.events import Event
from longshot.types import Handoff


def least(annotation: Any) -> Any:
    """The simplest value of a field's type."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return typing.get_args(annotation)[0]
    if origin in (typing.Union, types.UnionType):
        return least(typing.get_args(annotation)[0])
    if origin in (list, dict):
        return origin()
    if annotation is Handoff:
        return Handoff(task_id="t", status="complete", summary="done")
    return {str: "x", int: 1, float: 1.0, bool: True}[annotation]


def one_of(cls: type[Event], ts: float = 5.0) -> Event:
    """An event of ``cls`` about task ``t`` at ``ts``, its required fields at their simplest."""
    fields = {name: least(f.annotation) for name, f in cls.model_fields.items() if f.is_required()}
    return cls(ts=ts, task_id="t", **fields)
