"""Run-wide budgets and accounting, shared by every model request of a run.

The router checks `RunBudget.check` before it starts any request, so once a budget is
spent no new request begins; requests already in flight finish and are counted, which
bounds the overshoot by what was in flight.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from longshot.errors import BudgetExceeded


class SpentState(BaseModel):
    """What a run spent, as recorded in its durable state."""

    tokens: int = 0
    cost_usd: float = 0.0
    by_task: dict[str, int] = Field(default_factory=dict)
    cost_by_task: dict[str, float] = Field(default_factory=dict)


@dataclass
class RunBudget:
    """Caps on the whole run (None = no cap) and what has been spent so far."""

    max_tokens: int | None = None
    max_cost_usd: float | None = None
    unpriced: list[str] = field(default_factory=list)
    """Models of the run without a known price: their cost is not counted."""
    tokens: int = 0
    cost_usd: float = 0.0
    by_role: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    by_task: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    cost_by_task: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, role: str, task_id: str | None, tokens: int, cost_usd: float) -> None:
        self.tokens += tokens
        self.cost_usd += cost_usd
        self.by_role[role] += tokens
        if task_id:
            self.by_task[task_id] += tokens
            self.cost_by_task[task_id] += cost_usd

    @property
    def exhausted(self) -> str | None:
        """The name of the spent budget, or None."""
        if self.max_tokens is not None and self.tokens >= self.max_tokens:
            return "RUN_MAX_TOKENS"
        if self.max_cost_usd is not None and self.cost_usd >= self.max_cost_usd:
            return "RUN_MAX_COST_USD"
        return None

    def check(self) -> None:
        """Raise BudgetExceeded if a run budget is spent."""
        name = self.exhausted
        if name == "RUN_MAX_TOKENS":
            raise BudgetExceeded(name, f"the run's token budget is spent: {self.tokens} of RUN_MAX_TOKENS={self.max_tokens}")
        if name == "RUN_MAX_COST_USD":
            raise BudgetExceeded(name, f"the run's cost budget is spent: ${self.cost_usd:.4f} of "
                                       f"RUN_MAX_COST_USD={self.max_cost_usd}")

    def snapshot(self) -> SpentState:
        """What was spent, for the durable state (caps come from the settings, not the record)."""
        return SpentState(tokens=self.tokens, cost_usd=self.cost_usd, by_task=dict(self.by_task),
                          cost_by_task=dict(self.cost_by_task))

    def restore(self, saved: SpentState) -> None:
        """Continue counting from what a recorded run spent."""
        self.tokens, self.cost_usd = saved.tokens, saved.cost_usd
        self.by_task.update(saved.by_task)
        self.cost_by_task.update(saved.cost_by_task)
