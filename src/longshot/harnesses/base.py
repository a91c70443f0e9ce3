"""The contract of a harness: work one task in one sandbox and report how it ended.

A harness never commits, pushes or touches the hub: the orchestrator snapshots the
sandbox afterwards. Its result carries only what the agent said (status, summary,
concerns, suggestions) and what it spent; line counts and files come from git.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

from longshot.caps import Notes, Summary
from longshot.sandboxes.base import Sandbox
from longshot.types import HandoffStatus, Task


class HarnessResult(BaseModel):
    """How the agent ended; its words are capped (`longshot.caps`) as the result is built."""

    status: HandoffStatus
    summary: Summary
    concerns: Notes = Field(default_factory=list)
    suggestions: Notes = Field(default_factory=list)
    tokens_used: int = 0
    tool_calls: int = 0
    steps: int = 0


class Harness(Protocol):
    async def run(self, task: Task, sandbox: Sandbox) -> HarnessResult: ...


class Desk(Protocol):
    """What a running worker hears from the orchestrator, and how it asks for the tip.

    The builtin harness reads `messages` before each model request and appends them to the
    conversation as user messages; its ``merge_tip`` tool calls `merge_tip`.
    """

    def messages(self, task_id: str) -> list[str]:
        """Messages for the worker of ``task_id`` not yet given to it (each given once)."""
        ...

    async def merge_tip(self, task_id: str, sandbox: Sandbox) -> str:
        """Merge the target branch's tip into the worker's checkout; the tool's answer."""
        ...
