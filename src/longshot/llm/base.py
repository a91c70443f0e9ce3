"""The contract every model backend meets, and the values it returns.

Messages are OpenAI chat-completions dicts (``{"role": ..., "content": ...}``, assistant
messages with ``tool_calls``, ``tool`` messages with ``tool_call_id``): the wire format of
every endpoint we speak to, so nothing is translated twice. A backend picks the model
name from the role; callers never name models.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

Role = Literal["planner", "subplanner", "worker", "reconciler"]
ROLES: tuple[Role, ...] = ("planner", "subplanner", "worker", "reconciler")

Message = dict[str, Any]

PROBE_TOOL = "longshot_probe"
"""The one tool of the preflight's tool-calling probe (`longshot doctor`): a model that can
call tools answers the probe by calling it."""


class ToolCall(BaseModel):
    """One tool call as the model sent it. ``arguments`` is the raw JSON text, unparsed."""

    id: str
    name: str
    arguments: str = ""


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Completion(BaseModel):
    """A complete answer. A cut or partial answer is an error, never a Completion."""

    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    duration_ms: int = 0

    def as_message(self) -> Message:
        """The assistant message to append to the conversation."""
        msg: Message = {"role": "assistant", "content": self.content or ""}
        if self.tool_calls:
            msg["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return msg


class ChatModel(Protocol):
    """Sends one chat request for a role and returns the whole answer.

    Raises a subclass of `longshot.errors.LLMError` on failure, never an SDK error, or
    `longshot.errors.BudgetExceeded` when the run's budget is spent. ``task_id`` attributes
    the tokens and cost to a task.
    """

    async def complete(
        self, role: Role, messages: list[Message], tools: list[dict[str, Any]] | None = None,
        *, task_id: str | None = None,
    ) -> Completion: ...

    async def aclose(self) -> None: ...


class Endpoint(Protocol):
    """One model server: a single attempt per call, errors already translated."""

    name: str

    async def send(self, model: str, messages: list[Message], tools: list[dict[str, Any]] | None = None) -> Completion: ...

    async def aclose(self) -> None: ...
