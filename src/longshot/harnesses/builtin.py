"""Longshot's own agent loop: the model calls the worker tools until it calls ``handoff``.

The loop runs in the orchestrator process; only tool execution happens in the sandbox,
so the sandbox never sees the API key. Each step emits a `WorkerStep` event. How a run
can end, besides ``handoff``:

- no tool call twice in a row (after one reminder): ``partial`` with the last message;
- an empty first answer: ``failed`` (never a commit);
- the step, token or run budget: ``partial``, the budget named;
- the same call with the same result ``loop_limit`` times in a row: ``partial``, "loop detected";
- ``malformed_limit`` malformed calls in a row: ``failed``, "repeated malformed tool calls";
- context overflow after ``max_compactions`` compactions: ``partial``, "context overflow".
"""

from __future__ import annotations

import json
import time

from longshot.errors import BudgetExceeded, LLMContextOverflow
from longshot.events import Emit, RunWarning, WorkerOutput, WorkerStep
from longshot.harnesses.base import Desk, HarnessResult
from longshot.llm.base import ChatModel, Completion, Message, ToolCall
from longshot.prompts import Prompts
from longshot.sandboxes.base import Sandbox
from longshot.tools.text import printable
from longshot.tools.context import LoopGuard, compact, context_window, estimate_tokens
from longshot.tools.toolbox import WORKER_TOOLS, HandoffArgs, ToolBox, ToolCallError, parse_call, tool_schemas
from longshot.types import HandoffStatus, Task

REMINDER = (
    "You answered without calling a tool. If the task is finished (or cannot be finished), "
    "call the handoff tool now with your status and summary; otherwise continue with a tool call."
)


class Stop(Exception):
    """Ends the loop with a result (control flow inside the harness only)."""

    def __init__(self, result: HarnessResult) -> None:
        self.result = result


class BuiltinHarness:
    """Runs one task with the worker role of ``model``."""

    def __init__(
        self, model: ChatModel, prompts: Prompts, emit: Emit, *, max_steps: int = 100,
        max_tokens: int | None = None, model_name: str = "", context_limit: int | None = None,
        loop_limit: int = 4, malformed_limit: int = 5, max_compactions: int = 3, desk: Desk | None = None,
    ) -> None:
        self.model = model
        self.desk = desk
        """Where messages for a running worker come from (conflict warnings), and ``merge_tip`` goes."""
        self.prompts = prompts
        self.emit = emit
        self.max_steps = max_steps
        self.max_tokens = max_tokens
        self.window = context_limit or context_window(model_name)
        self.loop_limit = loop_limit
        self.malformed_limit = malformed_limit
        self.max_compactions = max_compactions
        self._schemas = tool_schemas(WORKER_TOOLS)

    async def run(self, task: Task, sandbox: Sandbox) -> HarnessResult:
        desk = self.desk
        merge_tip = (lambda: desk.merge_tip(task.id, sandbox)) if desk is not None else None
        run = _Run(self, task, ToolBox(sandbox, on_output=OutputBeat(self.emit, task.id), merge_tip=merge_tip))
        try:
            return await run.loop()
        except Stop as stop:
            return stop.result


