"""Events of model access: usage, retries, endpoint health, waiting, and spent budgets.

Re-exported by `longshot.events`, which holds the union of all event types (`AnyEvent`).
"""

from __future__ import annotations

from typing import Literal

from longshot.bus import Event


class LLMUsage(Event):
    type: Literal["llm.usage"] = "llm.usage"
    role: str
    model: str
    endpoint: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    duration_ms: int = 0


class LLMRetry(Event):
    """A model request failed and will be tried again (maybe elsewhere)."""

    type: Literal["llm.retry"] = "llm.retry"
    role: str
    endpoint: str
    attempt: int
    error: str
    delay_s: float = 0.0
    """How long the retry waits first (0 when it fails over to another endpoint at once)."""


class EndpointHealth(Event):
    """An endpoint was taken out of rotation (rest) or came back."""

    type: Literal["llm.endpoint"] = "llm.endpoint"
    endpoint: str
    healthy: bool
    reason: str = ""


class ModelsWaiting(Event):
    """Every endpoint is resting: model requests wait about ``wait_s`` for the first to come back."""

    type: Literal["llm.waiting"] = "llm.waiting"
    endpoints: int
    wait_s: float
    reason: str = ""


class BudgetSpent(Event):
    """A budget ran out; ``budget`` names its setting."""

    type: Literal["budget.spent"] = "budget.spent"
    budget: str
    message: str
