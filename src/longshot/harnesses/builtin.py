"""Longshot's own agent loop: the model calls the worker tools until it calls ``handoff``.

The loop runs in the orchestrator process; only tool execution happens in the sandbox,
so the sandbox never sees the API key. Each step emits a `WorkerStep` event.
"""

from __future__ import annotations

import json

from longshot.errors import BudgetExceeded
from longshot.events import Emit, WorkerStep
from longshot.harnesses.base import HarnessResult
from longshot.harnesses.tools import WORKER_TOOLS, HandoffArgs, ToolBox, ToolCallError, parse_call, tool_schemas
from longshot.llm.base import ChatModel, Message
from longshot.prompts import Prompts
from longshot.sandboxes.base import Sandbox
from longshot.types import Task

REMINDER = (
    "You answered without calling a tool. If the task is finished (or cannot be finished), "
    "call the handoff tool now with your status and summary; otherwise continue with a tool call."
)


class BuiltinHarness:
    """Runs one task with the worker role of ``model``, at most ``max_steps`` model turns."""

    def __init__(self, model: ChatModel, prompts: Prompts, emit: Emit, *, max_steps: int = 100,
                 max_tokens: int | None = None) -> None:
        self.model = model
        self.prompts = prompts
        self.emit = emit
        self.max_steps = max_steps
        self.max_tokens = max_tokens
        self._schemas = tool_schemas(WORKER_TOOLS)

    async def run(self, task: Task, sandbox: Sandbox) -> HarnessResult:
        messages: list[Message] = [
            {"role": "system", "content": self.prompts.render("worker")},
            {"role": "user", "content": self.prompts.render("worker_task", task=task)},
        ]
        tools = ToolBox(sandbox)
        tokens = calls = 0
        reminded = False
        last_text = ""
        for step in range(1, self.max_steps + 1):
            if self.max_tokens is not None and tokens >= self.max_tokens:
                return self._stopped(f"task token budget spent ({tokens} of TASK_MAX_TOKENS={self.max_tokens})",
                                     last_text, tokens, calls, step - 1)
            try:
                completion = await self.model.complete("worker", messages, self._schemas, task_id=task.id)
            except BudgetExceeded as e:
                return self._stopped(str(e), last_text, tokens, calls, step - 1)
            tokens += completion.usage.total
            messages.append(completion.as_message())
            last_text = completion.content or last_text
            if not completion.tool_calls:
                if step == 1 and not (completion.content or "").strip():
                    return HarnessResult(status="failed", summary="the model's first answer was empty",
                                         tokens_used=tokens, steps=step)
                if reminded:
                    return HarnessResult(status="partial", summary=last_text or "ended without a handoff",
                                         concerns=["the worker ended without calling handoff"],
                                         tokens_used=tokens, tool_calls=calls, steps=step)
                reminded = True
                messages.append({"role": "user", "content": REMINDER})
                continue
            for call in completion.tool_calls:
                calls += 1
                if call.name == "handoff":
                    try:
                        args = parse_call(WORKER_TOOLS, "handoff", call.arguments)
                    except ToolCallError as e:
                        self._step(task, step, call.name, False, str(e))
                        messages.append(_tool_message(call.id, f"error: {e}"))
                        continue
                    assert isinstance(args, HandoffArgs)
                    self._step(task, step, "handoff", True, args.status)
                    return HarnessResult(status=args.status, summary=args.summary, concerns=args.concerns,
                                         suggestions=args.suggestions, tokens_used=tokens,
                                         tool_calls=calls, steps=step)
                outcome = await tools.call(call.name, call.arguments)
                self._step(task, step, call.name, outcome.ok, _brief(call.arguments))
                messages.append(_tool_message(call.id, outcome.text))
        return HarnessResult(status="partial", summary=last_text or f"stopped after {self.max_steps} steps",
                             concerns=[f"step limit reached ({self.max_steps} steps)"],
                             tokens_used=tokens, tool_calls=calls, steps=self.max_steps)

    def _stopped(self, why: str, last_text: str, tokens: int, calls: int, steps: int) -> HarnessResult:
        """A budget ended the task: partial, with what is known."""
        return HarnessResult(status="partial", summary=f"stopped: {why}. {last_text}".strip(), concerns=[why],
                             tokens_used=tokens, tool_calls=calls, steps=steps)

    def _step(self, task: Task, step: int, tool: str, ok: bool, detail: str) -> None:
        self.emit(WorkerStep(task_id=task.id, step=step, tool=tool, ok=ok, detail=detail[:200]))


def _tool_message(call_id: str, text: str) -> Message:
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _brief(arguments: str) -> str:
    """A one-line summary of a call's arguments for the event log (not the content)."""
    try:
        data = json.loads(arguments)
    except json.JSONDecodeError:
        return "invalid arguments"
    if not isinstance(data, dict):
        return ""
    for key in ("command", "path", "pattern"):
        if isinstance(data.get(key), str):
            return str(data[key])[:200]
    return ""