class _Run:
    """The state of one task's loop."""

    def __init__(self, harness: BuiltinHarness, task: Task, tools: ToolBox) -> None:
        self.h = harness
        self.task = task
        self.tools = tools
        self.messages: list[Message] = [
            {"role": "system", "content": harness.prompts.render("worker")},
            {"role": "user", "content": harness.prompts.render("worker_task", task=task)},
        ]
        self.tokens = self.calls = self.malformed = self.compactions = self.step = 0
        self.size = estimate_tokens(self.messages)  # kept up to date as messages are added
        self.reminded = False
        self.last_text = ""
        self.loops = LoopGuard(harness.loop_limit)

    def result(self, status: HandoffStatus, summary: str, concerns: list[str] | None = None,
               suggestions: list[str] | None = None) -> HarnessResult:
        return HarnessResult(status=status, summary=summary, concerns=concerns or [], suggestions=suggestions or [],
                             tokens_used=self.tokens, tool_calls=self.calls, steps=self.step)

    def stop(self, status: HandoffStatus, why: str) -> Stop:
        summary = f"stopped: {why}." + (f" Last message: {self.last_text}" if self.last_text else "")
        return Stop(self.result(status, summary, [why]))

    async def loop(self) -> HarnessResult:
        for self.step in range(1, self.h.max_steps + 1):
            if self.h.max_tokens is not None and self.tokens >= self.h.max_tokens:
                raise self.stop("partial", f"task token budget spent ({self.tokens} of TASK_MAX_TOKENS={self.h.max_tokens})")
            for message in self.h.desk.messages(self.task.id) if self.h.desk is not None else []:
                self.add({"role": "user", "content": message})  # between steps: after the last tool results
            completion = await self.ask()
            self.tokens += completion.usage.total
            self.add(completion.as_message())
            self.last_text = completion.content or self.last_text
            if not completion.tool_calls:
                self.no_tool_call(completion)
                continue
            for call in completion.tool_calls:
                await self.run_call(call, completion.finish_reason)
        raise self.stop("partial", f"step limit reached ({self.h.max_steps} steps, TASK_MAX_STEPS)")

    def add(self, message: Message) -> None:
        self.messages.append(message)
        self.size += estimate_tokens([message])

    async def ask(self) -> Completion:
        if self.size > 0.8 * self.h.window:
            self.compact("the conversation neared the context window")
        while True:
            try:
                return await self.h.model.complete("worker", self.messages, self.h._schemas, task_id=self.task.id)
            except BudgetExceeded as e:
                raise self.stop("partial", str(e)) from e
            except LLMContextOverflow as e:
                self.compact(f"the endpoint reported a context overflow ({e})")

    def compact(self, why: str) -> None:
        if self.compactions >= self.h.max_compactions:
            raise self.stop("partial", f"context overflow: still too long after {self.compactions} compactions")
        before = len(self.messages)
        self.messages = compact(self.messages)
        if len(self.messages) >= before:
            raise self.stop("partial", "context overflow: nothing left to compact")
        self.size = estimate_tokens(self.messages)
        self.compactions += 1
        self.h.emit(RunWarning(code="context.compacted", task_id=self.task.id, message=f"compacted the worker's conversation: {why}"[:300]))

    def no_tool_call(self, completion: Completion) -> None:
        if self.step == 1 and not (completion.content or "").strip():
            raise Stop(self.result("failed", "the model's first answer was empty"))
        if self.reminded:
            raise Stop(self.result("partial", self.last_text or "ended without a handoff",
                                   ["the worker ended without calling handoff"]))
        self.reminded = True
        self.add({"role": "user", "content": REMINDER})

    async def run_call(self, call: ToolCall, finish_reason: str | None) -> None:
        self.calls += 1
        try:
            args = parse_call(WORKER_TOOLS, call.name, call.arguments)
        except ToolCallError as e:
            text = f"error: {e}"
            if finish_reason == "length":
                text += " (your answer was cut off at the output token limit: send a shorter call)"
            self.record(call, False, text, "malformed call")
            self.malformed += 1
            if self.malformed >= self.h.malformed_limit:
                raise Stop(self.result("failed", f"repeated malformed tool calls ({self.malformed} in a row)",
                                       [f"last error: {e}"])) from e
            return
        self.malformed = 0
        if isinstance(args, HandoffArgs):
            self.record(call, True, "handoff recorded", args.status)
            raise Stop(self.result(args.status, args.summary, args.concerns, args.suggestions))
        outcome = await self.tools.call(call.name, call.arguments)
        self.record(call, outcome.ok, outcome.text, _brief(call.arguments))
        if self.loops.seen(call.name, call.arguments, outcome.text):
            raise self.stop("partial", f"loop detected: {call.name} called {self.h.loop_limit} times in a row "
                                       "with the same arguments and the same result")

    def record(self, call: ToolCall, ok: bool, text: str, detail: str) -> None:
        self.h.emit(WorkerStep(task_id=self.task.id, step=self.step, tool=call.name, ok=ok,
                               detail=printable(detail[:200])))
        self.add({"role": "tool", "tool_call_id": call.id, "content": text})


class OutputBeat:
    """Turns a running command's output into a `WorkerOutput` event at most every ``every`` seconds."""

    def __init__(self, emit: Emit, task_id: str, every: float = 2.0) -> None:
        self.emit = emit
        self.task_id = task_id
        self.every = every
        self._last = 0.0

    def __call__(self, total: int) -> None:
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self.emit(WorkerOutput(task_id=self.task_id, bytes=total))


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
