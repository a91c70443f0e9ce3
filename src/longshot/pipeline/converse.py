"""A planning conversation: one model role, read-only exploration, a JSON answer.

Shared by the root planner and the subplanners. Each turn may use the exploration tools
(at most ``max_tool_steps`` calls) before the final answer, which must be the plan JSON;
an unusable answer is answered with the parse error. A model failure the router gave up on
is tried again only when `RETRY_POLICY` says its kind is worth it, as often and with the
backoff the policy gives; any other failure ends the conversation at once. Near the context window,
old turns are replaced by the last scratchpad and a summary, so goals and open concerns
survive.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from longshot.errors import BudgetExceeded, LLMContextOverflow, LLMError, PlanParseError, backoff_delay, policy_for
from longshot.events import Emit, PlannerParseError, RunWarning
from longshot.llm.base import ChatModel, Completion, Message, Role
from longshot.pipeline.explore import Explorer
from longshot.pipeline.parse import PlanAnswer, parse_plan
from longshot.tools.context import estimate_tokens


@dataclass
class Conversation:
    role: Role
    model: ChatModel
    explorer: Explorer
    emit: Emit
    system: str
    window: int = 128_000
    max_tool_steps: int = 30
    max_parse_retries: int = 3
    task_id: str | None = None
    messages: list[Message] = field(default_factory=list)
    scratchpad: str = ""
    summary: str = ""
    compactions: int = 0

    def __post_init__(self) -> None:
        self.messages = [{"role": "system", "content": self.system}]

    async def ask(self, content: str, iteration: int) -> PlanAnswer:
        """Send ``content``; explore as the model asks; return its parsed plan."""
        self._maybe_compact(content)
        self.messages.append({"role": "user", "content": content})
        tool_steps = parse_failures = 0
        last_error = ""
        while True:
            completion = await self._complete()
            self.messages.append(completion.as_message())
            if completion.tool_calls and tool_steps < self.max_tool_steps:
                for call in completion.tool_calls:
                    tool_steps += 1
                    outcome = await self.explorer.call(call.name, call.arguments)
                    self.messages.append({"role": "tool", "tool_call_id": call.id, "content": outcome.text})
                if tool_steps >= self.max_tool_steps:
                    self.messages.append({"role": "user", "content": "You have used all exploration steps for this "
                                          "turn. Answer now with the JSON object."})
                continue
            try:
                answer = parse_plan(completion.content)
            except PlanParseError as e:
                parse_failures += 1
                last_error = str(e)
                self.emit(PlannerParseError(task_id=self.task_id, iteration=iteration, error=last_error))
                if parse_failures > self.max_parse_retries:
                    raise PlanParseError(f"the {self.role} gave no usable answer in {parse_failures} tries: "
                                         f"{last_error}") from e
                self.messages.append({"role": "user", "content": f"Your answer could not be used: {e}"})
                continue
            if answer.scratchpad:
                self.scratchpad = answer.scratchpad
            return answer

    async def _complete(self) -> Completion:
        attempt = 0
        while True:
            try:
                tools = self.explorer.schemas
                return await self.model.complete(self.role, self.messages, tools, task_id=self.task_id)
            except BudgetExceeded:
                raise
            except LLMContextOverflow:
                if not self._compact(keep_last_user=True):
                    raise
            except LLMError as e:
                attempt += 1
                policy = policy_for(e)
                if not policy.retry or attempt >= policy.max_attempts:
                    raise
                delay = backoff_delay(policy, attempt, e.retry_after)
                self.emit(RunWarning(code="model.retry", task_id=self.task_id, message=f"{self.role} request failed ({e}); "
                                                                   f"retrying in {delay:g}s"[:300]))
                await asyncio.sleep(delay)

    def keep_summary(self, summary: str) -> None:
        """The run's progress as the caller sees it now: what a compaction keeps besides the scratchpad."""
        self.summary = summary

    def restore(self, scratchpad: str, summary: str) -> None:
        """Start from a recorded scratchpad and summary (a resumed run), as after a compaction."""
        self.scratchpad, self.summary = scratchpad, summary
        self.messages = [self.messages[0], {"role": "user", "content": self._memory("The run was interrupted "
                                                                                     "and has been resumed.")},
                         {"role": "assistant", "content": "Understood; continuing from my scratchpad."}]

    def _memory(self, headline: str) -> str:
        memory = f"[{headline}]\nYour last scratchpad:\n{self.scratchpad or '(none)'}\n"
        if self.summary:
            memory += f"\nWhat you knew before:\n{self.summary[:4000]}\n"
        return memory

    def _maybe_compact(self, incoming: str) -> None:
        if estimate_tokens(self.messages) + len(incoming) // 4 > 0.7 * self.window:
            self._compact(keep_last_user=False)

    def _compact(self, *, keep_last_user: bool) -> bool:
        """Replace everything but the system prompt by the scratchpad and a summary.

        ``keep_last_user``: the question being answered now stays (an overflow mid-turn).
        """
        if len(self.messages) <= 2:
            return False
        last_user = next((m for m in reversed(self.messages) if m.get("role") == "user"), None)
        if not keep_last_user:
            last_user = None
        memory = self._memory("Earlier turns were compacted to save context.")
        self.messages = [self.messages[0], {"role": "user", "content": memory}]
        if last_user is not None:
            self.messages.append({"role": "assistant", "content": "Understood; continuing from my scratchpad."})
            self.messages.append(last_user)
        self.compactions += 1
        self.emit(RunWarning(code="context.compacted", task_id=self.task_id, message=f"{self.role} conversation compacted "
                                                          f"({self.compactions} so far); the scratchpad was kept"))
        return True
